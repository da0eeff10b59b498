//! Leases on the background work several collectors share one store for
//! (rollups and incidents, retention, the remote-write queue): exactly one
//! collector holds a job's lease at a time, renews it while it works, and a
//! dead holder's lease expires so another collector takes the job over.
//!
//! A lease is a row (name, holder, until, fencing token), not a PostgreSQL
//! advisory lock: its expiry is explicit (an advisory lock lives as long as
//! its connection, which a network partition keeps "alive" until TCP gives
//! up), it is visible to operators (`leases`), the same code runs on SQLite,
//! and the fencing token is checked in the same statement that records a
//! finished piece of work ([`Leases::work_done`]). Expiry is judged by the
//! store's clock (PostgreSQL's `clock_timestamp()`), so collectors with
//! skewed clocks agree on it.
//!
//! Each finished piece is recorded as (job, period, holder, token): the
//! periods of one job tile time without overlap (`UNIQUE (job, from_ms)`),
//! so "no piece done twice, none left undone" can be checked.

use super::StoreError;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job, e.g. `rollup`.
    pub name: String,
    /// The collector holding it ([`crate::config::CollectorConfig::node`]).
    pub holder: String,
    /// Held until, ms since the epoch (the store's clock).
    pub until_ms: i64,
    /// Fencing token: grows by one every time the lease changes holder.
    pub token: i64,
}

/// One finished piece of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRecord {
    /// The job.
    pub job: String,
    /// The piece covers (from_ms, to_ms] (times for rollups and retention,
    /// queue ids for remote write).
    pub from_ms: i64,
    /// See `from_ms`.
    pub to_ms: i64,
    /// Who did it.
    pub holder: String,
    /// Under which fencing token.
    pub token: i64,
    /// When it was recorded (the store's clock).
    pub done_at_ms: i64,
}

/// Leases and the record of finished work.
pub trait Leases: Send + Sync {
    /// Take lease `name` for `holder` for `ttl_ms` when it is free, expired
    /// or already `holder`'s (a renewal); `Some(token)` when `holder` holds
    /// it afterwards, `None` when another collector does.
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Give lease `name` up (shutdown) if `holder` holds it.
    fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Every lease, by name.
    fn leases(&self) -> Result<Vec<Lease>, StoreError>;

    /// Record that `holder` finished the piece (from_ms, to_ms] of `job`
    /// under `token`. `Ok(false)` when the lease has changed hands since
    /// (fenced off) or the piece starting at `from_ms` is already recorded.
    fn work_done(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
        holder: &str,
        token: i64,
    ) -> Result<bool, StoreError>;

    /// Where the last recorded piece of `job` ends (`None`: none yet).
    fn work_last(&self, job: &str) -> Result<Option<i64>, StoreError>;

    /// Every recorded piece of `job`, in order.
    fn work_log(&self, job: &str) -> Result<Vec<WorkRecord>, StoreError>;
}
