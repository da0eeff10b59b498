//! The registry: OPDs, agents and their tokens, as the admin commands, the
//! token check and the metrics seeding at start-up use them.

use super::StoreError;
use crate::model::AgentIdentity;

/// What the store knows of an agent to give it metric series at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSeries {
    /// The agent and its OPD.
    pub who: AgentIdentity,
    /// Latest collector receive time of its newest results, ms (`None` if
    /// it never stored a result).
    pub last_seen_ms: Option<i64>,
    /// Clock offset estimated at its last Hello, ms.
    pub clock_offset_ms: Option<i64>,
    /// Ids of the targets it declared, sorted.
    pub targets: Vec<String>,
}

/// Why an agent's credential does not (or no longer) let it in. The
/// label is bounded: it is the `reason` of `pantau_auth_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token was presented.
    Missing,
    /// The token belongs to no agent.
    Unknown,
    /// The agent was revoked for good.
    Revoked,
    /// The token was replaced by `agent rotate`.
    Rotated,
    /// The agent is disabled.
    Disabled,
    /// The token's expiry passed.
    Expired,
}

impl Refusal {
    /// Every refusal, for metric seeding.
    pub const ALL: [Refusal; 6] = [
        Refusal::Missing,
        Refusal::Unknown,
        Refusal::Revoked,
        Refusal::Rotated,
        Refusal::Disabled,
        Refusal::Expired,
    ];

    /// The metric and log label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Unknown => "unknown",
            Refusal::Revoked => "revoked",
            Refusal::Rotated => "rotated",
            Refusal::Disabled => "disabled",
            Refusal::Expired => "expired",
        }
    }

    /// The reason a retired token row names.
    pub fn from_retired(why: &str) -> Refusal {
        if why == "rotated" {
            Refusal::Rotated
        } else {
            Refusal::Revoked
        }
    }
}

/// An agent's credential as the token check and the open-stream re-check
/// see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The agent and its OPD.
    pub who: AgentIdentity,
    /// SHA-256 of its current token (empty once revoked).
    pub token_sha256: Vec<u8>,
    /// Disabled with `agent disable`.
    pub disabled: bool,
    /// Revoked for good with `agent revoke`.
    pub revoked: bool,
    /// When its token stops working, ms (`None`: never).
    pub expires_at_ms: Option<i64>,
}

impl Credential {
    /// Why a stream authenticated with `presented` (a token digest) must not
    /// go on at `now_ms`; `None` while it may.
    pub fn refusal(&self, presented: &[u8], now_ms: i64) -> Option<Refusal> {
        if self.revoked {
            Some(Refusal::Revoked)
        } else if self.token_sha256 != presented {
            Some(Refusal::Rotated)
        } else if self.disabled {
            Some(Refusal::Disabled)
        } else if self.expires_at_ms.is_some_and(|e| e <= now_ms) {
            Some(Refusal::Expired)
        } else {
            None
        }
    }
}

/// A change to an agent's credential (the `agent` admin commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChange {
    /// Refuse the agent until enabled again.
    Disable,
    /// Undo [`CredentialChange::Disable`].
    Enable,
    /// Refuse the agent for good and drop its token digest.
    Revoke,
    /// Replace the token; the old one stops working at once.
    Rotate {
        /// SHA-256 of the new token.
        token_sha256: Vec<u8>,
        /// When the new token stops working, ms (`None`: never).
        expires_at_ms: Option<i64>,
    },
}

/// The state of an agent's credential, as `agent list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// Agent id.
    pub agent_id: String,
    /// Disabled with `agent disable`.
    pub disabled: bool,
    /// Revoked for good.
    pub revoked: bool,
    /// When its token stops working, ms.
    pub expires_at_ms: Option<i64>,
    /// Address of its last successful authentication.
    pub last_peer: Option<String>,
    /// When it last authenticated, ms.
    pub last_auth_at_ms: Option<i64>,
}

