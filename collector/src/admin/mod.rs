//! Admin actions: one function per action, used by both the CLI
//! (`cli/admin.rs`, `cli/report.rs`, `cli/user.rs`) and the web console
//! (`web/console/`), so both do the same checks, the same change and the
//! same audit entry.
//!
//! Each action takes the store, who acts ([`Actor`]) and a typed input,
//! checks the input (an [`ActionError::Invalid`] names the field, Indonesian
//! first), makes the change and appends its audit entry with the state
//! before and after. The audit entry is appended right after the change
//! succeeded, as its own write (the store traits keep the audit log apart
//! from the registry); a failed append is returned as an error, so the
//! caller sees it.
//!
//! - [`opd`]: add, rename, contract bandwidth, disable/enable, remove.
//! - [`agent`]: add, enrolment code, disable/enable, revoke, rotate.
//! - [`maintenance`]: create, end early, delete with a reason, incident notes.
//! - [`user`]: add, role change, disable/enable.

pub mod agent;
pub mod maintenance;
pub mod opd;
pub mod user;

use crate::audit::{Action, Actor};
use crate::store::{Store, StoreError};

/// Why an admin action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// An input field is wrong: nothing was changed.
    #[error("`{field}`: {message}")]
    Invalid {
        /// The form field / CLI argument.
        field: &'static str,
        /// "Indonesian / English".
        message: String,
    },
    /// The store refused (unknown or existing id, revoked agent, ...) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A password could not be hashed.
    #[error(transparent)]
    Hash(#[from] crate::web::auth::HashError),
}

impl ActionError {
    /// An invalid `field` with a bilingual message.
    pub fn invalid(field: &'static str, id: &str, en: &str) -> Self {
        ActionError::Invalid {
            field,
            message: format!("{id} / {en}"),
        }
    }

