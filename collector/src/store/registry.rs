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

/// OPDs, agents and tokens.
pub trait Registry: Send + Sync {
    /// Add an OPD; [`StoreError::Exists`] if the id is taken.
    fn add_opd(&self, id: &str, name: &str) -> Result<(), StoreError>;

    /// Add an agent under an existing OPD with the SHA-256 of its token;
    /// [`StoreError::UnknownOpd`] or [`StoreError::Exists`] otherwise.
    fn add_agent(&self, id: &str, opd: &str, token_sha256: &[u8]) -> Result<(), StoreError>;

    /// The agent whose token hashes to `digest`, with the stored digest for
    /// a constant-time comparison by the caller.
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
}