/// An OPD's life cycle (the console's and `opd disable|enable|remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpdState {
    /// Normal.
    Active,
    /// Its agents are refused and it takes no new ones, until enabled.
    Disabled,
    /// As disabled, and gone from the status pages; its results, reports and
    /// audit entries stay.
    Removed,
}

impl OpdState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpdState::Active => "active",
            OpdState::Disabled => "disabled",
            OpdState::Removed => "removed",
        }
    }

    /// From the stored name (unknown names read as removed: refuse rather than admit).
    pub fn parse(s: &str) -> OpdState {
        match s {
            "active" => OpdState::Active,
            "disabled" => OpdState::Disabled,
            _ => OpdState::Removed,
        }
    }
}

/// An OPD as the admin console lists it (removed ones included).
#[derive(Debug, Clone, PartialEq)]
pub struct OpdInfo {
    /// Id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Life-cycle state.
    pub state: OpdState,
    /// Agents registered under it.
    pub agents: i64,
    /// Contracted bandwidth, Mbit/s.
    pub contracted_mbps: Option<f64>,
}

/// OPDs, agents and tokens.
pub trait Registry: Send + Sync {
    /// Add an OPD; [`StoreError::Exists`] if the id is taken.
    fn add_opd(&self, id: &str, name: &str) -> Result<(), StoreError>;

    /// Add an agent under an existing OPD with the SHA-256 of its token;
    /// [`StoreError::UnknownOpd`] or [`StoreError::Exists`] otherwise.
    fn add_agent(&self, id: &str, opd: &str, token_sha256: &[u8]) -> Result<(), StoreError>;

    /// The agent whose token hashes to `digest`, with the stored digest for
    /// a constant-time comparison by the caller; only while the credential
    /// is usable (not disabled, revoked or expired).
    fn agent_by_token(&self, digest: &[u8])
    -> Result<Option<(AgentIdentity, Vec<u8>)>, StoreError>;

    /// The name of an OPD, if it exists.
    fn opd_name(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Every OPD id, sorted.
    fn opd_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Every agent with what its metric series start from, sorted by id.
    /// `lookback_ms` bounds how far back from an agent's newest observation
    /// its last receive time is looked for.
    fn agent_series(&self, lookback_ms: i64) -> Result<Vec<AgentSeries>, StoreError>;

    /// The credential whose current token hashes to `digest`, whatever its state.
    fn credential_by_token(&self, digest: &[u8]) -> Result<Option<Credential>, StoreError>;

    /// The credential of agent `id`.
    fn credential_of(&self, id: &str) -> Result<Option<Credential>, StoreError>;

    /// The agent and why, if `digest` is a token rotated out or revoked.
    fn retired_token(&self, digest: &[u8]) -> Result<Option<(String, Refusal)>, StoreError>;

    /// Apply `change` to agent `id`: [`StoreError::UnknownAgent`] if there is
    /// none, [`StoreError::Revoked`] to enable or rotate a revoked agent.
    fn change_credential(&self, id: &str, change: &CredentialChange) -> Result<(), StoreError>;

    /// Note a successful authentication of agent `id` from `peer` at `at_ms`.
    fn record_auth(&self, id: &str, peer: &str, at_ms: i64) -> Result<(), StoreError>;

    /// The credential state of every agent, sorted by id.
    fn credentials(&self) -> Result<Vec<CredentialInfo>, StoreError>;

    /// Rename OPD `id`; returns the old name. [`StoreError::UnknownOpd`] if
    /// there is none.
    fn rename_opd(&self, id: &str, name: &str) -> Result<String, StoreError>;

    /// Set OPD `id`'s state; returns the state before.
    /// [`StoreError::UnknownOpd`] if there is none.
    fn set_opd_state(&self, id: &str, state: OpdState) -> Result<OpdState, StoreError>;

    /// Every OPD, removed ones included, sorted by id.
    fn opd_infos(&self) -> Result<Vec<OpdInfo>, StoreError>;
}
