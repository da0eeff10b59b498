//! Agent actions: add, one-time enrolment code, disable/enable, revoke,
//! rotate. Tokens and codes are returned to the caller to show once; the
//! audit entries never hold them.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ActionError, audit, id};
use crate::audit::{Action, Actor};
use crate::store::registry::CredentialChange;
use crate::store::{Store, StoreError, now_ms};

/// Longest lifetime of an enrolment code.
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// `agent add` / the console's "add agent" form: the agent under `opd`
/// with a token nobody sees until enrolment (or `print_token`). Returns
/// that token.
pub fn add(
    s: &dyn Store,
    actor: &Actor,
    agent: &str,
    opd: &str,
    print_token: bool,
) -> Result<String, ActionError> {
    let agent = id("agent", agent)?;
    let opd = id("opd", opd)?;
    let token = crate::auth::new_token();
    s.add_agent(&agent, &opd, &crate::auth::digest(&token))?;
    let after = json!({"id": agent, "opd": opd, "token_printed": print_token});
    audit(s, actor, Action::AgentAdd, &agent, Value::Null, after)?;
    Ok(token)
}

/// A fresh one-time enrolment code, to show once.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code.
    pub code: String,
    /// When it stops working, UTC ms.
    pub expires_at_ms: i64,
}

/// `agent enrol-code` / the console's "issue code" button: a code valid for
/// `lifetime` (1 s to 30 days); the agent's earlier unused codes become void.
pub fn enrol_code(
    s: &dyn Store,
    actor: &Actor,
    agent: &str,
    lifetime: Duration,
) -> Result<IssuedCode, ActionError> {
    if lifetime < Duration::from_secs(1) || lifetime > MAX_CODE_LIFETIME {
        return Err(ActionError::invalid(
            "expires",
            "harus antara 1 detik dan 30 hari",
            "must be between 1s and 30 days",
        ));
    }
    let code = crate::enrol::new_code();
    let expires_at_ms = now_ms() + lifetime.as_millis() as i64;
    if !s.issue_enrol_code(agent, &crate::enrol::code_digest(&code), expires_at_ms)? {
        return Err(StoreError::UnknownAgent(agent.to_string()).into());
    }
    // Never the code itself: only that one was issued and until when.
    let after = json!({"expires_at_ms": expires_at_ms});
    audit(s, actor, Action::EnrolCode, agent, Value::Null, after)?;
    Ok(IssuedCode {
        code,
        expires_at_ms,
    })
}

/// An agent's credential state as audit JSON (never the token).
fn state(s: &dyn Store, agent: &str) -> Result<Value, StoreError> {
    Ok(s.credentials()?
        .into_iter()
        .find(|c| c.agent_id == agent)
        .map_or(Value::Null, |c| {
            json!({"disabled": c.disabled, "revoked": c.revoked, "expires_at_ms": c.expires_at_ms})
        }))
}

/// What [`credential`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Refuse until enabled.
    Disable,
    /// Let in again.
    Enable,
    /// Refuse for good and drop the token.
    Revoke,
}

/// `agent disable|enable|revoke` / the console's buttons.
pub fn credential(
    s: &dyn Store,
    actor: &Actor,
    agent: &str,
    switch: Switch,
) -> Result<String, ActionError> {
    let (change, action) = match switch {
        Switch::Disable => (CredentialChange::Disable, Action::AgentDisable),
        Switch::Enable => (CredentialChange::Enable, Action::AgentEnable),
        Switch::Revoke => (CredentialChange::Revoke, Action::AgentRevoke),
    };
    let before = state(s, agent)?;
    s.change_credential(agent, &change)?;
    let after = state(s, agent)?;
    audit(s, actor, action, agent, before, after)?;
    Ok(match switch {
        Switch::Disable => format!(
            "Agen `{agent}` dinonaktifkan / agent disabled: refused until `agent enable`; its open stream closes within seconds"
        ),
        Switch::Enable => format!("Agen `{agent}` diaktifkan / agent enabled"),
        Switch::Revoke => format!(
            "Agen `{agent}` dicabut / agent revoked for good: its token is dropped; register the machine as a new agent"
        ),
    })
}

/// `agent rotate` / the console's rotate button: a new token (returned, to
/// show once) valid for `expires` (never when `None`); the old one stops
/// working at once.
pub fn rotate(
    s: &dyn Store,
    actor: &Actor,
    agent: &str,
    expires: Option<Duration>,
) -> Result<(String, Option<i64>), ActionError> {
    let token = crate::auth::new_token();
    let expires_at_ms = expires.map(|d| now_ms() + d.as_millis() as i64);
    let change = CredentialChange::Rotate {
        token_sha256: crate::auth::digest(&token).to_vec(),
        expires_at_ms,
    };
    let before = state(s, agent)?;
    s.change_credential(agent, &change)?;
    let after = state(s, agent)?;
    audit(s, actor, Action::AgentRotate, agent, before, after)?;
    Ok((token, expires_at_ms))
}
