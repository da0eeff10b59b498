//! Shared background work when several collectors use one store: each job
//! (rollups and incidents, retention, the remote-write queue) is done by
//! the one collector holding its lease (`store/lease.rs`), renewed at every
//! run; a dead collector's lease expires after `[cluster] lease_ttl` and
//! the next collector to run that job takes it over with a new fencing
//! token. Every finished piece is recorded (job, period, holder, token).
//!
//! With SQLite (one collector) the leases are always this collector's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{IntGaugeVec, Opts, Registry};
use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::store::Store;

/// The shared jobs, as lease names and `work` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Rollup refresh (minutes, hours, days, incidents, capacity).
    Rollup,
    /// Raw-result retention.
    Retention,
    /// The remote-write queue.
    RemoteWrite,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 3] = [Job::Rollup, Job::Retention, Job::RemoteWrite];

    /// Lease name and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Rollup => "rollup",
            Job::Retention => "retention",
            Job::RemoteWrite => "remote_write",
        }
    }
}

/// This collector's side of the leases. Its methods block (store calls):
/// call them off the async workers.
pub struct Leaser {
    store: Arc<dyn Store>,
    node: String,
    ttl_ms: i64,
    held_gauge: IntGaugeVec,
    /// The token of each job held at the last attempt.
    held: Mutex<HashMap<Job, i64>>,
}

impl std::fmt::Debug for Leaser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaser")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Leaser {
    /// A leaser for `store` as `node`; registers `pantau_lease_held{work}`
    /// in `registry` when given.
    pub fn new(
        store: Arc<dyn Store>,
        node: String,
        cluster: &ClusterConfig,
        registry: Option<&Registry>,
    ) -> Self {
        let held_gauge = IntGaugeVec::new(
            Opts::new(
                "pantau_lease_held",
                "1 while this collector holds the lease of a shared background job \
                 (rollup, retention, remote_write), 0 while another collector does.",
            ),
            &["work"],
        )
        .expect("lease metric name and label are valid");
        if let Some(r) = registry {
            r.register(Box::new(held_gauge.clone()))
                .expect("lease metric name is unique");
        }
        for job in Job::ALL {
            held_gauge.with_label_values(&[job.as_str()]).set(0);
        }
        Leaser {
            store,
            node,
            ttl_ms: cluster.lease_ttl.as_millis() as i64,
            held_gauge,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// This collector's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Take or renew the lease of `job`: its fencing token when this
    /// collector holds it now, `None` when another does (or the store
    /// cannot say: then nobody here does the job until it can).
    pub fn hold(&self, job: Job) -> Option<i64> {
        let got = match self
            .store
            .lease_acquire(job.as_str(), &self.node, self.ttl_ms)
        {
            Ok(t) => t,
            Err(e) => {
                warn!(work = job.as_str(), error = %e, "cannot renew the lease; pausing this job");
                None
            }
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let before = held.get(&job).copied();
        match (before, got) {
            (None, Some(t)) => {
                info!(work = job.as_str(), node = %self.node, token = t, "lease taken: this collector does this job now")
            }
            (Some(a), Some(b)) if a != b => {
                info!(work = job.as_str(), node = %self.node, token = b, "lease taken again after losing it")
            }
            (Some(_), None) => {
                warn!(work = job.as_str(), node = %self.node, "lease lost: another collector does this job now")
            }
            _ => {}
        }
        match got {
            Some(t) => held.insert(job, t),
            None => held.remove(&job),
        };
        self.held_gauge
            .with_label_values(&[job.as_str()])
            .set(i64::from(got.is_some()));
        got
    }

    /// Where the last recorded piece of `job` ends.
    pub fn last(&self, job: Job) -> Option<i64> {
        match self.store.work_last(job.as_str()) {
            Ok(v) => v,
            Err(e) => {
                warn!(work = job.as_str(), error = %e, "cannot read the work record");
                None
            }
        }
    }

    /// Record the finished piece (from_ms, to_ms] of `job` done under
    /// `token`; a piece with nothing in it (`to_ms <= from_ms`) is not
    /// recorded. Returns whether it was recorded.
    pub fn done(&self, job: Job, from_ms: i64, to_ms: i64, token: i64) -> bool {
        if to_ms <= from_ms {
            return false;
        }
        match self
            .store
            .work_done(job.as_str(), from_ms, to_ms, &self.node, token)
        {
            Ok(true) => true,
            Ok(false) => {
                warn!(
                    work = job.as_str(),
                    from_ms,
                    to_ms,
                    token,
                    "finished work not recorded: the lease changed hands meanwhile or the piece was already recorded"
                );
                false
            }
            Err(e) => {
                warn!(work = job.as_str(), error = %e, "cannot record finished work");
                false
            }
        }
    }

    /// Give every held lease up (clean shutdown): another collector takes
    /// the jobs at its next run instead of after the time to live.
    pub fn release_all(&self) {
        let held: Vec<Job> = {
            let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
            h.drain().map(|(j, _)| j).collect()
        };
        for job in held {
            if let Err(e) = self.store.lease_release(job.as_str(), &self.node) {
                warn!(work = job.as_str(), error = %e, "cannot release the lease; it expires by itself");
            }
            self.held_gauge.with_label_values(&[job.as_str()]).set(0);
        }
    }
}
