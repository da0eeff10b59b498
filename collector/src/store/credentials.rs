//! One-time enrolment codes: issued by the admin commands, consumed by the
//! Enrol RPC in exchange for the agent's permanent token.

use super::StoreError;
use crate::model::AgentIdentity;

/// What presenting an enrolment code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was valid and is now used; the agent's token digest was
    /// replaced by the new one.
    Enrolled(AgentIdentity),
    /// The code was used before.
    AlreadyUsed,
    /// The code's time ran out.
    Expired,
    /// No such code (never issued, or voided by a newer one).
    Unknown,
}

/// Enrolment codes, stored only as SHA-256.
pub trait EnrolCodes: Send + Sync {
    /// Store a new code for an existing agent, valid until `expires_at_ms`;
    /// earlier unused codes of the agent become void. `Ok(false)` when the
    /// agent does not exist.
    fn issue_enrol_code(
        &self,
        agent_id: &str,
        code_sha256: &[u8],
        expires_at_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Consume the code hashing to `code_sha256` at `now_ms` and, in the
    /// same transaction, set the agent's token digest to `token_sha256`.
    /// A code is consumed at most once, however many callers race.
    fn redeem_enrol_code(
        &self,
        code_sha256: &[u8],
        token_sha256: &[u8],
        now_ms: i64,
    ) -> Result<Redeemed, StoreError>;
}