    /// The field at fault, if the input was wrong.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ActionError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Longest free text (names, reasons, notes) an action stores.
pub const MAX_TEXT: usize = 500;

/// A required free-text field: trimmed, not empty, at most [`MAX_TEXT`]
/// characters, no control characters.
pub fn text(field: &'static str, v: &str) -> Result<String, ActionError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ActionError::invalid(field, "wajib diisi", "required"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(ActionError::invalid(
            field,
            &format!("paling banyak {MAX_TEXT} karakter"),
            &format!("at most {MAX_TEXT} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ActionError::invalid(
            field,
            "tidak boleh berisi karakter kontrol",
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}

/// An id field checked with the one id rule of `pantau-core`.
pub fn id(field: &'static str, v: &str) -> Result<String, ActionError> {
    pantau_core::id::check_id(field, v.trim()).map_err(|e| ActionError::Invalid {
        field,
        message: e.to_string(),
    })?;
    Ok(v.trim().to_string())
}

/// Append the audit entry of an action that succeeded.
fn audit(
    s: &dyn Store,
    actor: &Actor,
    action: Action,
    object: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> Result<(), ActionError> {
    crate::audit::record(s, actor, action, object, before, after)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::report::NewMaintenance;

    #[test]
    fn text_and_id_name_the_field_in_both_languages() {
        let e = text("reason", "  ").unwrap_err();
        assert_eq!(e.field(), Some("reason"));
        assert_eq!(e.to_string(), "`reason`: wajib diisi / required");
        assert!(text("note", &"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(text("note", "a\u{7}b").is_err());
        assert_eq!(text("name", " Dinas ").unwrap(), "Dinas");
        assert_eq!(id("id", "bad id").unwrap_err().field(), Some("id"));
        assert_eq!(id("id", "dinkes").unwrap(), "dinkes");
    }

    /// Every action changes the store and appends its audit entry, with
    /// the state before and after; refused input changes nothing.
    #[test]
    fn actions_change_the_store_and_audit_before_and_after() {
        use crate::store::registry::OpdState;
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::SqliteStore::open(dir.path()).unwrap();
        let s: &dyn Store = &s;
        let who = Actor::web_user("siti", "10.0.0.9");
        opd::add(s, &who, "dinkes", "Dinas Kesehatan").unwrap();
        opd::rename(s, &who, "dinkes", "Dinkes Provinsi").unwrap();
        opd::contract(s, &who, "dinkes", 20.0).unwrap();
        assert_eq!(
            opd::contract(s, &who, "dinkes", -1.0).unwrap_err().field(),
            Some("mbps")
        );
        let token = agent::add(s, &who, "dinkes-1", "dinkes", false).unwrap();
        assert!(!token.is_empty());
        let code =
            agent::enrol_code(s, &who, "dinkes-1", std::time::Duration::from_secs(60)).unwrap();
        assert!(code.code.starts_with("PE-"));
        opd::set_state(s, &who, "dinkes", OpdState::Disabled).unwrap();
        opd::set_state(s, &who, "dinkes", OpdState::Active).unwrap();
        let w = NewMaintenance {
            opd: Some("dinkes".into()),
            group: None,
            from_ms: crate::store::now_ms() - 60_000,
            to_ms: crate::store::now_ms() + 3_600_000,
            reason: "ganti router".into(),
            by: "siti".into(),
            at_ms: crate::store::now_ms(),
        };
        let bad = NewMaintenance {
            to_ms: w.from_ms,
            ..w.clone()
        };
        assert_eq!(
            maintenance::create(s, &who, &bad).unwrap_err().field(),
            Some("to")
        );
        let bad = NewMaintenance {
            opd: Some("nope".into()),
            ..w.clone()
        };
        assert_eq!(
            maintenance::create(s, &who, &bad).unwrap_err().field(),
            Some("opd")
        );
        maintenance::create(s, &who, &w).unwrap();
        maintenance::create(s, &who, &w).unwrap();
        let ids: Vec<i64> = crate::store::report::snapshot(s, |r| r.maintenance(None, None))
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect();
        maintenance::end(s, &who, ids[0]).unwrap();
        assert_eq!(
            maintenance::delete(s, &who, ids[1], " ")
                .unwrap_err()
                .field(),
            Some("reason")
        );
        maintenance::delete(s, &who, ids[1], "salah tanggal").unwrap();
        user::add(s, &who, "ani", "viewer", &[], None).unwrap();
        assert_eq!(
            user::set_role(s, &who, "ani", "opd", &[])
                .unwrap_err()
                .field(),
            Some("opd")
        );
        user::set_role(s, &who, "ani", "opd", &["dinkes".into()]).unwrap();
        user::set_disabled(s, &who, "ani", true).unwrap();
        opd::set_state(s, &who, "dinkes", OpdState::Removed).unwrap();

        let log = s.audit_list(&Default::default()).unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "opd.add",
                "opd.rename",
                "opd.contract",
                "agent.add",
                "enrol.code",
                "opd.disable",
                "opd.enable",
                "maintenance.create",
                "maintenance.create",
                "maintenance.end",
                "maintenance.delete",
                "user.add",
                "user.change",
                "user.change",
                "opd.remove",
            ]
        );
        assert!(
            log.iter()
                .all(|e| e.actor_name == "siti" && e.source == "10.0.0.9")
        );
        let by = |a: &str| log.iter().find(|e| e.action == a).unwrap();
        assert_eq!(by("opd.rename").before["name"], "Dinas Kesehatan");
        assert_eq!(by("opd.rename").after["name"], "Dinkes Provinsi");
        assert!(
            by("maintenance.end").after["to_ms"].as_i64()
                < by("maintenance.end").before["to_ms"].as_i64()
        );
        assert_eq!(
            by("maintenance.delete").after["delete_reason"],
            "salah tanggal"
        );
        assert_eq!(by("user.change").before["role"], "viewer");
        assert_eq!(by("user.change").after["role"], "opd");
        assert_eq!(by("opd.remove").after["state"], "removed");
        assert!(
            !log.iter().any(|e| e.after.to_string().contains(&code.code)),
            "no code in the log"
        );
        assert!(
            !log.iter().any(|e| e.after.to_string().contains(&token)),
            "no token in the log"
        );
    }
}
