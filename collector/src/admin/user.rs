//! Web users: add, role change, disable/enable. The checks of a role and
//! its OPDs are the same for `user add|role` and the console.

use serde_json::{Value, json};

use super::{ActionError, audit, id};
use crate::audit::{Action, Actor};
use crate::store::accounts::{Account, Role};
use crate::store::{Store, StoreError, now_ms};
use crate::web::auth::{hash_password, new_password};

/// Shortest password a user may type in.
pub const MIN_PASSWORD: usize = 12;

/// Check a role name and its OPDs against the store: `opd` needs at least
/// one existing OPD, every other role none; `scrape` is for tokens only
/// unless `tokens` is set.
pub fn role_and_opds(
    s: &dyn Store,
    role: &str,
    opds: &[String],
    tokens: bool,
) -> Result<(Role, Vec<String>), ActionError> {
    let r = Role::parse(role.trim()).ok_or_else(|| {
        ActionError::invalid(
            "role",
            &format!("peran tidak dikenal `{role}`: admin, opd, evaluator, viewer atau scrape"),
            &format!("unknown role `{role}`; use admin, opd, evaluator, viewer or scrape"),
        )
    })?;
    if r == Role::Scrape && !tokens {
        return Err(ActionError::invalid(
            "role",
            "peran `scrape` untuk token, bukan pengguna (pantau-collector token add)",
            "`scrape` is for tokens: pantau-collector token add",
        ));
    }
    let opds: Vec<String> = opds
        .iter()
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect();
    match (r, opds.is_empty()) {
        (Role::Opd, true) => {
            return Err(ActionError::invalid(
                "opd",
                "peran `opd` perlu paling sedikit satu OPD (--opd)",
                "the `opd` role needs at least one OPD (--opd)",
            ));
        }
        (Role::Opd, false) | (_, true) => {}
        (_, false) => {
            return Err(ActionError::invalid(
                "opd",
                "OPD (--opd) hanya untuk peran `opd`",
                "OPDs (--opd) are only for the `opd` role",
            ));
        }
    }
    let known: Vec<String> = s.opds()?.into_iter().map(|o| o.id).collect();
    for o in &opds {
        id("opd", o)?;
        if !known.contains(o) {
            return Err(ActionError::invalid(
                "opd",
                &format!("OPD `{o}` tidak ada (pantau-collector opd list)"),
                &format!("OPD `{o}` does not exist (pantau-collector opd list)"),
            ));
        }
    }
    Ok((r, opds))
}

/// A new user's password: the one given (at least [`MIN_PASSWORD`]
/// characters) or a generated one.
pub fn check_password(given: Option<&str>) -> Result<(String, bool), ActionError> {
    match given {
        None => Ok((new_password(), true)),
        Some(p) if p.chars().count() < MIN_PASSWORD => Err(ActionError::invalid(
            "password",
            &format!("kata sandi minimal {MIN_PASSWORD} karakter"),
            &format!("the password must be at least {MIN_PASSWORD} characters"),
        )),
        Some(p) => Ok((p.to_string(), false)),
    }
}

/// What [`add`] made.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The role.
    pub role: Role,
    /// The password, when it was generated (show once).
    pub generated_password: Option<String>,
}

/// `user add` / the console's form. `password`: `None` generates one.
pub fn add(
    s: &dyn Store,
    actor: &Actor,
    name: &str,
    role: &str,
    opds: &[String],
    password: Option<&str>,
) -> Result<NewUser, ActionError> {
    let name = id("name", name)?;
    let (role, opds) = role_and_opds(s, role, opds, false)?;
    let (pw, generated) = check_password(password)?;
    s.add_account(&Account {
        name: name.clone(),
        role,
        opds: opds.clone(),
        password_hash: hash_password(&pw)?,
        disabled: false,
        created_at_ms: now_ms(),
    })?;
    let after = json!({"role": role.to_string(), "opds": opds});
    audit(s, actor, Action::UserAdd, &name, Value::Null, after)?;
    Ok(NewUser {
        role,
        generated_password: generated.then_some(pw),
    })
}

fn missing(name: &str) -> ActionError {
    ActionError::Store(StoreError::NotStored(format!(
        "pengguna `{name}` tidak ada / user `{name}` does not exist"
    )))
}

/// `user role` / the console's role form; the user's sessions end.
pub fn set_role(
    s: &dyn Store,
    actor: &Actor,
    name: &str,
    role: &str,
    opds: &[String],
) -> Result<String, ActionError> {
    let (role, opds) = role_and_opds(s, role, opds, false)?;
    let before = s.account(name)?.ok_or_else(|| missing(name))?;
    if !s.set_role(name, role, &opds)? {
        return Err(missing(name));
    }
    audit(
        s,
        actor,
        Action::UserChange,
        name,
        json!({"role": before.role.to_string(), "opds": before.opds}),
        json!({"role": role.to_string(), "opds": opds}),
    )?;
    Ok(format!(
        "peran `{name}` kini / role of `{name}` is now {role}"
    ))
}

/// `user disable|enable` / the console's buttons; disabling ends the sessions.
pub fn set_disabled(
    s: &dyn Store,
    actor: &Actor,
    name: &str,
    disabled: bool,
) -> Result<String, ActionError> {
    let before = s.account(name)?.ok_or_else(|| missing(name))?;
    if !s.set_disabled(name, disabled)? {
        return Err(missing(name));
    }
    audit(
        s,
        actor,
        Action::UserChange,
        name,
        json!({"disabled": before.disabled}),
        json!({"disabled": disabled}),
    )?;
    Ok(if disabled {
        format!("pengguna `{name}` dinonaktifkan / disabled")
    } else {
        format!("pengguna `{name}` diaktifkan / enabled")
    })
}
