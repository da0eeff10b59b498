//! What the ingest writer needs: Hello and sessions, batches stored with
//! dedupe and conflicting duplicates kept aside, the committed sequence.
//! The path folding of traceroute results is pure and shared by backends.

use super::StoreError;
use crate::model::{AgentIdentity, HelloInfo, ResultRow};

/// One agent's batch, as handed to [`IngestStore::store_batches`].
#[derive(Debug, Clone, Copy)]
pub struct IncomingBatch<'a> {
    /// Whose results.
    pub who: &'a AgentIdentity,
    /// The validated, clock-stamped rows, in sequence order.
    pub rows: &'a [ResultRow],
    /// The agent's address, kept with conflicting duplicates.
    pub peer: Option<&'a str>,
}

/// What storing one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Rows newly stored.
    pub new: usize,
    /// Indices (into the batch) of rows whose identity was already stored
    /// with different content, newly kept aside.
    pub conflicts: Vec<usize>,
    /// Indices of rows that are conflicts kept before (resent after a lost
    /// ack): not kept or counted again.
    pub conflicts_resent: Vec<usize>,
}

impl Stored {
    /// Whether row `i` of the batch is a conflicting duplicate (new or resent).
    pub fn is_conflict(&self, i: usize) -> bool {
        self.conflicts.contains(&i) || self.conflicts_resent.contains(&i)
    }
}

/// The answer to a Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Highest committed seq of the Hello's epoch (0 if none).
    pub committed_seq: u64,
    /// The new session's id.
    pub session: i64,
}

/// One Hello of a group, as handed to [`IngestStore::hellos`].
#[derive(Debug, Clone, Copy)]
pub struct IncomingHello<'a> {
    /// Who said it.
    pub who: &'a AgentIdentity,
    /// What it said (validated).
    pub info: &'a HelloInfo,
    /// Estimated clock offset.
    pub clock_offset_ms: Option<i64>,
    /// The stream's peer address.
    pub peer: Option<&'a str>,
}

/// The ingest writer's storage. Every method commits before it returns.
pub trait IngestStore: Send + Sync {
    /// Record a Hello (agent facts and its target catalogue, upserted), then
    /// open a session from `peer` at `at_ms`; answers with the committed seq
    /// of the epoch.
    fn hello(
        &self,
        who: &AgentIdentity,
        info: &HelloInfo,
        clock_offset_ms: Option<i64>,
        peer: Option<&str>,
        at_ms: i64,
    ) -> Result<Opened, StoreError>;

    /// Close a session that is still open.
    fn end_session(&self, id: i64, at_ms: i64, reason: &str) -> Result<(), StoreError>;

    /// Several Hellos at once, as [`IngestStore::hello`] each, answered in
    /// order. Each one succeeds or fails alone: a failing Hello (its agent
    /// removed meanwhile) leaves no trace and gets its error, the others
    /// are stored. `Err` of the whole call: none was stored. Backends
    /// commit the group in one transaction (5 000 agents connecting are
    /// 5 000 Hellos; one commit each held the writer for minutes); this
    /// default stores them one by one.
    fn hellos(
        &self,
        hellos: &[IncomingHello<'_>],
        at_ms: i64,
    ) -> Result<Vec<Result<Opened, StoreError>>, StoreError> {
        Ok(hellos
            .iter()
            .map(|h| self.hello(h.who, h.info, h.clock_offset_ms, h.peer, at_ms))
            .collect())
    }

    /// Close several sessions, as [`IngestStore::end_session`] each;
    /// backends do it in one transaction.
    fn end_sessions(&self, ends: &[(i64, &str)], at_ms: i64) -> Result<(), StoreError> {
        ends.iter()
            .try_for_each(|&(id, reason)| self.end_session(id, at_ms, reason))
    }

    /// Close sessions left open by a collector that stopped without closing
    /// them: they end at the last result received in them. Returns how many.
    fn close_dangling_sessions(&self) -> Result<usize, StoreError>;

    /// Highest committed seq of an agent's epoch (0 if none).
    fn committed_seq(&self, agent: &str, epoch: u64) -> Result<u64, StoreError>;

    /// Store batches in one transaction, all or nothing. A row whose (agent,
    /// epoch, seq) is stored already is an ordinary replay if its content is
    /// the same (ignored) and a conflicting duplicate otherwise (kept aside,
    /// the stored result stays). Stored results queue for remote write when
    /// it is enabled, mark their rollup hours dirty and fold traceroute hops
    /// into paths, in the same transaction.
    fn store_batches(
        &self,
        batches: &[IncomingBatch<'_>],
        received_at_ms: i64,
    ) -> Result<Vec<Stored>, StoreError>;

    /// After a failed write (disk full, read-only, I/O error), drop and
    /// reopen whatever the backend holds open for writing.
    fn recover(&self) -> Result<(), StoreError>;
}

/// The hops of one path seen again, if `new` is the same path as `old`: the
/// same length and every hop equal, or unanswered (null) in one of them —
/// routers that rate-limit or drop ICMP must not look like a route change.
/// The result fills the unanswered hops of either from the other.
pub fn merge_hops(
    old: &[serde_json::Value],
    new: &[serde_json::Value],
) -> Option<Vec<serde_json::Value>> {
    if old.len() != new.len() {
        return None;
    }
    old.iter()
        .zip(new)
        .map(|(o, n)| match (o.is_null(), n.is_null()) {
            (true, _) => Some(n.clone()),
            (_, true) => Some(o.clone()),
            _ => (o == n).then(|| o.clone()),
        })
        .collect()
}

#[cfg(test)]
mod path_tests {
    use super::merge_hops;
    use serde_json::{Value, json};

    fn v(x: Value) -> Vec<Value> {
        x.as_array().unwrap().clone()
    }

    #[test]
    fn unanswered_hops_are_not_a_path_change() {
        let old = v(json!(["10.0.0.1", "10.0.1.1", "10.0.2.1"]));
        assert_eq!(merge_hops(&old, &old), Some(old.clone()));
        // A rate-limited router: same path, the stored hops keep the address.
        assert_eq!(
            merge_hops(&old, &v(json!([null, "10.0.1.1", "10.0.2.1"]))),
            Some(old.clone())
        );
        // An earlier gap is filled in.
        assert_eq!(
            merge_hops(&v(json!(["10.0.0.1", null, "10.0.2.1"])), &old),
            Some(old.clone())
        );
        // A different router, or another length, is a change.
        assert_eq!(
            merge_hops(&old, &v(json!(["10.0.0.1", "10.0.9.1", "10.0.2.1"]))),
            None
        );
        assert_eq!(merge_hops(&old, &v(json!(["10.0.0.1", "10.0.2.1"]))), None);
    }
}
