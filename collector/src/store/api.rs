//! The reads behind `/api/v1/*`, the overview page and the admin listings.

use serde::Serialize;

use super::StoreError;

/// An OPD with its agent count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opd {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Agents registered.
    pub agents: u32,
    /// Latest result time of any of its agents, ms.
    pub last_seen_ms: Option<i64>,
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    /// Id.
    pub id: String,
    /// OPD id.
    pub opd: String,
    /// Software version from its last Hello.
    pub version: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Last Hello, ms.
    pub last_hello_ms: Option<i64>,
    /// Latest result received, ms (collector clock).
    pub last_seen_ms: Option<i64>,
    /// Estimated agent clock offset, ms.
    pub clock_offset_ms: Option<i64>,
    /// Conflicting duplicates kept aside: results numbered like stored
    /// ones but different (a cloned agent, two writers on one spool).
    pub conflicts: i64,
    /// Address of its last successful authentication.
    pub last_peer: Option<String>,
    /// Central configuration version it reported applying (`None`: never
    /// reported).
    pub config_version: Option<i64>,
    /// SHA-256 of the central targets it applied.
    pub config_sha256: Option<String>,
    /// Why it refused the last update (empty: applied).
    pub config_error: Option<String>,
}

/// A target with its latest result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Agent id.
    pub agent: String,
    /// OPD id.
    pub opd: String,
    /// Target id.
    pub id: String,
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Address.
    pub address: String,
    /// Label.
    pub label: String,
    /// Latest observation time (agent clock), ms.
    pub observed_at_ms: Option<i64>,
    /// Latest outcome.
    pub outcome: Option<String>,
    /// Latest headline duration, ms.
    pub value_ms: Option<f64>,
    /// Latest loss ratio (ICMP).
    pub loss: Option<f64>,
}

/// A stored result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredResult {
    /// Agent.
    pub agent: String,
    /// OPD.
    pub opd: String,
    /// Target ("" for heartbeats).
    pub target: String,
    /// Kind.
    pub kind: String,
    /// Epoch.
    pub epoch: u64,
    /// Sequence.
    pub seq: u64,
    /// Agent clock, ms.
    pub observed_at_ms: i64,
    /// Collector clock, ms.
    pub received_at_ms: i64,
    /// Outcome.
    pub outcome: String,
    /// Detail.
    pub detail: String,
    /// Headline duration, ms.
    pub value_ms: Option<f64>,
    /// ICMP sent.
    pub sent: Option<u32>,
    /// ICMP received.
    pub received: Option<u32>,
    /// Measurements.
    pub data: serde_json::Value,
    /// Arrived late (after an outage).
    pub late: bool,
    /// `future` / `past` when the agent's time is not trusted.
    pub clock_flag: Option<String>,
}

/// A connected interval of an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    /// Agent.
    pub agent: String,
    /// Spool epoch of the stream.
    pub epoch: u64,
    /// Connected, ms.
    pub connected_at_ms: i64,
    /// Disconnected, ms (`None` while connected).
    pub disconnected_at_ms: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// The address the stream came from, as the collector saw it (`None`
    /// for sessions recorded before peers were kept).
    pub peer: Option<String>,
}

/// The API's reads.
pub trait ApiRead: Send + Sync {
    /// Whether the store answers at all (`/healthz`).
    fn ping(&self) -> Result<(), StoreError>;

    /// All OPDs, by id.
    fn opds(&self) -> Result<Vec<Opd>, StoreError>;

    /// All agents, by id.
    fn agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// All targets (of one agent, if given) with their latest result, by
    /// OPD, agent, group and id.
    fn targets(&self, agent: Option<&str>) -> Result<Vec<Target>, StoreError>;

    /// Raw results of an agent observed in `[from, to)`, oldest first, at most `limit`.
    fn results(
        &self,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredResult>, StoreError>;

    /// Sessions of an agent overlapping `[from, to)`, oldest first.
    fn sessions(&self, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Session>, StoreError>;

    /// Whether an agent exists.
    fn agent_exists(&self, id: &str) -> Result<bool, StoreError>;
}
