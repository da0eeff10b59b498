//! The single writer: one thread owns the store's writes, takes operations
//! from a bounded channel, commits batches from many agents in one
//! transaction, and answers each sender only after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::metrics::Metrics;
use crate::model::{AgentIdentity, HelloInfo, ResultRow};
use crate::store::{self, IncomingBatch, Store, StoreError};

/// Most batches folded into one transaction.
const GROUP_MAX: usize = 64;

/// One operation for the writer.
#[derive(Debug)]
pub enum WriteOp {
    /// Record a Hello, open a session, and answer with the committed seq of
    /// its epoch and the session id.
    Hello {
        /// Who.
        who: AgentIdentity,
        /// What it said.
        info: HelloInfo,
        /// Estimated clock offset.
        clock_offset_ms: Option<i64>,
        /// The stream's peer address.
        peer: String,
        /// Answer: (committed seq, session id).
        done: oneshot::Sender<Result<(u64, i64), StoreError>>,
    },
    /// Close a session.
    SessionEnd {
        /// Session id.
        id: i64,
        /// Why it ended.
        reason: String,
    },
    /// Store a batch.
    Batch {
        /// The stream's session id: once a batch of a session fails, later
        /// batches of that session are refused, so a commit can never leave a
        /// hole below a committed sequence.
        session: i64,
        /// Who.
        who: AgentIdentity,
        /// Rows.
        rows: Vec<ResultRow>,
        /// The agent's address, for conflicting duplicates.
        peer: Option<String>,
        /// Answered after commit.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Handle for sending operations to the writer.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteOp>,
    healthy: Arc<AtomicBool>,
}

/// The writer thread went away (only at shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the store writer has stopped")]
pub struct WriterGone;

impl Writer {
    /// Start the writer thread writing to `store`; `queue` bounds pending
    /// operations.
    pub fn spawn(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        queue: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let h = Arc::clone(&healthy);
        let join = std::thread::Builder::new()
            .name("pantau-writer".into())
            .spawn(move || run(&*store, rx, metrics, h))
            .expect("spawning the writer thread");
        (Writer { tx, healthy }, join)
    }

    /// Whether the write queue is more than nine tenths full.
    pub fn busy(&self) -> bool {
        self.tx.capacity() * 10 < self.tx.max_capacity()
    }

