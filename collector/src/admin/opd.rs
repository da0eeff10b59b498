//! OPD actions: add, rename, contracted bandwidth, disable/enable, remove
//! (history kept: its results, reports and audit entries stay; it leaves
//! the status pages and takes no new agents).

use serde_json::{Value, json};

use super::{ActionError, audit, id, text};
use crate::audit::{Action, Actor};
use crate::store::Store;
use crate::store::registry::OpdState;

/// `opd add` / the console's "add OPD" form.
pub fn add(s: &dyn Store, actor: &Actor, opd: &str, name: &str) -> Result<String, ActionError> {
    let opd = id("id", opd)?;
    let name = text("name", name)?;
    s.add_opd(&opd, &name)?;
    audit(
        s,
        actor,
        Action::OpdAdd,
        &opd,
        Value::Null,
        json!({"id": opd, "name": name}),
    )?;
    Ok(format!("OPD `{opd}` ditambahkan / added: {name}"))
}

/// `opd rename` / the console's rename form.
pub fn rename(s: &dyn Store, actor: &Actor, opd: &str, name: &str) -> Result<String, ActionError> {
    let name = text("name", name)?;
    let old = s.rename_opd(opd, &name)?;
    audit(
        s,
        actor,
        Action::OpdRename,
        opd,
        json!({"name": old}),
        json!({"name": name}),
    )?;
    Ok(format!("OPD `{opd}` diganti nama / renamed: {name}"))
}

/// `opd contract` / the console's bandwidth form: Mbit/s, 0 clears it.
pub fn contract(s: &dyn Store, actor: &Actor, opd: &str, mbps: f64) -> Result<String, ActionError> {
    use crate::report::capacity::ContractError;
    let before = crate::store::report::snapshot(s, |r| match r.opd_exists(opd)? {
        true => r.opd_contract(opd),
        false => Ok(None),
    })?;
    let msg = crate::report::capacity::set_contract(s, opd, mbps).map_err(|e| match e {
        ContractError::Range(_) => ActionError::invalid(
            "mbps",
            "harus 0 (hapus) sampai 1000000 Mbit/s",
            "must be 0 (clear) to 1000000 Mbit/s",
        ),
        ContractError::UnknownOpd(o) => crate::store::StoreError::UnknownOpd(o).into(),
        ContractError::Store(e) => e.into(),
    })?;
    let after = (mbps > 0.0).then_some(mbps);
    audit(
        s,
        actor,
        Action::OpdContract,
        opd,
        json!({"mbps": before}),
        json!({"mbps": after}),
    )?;
    Ok(msg)
}

/// `opd disable|enable|remove` / the console's buttons.
pub fn set_state(
    s: &dyn Store,
    actor: &Actor,
    opd: &str,
    state: OpdState,
) -> Result<String, ActionError> {
    let before = s.set_opd_state(opd, state)?;
    let action = match state {
        OpdState::Active => Action::OpdEnable,
        OpdState::Disabled => Action::OpdDisable,
        OpdState::Removed => Action::OpdRemove,
    };
    audit(
        s,
        actor,
        action,
        opd,
        json!({"state": before.as_str()}),
        json!({"state": state.as_str()}),
    )?;
    Ok(match state {
        OpdState::Active => format!("OPD `{opd}` diaktifkan / enabled"),
        OpdState::Disabled => {
            format!("OPD `{opd}` dinonaktifkan: agennya ditolak / disabled: its agents are refused")
        }
        OpdState::Removed => format!(
            "OPD `{opd}` dihapus dari halaman status; hasil, laporan dan audit tetap disimpan / \
             removed from the status pages; its results, reports and audit entries are kept"
        ),
    })
}
