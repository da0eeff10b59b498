//! The spool: numbered results waiting for the collector's ack.
//!
//! This is the in-memory spool of the foundation: bounded by a record count,
//! oldest dropped (and counted) when full, epoch renewed at every start
//! because the numbering does not survive a restart. The durable disk spool
//! replaces it behind the same interface.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::model::{Observation, ProbeKind, Record};

/// Counters describing the spool, sent in Hello and heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolState {
    /// Current epoch.
    pub epoch: u64,
    /// Lowest seq held, 0 when empty.
    pub first_seq: u64,
    /// Seq the next record gets.
    pub next_seq: u64,
    /// Records held.
    pub records: u64,
    /// Approximate bytes held.
    pub bytes: u64,
    /// Records dropped in this epoch.
    pub dropped: u64,
}

struct Inner {
    epoch: u64,
    next_seq: u64,
    records: VecDeque<(Record, u64)>,
    bytes: u64,
    dropped: u64,
}

/// A bounded in-memory spool shared by the scheduler and the exporter.
pub struct MemorySpool {
    inner: Mutex<Inner>,
    cap: usize,
    /// Woken whenever a record is appended.
    pub appended: Notify,
}

impl std::fmt::Debug for MemorySpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySpool")
            .field("state", &self.state())
            .finish()
    }
}

/// Rough in-memory size of a record, for the byte counter.
fn approx_bytes(r: &Record) -> u64 {
    let samples = match &r.obs.measurement {
        crate::model::Measurement::Ping(p) => p.samples.len() * 8,
        _ => 0,
    };
    (96 + r.obs.target_id.len() + r.obs.detail.len() + samples) as u64
}

impl MemorySpool {
    /// A new spool with a fresh random epoch holding at most `cap` records.
    pub fn new(cap: usize) -> Self {
        Self::with_epoch(rand::random::<u64>() >> 1 | 1, cap)
    }

    /// A new spool with a given epoch (tests).
    pub fn with_epoch(epoch: u64, cap: usize) -> Self {
        MemorySpool {
            inner: Mutex::new(Inner {
                epoch,
                next_seq: 1,
                records: VecDeque::new(),
                bytes: 0,
                dropped: 0,
            }),
            cap: cap.max(1),
            appended: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single push/pop), so poisoning is safe to ignore.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number an observation and append it; drops the oldest when full.
    pub fn append(&self, kind: Option<ProbeKind>, obs: Observation) -> u64 {
        let seq = {
            let mut g = self.lock();
            let seq = g.next_seq;
            g.next_seq += 1;
            let rec = Record {
                epoch: g.epoch,
                seq,
                kind,
                obs,
            };
            let b = approx_bytes(&rec);
            g.records.push_back((rec, b));
            g.bytes += b;
            while g.records.len() > self.cap {
                if let Some((_, b)) = g.records.pop_front() {
                    g.bytes -= b;
                    g.dropped += 1;
                }
            }
            seq
        };
        self.appended.notify_one();
        seq
    }

    /// Up to `max` records with seq greater than `after`, in order.
    pub fn after(&self, after: u64, max: usize) -> Vec<Record> {
        let g = self.lock();
        let start = g.records.partition_point(|(r, _)| r.seq <= after);
        g.records
            .range(start..)
            .take(max)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Forget every record of `epoch` with seq at or below `up_to`.
    pub fn ack(&self, epoch: u64, up_to: u64) {
        let mut g = self.lock();
        if epoch != g.epoch {
            return;
        }
        while g.records.front().is_some_and(|(r, _)| r.seq <= up_to) {
            if let Some((_, b)) = g.records.pop_front() {
                g.bytes -= b;
            }
        }
    }

    /// Current counters.
    pub fn state(&self) -> SpoolState {
        let g = self.lock();
        SpoolState {
            epoch: g.epoch,
            first_seq: g.records.front().map_or(0, |(r, _)| r.seq),
            next_seq: g.next_seq,
            records: g.records.len() as u64,
            bytes: g.bytes,
            dropped: g.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Measurement, Outcome};

    fn obs(id: &str) -> Observation {
        Observation {
            target_id: id.into(),
            observed_at: std::time::SystemTime::UNIX_EPOCH,
            outcome: Outcome::Ok,
            detail: String::new(),
            measurement: Measurement::None,
        }
    }

    #[test]
    fn sequences_grow_and_ack_removes_prefix() {
        let s = MemorySpool::with_epoch(9, 100);
        for i in 0..5 {
            assert_eq!(s.append(Some(ProbeKind::Tcp), obs(&format!("t{i}"))), i + 1);
        }
        assert_eq!(
            s.after(2, 10).iter().map(|r| r.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        s.ack(9, 3);
        let st = s.state();
        assert_eq!((st.first_seq, st.next_seq, st.records), (4, 6, 2));
        s.ack(8, 5); // another epoch: ignored
        assert_eq!(s.state().records, 2);
        s.ack(9, 5);
        assert_eq!(s.state().records, 0);
        assert_eq!(s.state().bytes, 0);
    }

    #[test]
    fn full_spool_drops_oldest_and_counts() {
        let s = MemorySpool::with_epoch(1, 3);
        for i in 0..5 {
            s.append(None, obs(&format!("t{i}")));
        }
        let st = s.state();
        assert_eq!((st.first_seq, st.records, st.dropped), (3, 3, 2));
        assert_eq!(
            s.after(0, 10).iter().map(|r| r.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }
}
