//! The remote-write queue: every newly stored result is queued while export
//! is enabled; the exporter takes the oldest entries and acknowledges them
//! once the receiver has them.

use serde_json::Value;

use super::StoreError;
use crate::model::{Outcome, RowKind};

/// A queued result as read back for export.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedResult {
    /// OPD id.
    pub opd: String,
    /// Agent id.
    pub agent: String,
    /// Target id ("" for heartbeats).
    pub target: String,
    /// Target group as currently declared ("" if unknown).
    pub group: String,
    /// A probe kind, or heartbeat.
    pub kind: RowKind,
    /// Agent clock, ms.
    pub observed_at_ms: i64,
    /// Outcome.
    pub outcome: Outcome,
    /// Headline duration, ms.
    pub value_ms: Option<f64>,
    /// ICMP echoes sent.
    pub sent: Option<i64>,
    /// ICMP echoes received.
    pub received: Option<i64>,
    /// Kind-specific measurements.
    pub data: Value,
}

/// What a queue entry holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    /// A result to export.
    Result(QueuedResult),
    /// The agent's clock was flagged (future/past): not exported.
    Untrusted,
    /// Raw retention deleted the result before it was exported.
    Expired,
}

/// One queue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// Queue position: grows, never reused.
    pub id: i64,
    /// What it holds.
    pub item: Queued,
}

/// The remote-write queue.
pub trait ExportQueue: Send + Sync {
    /// Switch queueing on or off before ingest starts. Switching off empties
    /// the queue (nothing would ever send it); returns how many it held.
    fn export_prepare(&self, enabled: bool) -> Result<u64, StoreError>;

    /// The oldest `limit` entries, oldest first.
    fn export_take(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError>;

    /// Forget entries up to `last_id`: they were delivered.
    fn export_ack(&self, last_id: i64) -> Result<(), StoreError>;

    /// Entries waiting.
    fn export_pending(&self) -> Result<i64, StoreError>;
}