    /// Whether the last commit succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queue an operation; waits while the queue is full (backpressure).
    pub async fn send(&self, op: WriteOp) -> Result<(), WriterGone> {
        self.tx.send(op).await.map_err(|_| WriterGone)
    }
}

fn run(
    store: &dyn Store,
    mut rx: mpsc::Receiver<WriteOp>,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
) {
    if let Err(e) = store.close_dangling_sessions() {
        error!(error = %e, "cannot close sessions left open by the previous run");
    }
    seed_opds(store, &metrics);
    let mut group = Vec::with_capacity(GROUP_MAX);
    let mut failed_sessions = std::collections::HashSet::new();
    while let Some(op) = rx.blocking_recv() {
        group.push(op);
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        if !healthy.load(Ordering::Relaxed) {
            // After a failure (disk full, read-only, I/O error) let the store
            // reopen what it holds: SQLite may keep a broken handle otherwise.
            if let Err(e) = store.recover() {
                error!(error = %e, "store still unavailable");
            }
        }
        let mut batches = Vec::new();
        for op in group.drain(..) {
            match op {
                WriteOp::Hello {
                    who,
                    info,
                    clock_offset_ms,
                    peer,
                    done,
                } => {
                    let r = store
                        .hello(&who, &info, clock_offset_ms, Some(&peer), store::now_ms())
                        .map(|o| (o.committed_seq, o.session));
                    note(&metrics, &healthy, "hello", r.as_ref().err());
                    metrics.known_opd(&who.opd_id);
                    let _ = done.send(r);
                }
                WriteOp::SessionEnd { id, reason } => {
                    failed_sessions.remove(&id);
                    let r = store.end_session(id, store::now_ms(), &reason);
                    note(&metrics, &healthy, "session", r.as_ref().err());
                }
                WriteOp::Batch {
                    session,
                    who,
                    rows,
                    peer,
                    done,
                } => {
                    if failed_sessions.contains(&session) {
                        let _ = done.send(Err(StoreError::NotStored(
                            "an earlier batch of this stream was not stored".into(),
                        )));
                    } else {
                        batches.push(Pending {
                            session,
                            who,
                            rows,
                            peer,
                            done,
                        });
                    }
                }
            }
        }
        if !batches.is_empty() {
            failed_sessions.extend(commit_batches(store, batches, &metrics, &healthy));
        }
    }
}

fn note(metrics: &Metrics, healthy: &AtomicBool, op: &str, err: Option<&StoreError>) {
    match err {
        None => healthy.store(true, Ordering::Relaxed),
        Some(e) => {
            healthy.store(false, Ordering::Relaxed);
            metrics.store_errors.with_label_values(&[op]).inc();
            error!(error = %e, op, "store write failed; results are not acknowledged and stay in agent spools");
        }
    }
}

/// Conflict counters of every registered OPD start at 0.
fn seed_opds(store: &dyn Store, metrics: &Metrics) {
    match store.opd_ids() {
        Ok(ids) => ids.iter().for_each(|id| metrics.known_opd(id)),
        Err(e) => warn!(error = %e, "cannot list OPDs to initialise metrics"),
    }
}

struct Pending {
    session: i64,
    who: AgentIdentity,
    rows: Vec<ResultRow>,
    peer: Option<String>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Commit batches in one transaction; returns the sessions whose batches failed.
fn commit_batches(
    store: &dyn Store,
    batches: Vec<Pending>,
    metrics: &Metrics,
    healthy: &AtomicBool,
) -> Vec<i64> {
    let started = Instant::now();
    let received_at = store::now_ms();
    let incoming: Vec<IncomingBatch<'_>> = batches
        .iter()
        .map(|b| IncomingBatch {
            who: &b.who,
            rows: &b.rows,
            peer: b.peer.as_deref(),
        })
        .collect();
    let attempt = store.store_batches(&incoming, received_at);
    drop(incoming);
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    note(metrics, healthy, "batch", attempt.as_ref().err());
    match attempt {
        Ok(counts) => {
            for (b, stored) in batches.into_iter().zip(counts) {
                conflicts(&b, &stored, metrics);
                if stored.conflicts.is_empty() && stored.conflicts_resent.is_empty() {
                    metrics.committed(&b.who, &b.rows, stored.new, received_at);
                } else {
                    // Another writer's results must not move this agent's gauges.
                    let own: Vec<ResultRow> = b
                        .rows
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !stored.is_conflict(*i))
                        .map(|(_, r)| r)
                        .collect();
                    metrics.committed(&b.who, &own, stored.new, received_at);
                }
                // Acked like any stored batch: resending cannot resolve a
                // conflict, and the agent must not retry it forever.
                let _ = b.done.send(Ok(()));
            }
            Vec::new()
        }
        Err(e) => {
            let text = e.to_string();
            let mut failed = Vec::with_capacity(batches.len());
            for b in batches {
                failed.push(b.session);
                let _ = b.done.send(Err(StoreError::NotStored(text.clone())));
            }
            failed
        }
    }
}

/// Log and count the conflicting duplicates of one committed batch: one
/// line per batch (a clone conflicts on every result; the log stays bounded).
fn conflicts(b: &Pending, stored: &store::Stored, metrics: &Metrics) {
    let Some(&first) = stored.conflicts.first() else {
        return;
    };
    const SHOWN: usize = 20;
    let mut seqs: Vec<String> = stored
        .conflicts
        .iter()
        .take(SHOWN)
        .map(|&i| b.rows[i].seq.to_string())
        .collect();
    if stored.conflicts.len() > SHOWN {
        seqs.push("...".into());
    }
    error!(agent = %b.who.agent_id, opd = %b.who.opd_id, epoch = b.rows[first].epoch,
        seq = %seqs.join(","), conflicts = stored.conflicts.len(), peer = b.peer.as_deref().unwrap_or("-"),
        "conflicting duplicates: these (agent, epoch, seq) were already stored with different content; \
         two agents share one identity (cloned agent or two writers on one spool); kept aside in result_conflict");
    metrics.conflicts(&b.who.opd_id, stored.conflicts.len());
}
