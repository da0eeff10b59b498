//! The single writer: one thread owns the write connection, takes operations
//! from a bounded channel, commits batches from many agents in one
//! transaction, and answers each sender only after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::metrics::Metrics;
use crate::model::{AgentIdentity, HelloInfo, ResultRow};
use crate::store::{self, StoreError};

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
    /// Start the writer thread owning `conn` (reopened from `data_dir` after
    /// a failure); `queue` bounds pending operations.
    pub fn spawn(
        conn: Connection,
        data_dir: std::path::PathBuf,
        metrics: Arc<Metrics>,
        queue: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let h = Arc::clone(&healthy);
        let join = std::thread::Builder::new()
            .name("pantau-writer".into())
            .spawn(move || run(conn, &data_dir, rx, metrics, h))
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
    mut conn: Connection,
    data_dir: &std::path::Path,
    mut rx: mpsc::Receiver<WriteOp>,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
) {
    if let Err(e) = store::close_dangling_sessions(&conn) {
        error!(error = %e, "cannot close sessions left open by the previous run");
    }
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
            // After a failure (disk full, read-only, I/O error) start from a
            // fresh connection; SQLite may keep a broken handle otherwise.
            match store::open(data_dir) {
                Ok(c) => conn = c,
                Err(e) => error!(error = %e, "store still unavailable"),
            }
        }
        let mut batches = Vec::new();
        for op in group.drain(..) {
            match op {
                WriteOp::Hello {
                    who,
                    info,
                    clock_offset_ms,
                    done,
                } => {
                    let r = store::record_hello(&mut conn, &who, &info, clock_offset_ms).and_then(
                        |()| {
                            let committed = store::committed_seq(&conn, &who.agent_id, info.epoch)?;
                            let session = store::start_session(
                                &conn,
                                &who.agent_id,
                                info.epoch,
                                store::now_ms(),
                            )?;
                            Ok((committed, session))
                        },
                    );
                    note(&metrics, &healthy, "hello", r.as_ref().err());
                    let _ = done.send(r);
                }
                WriteOp::SessionEnd { id, reason } => {
                    failed_sessions.remove(&id);
                    let r = store::end_session(&conn, id, store::now_ms(), &reason);
                    note(&metrics, &healthy, "session", r.as_ref().err());
                }
                WriteOp::Batch {
                    session,
                    who,
                    rows,
                    done,
                } => {
                    if failed_sessions.contains(&session) {
                        let _ = done.send(Err(StoreError::NotStored(
                            "an earlier batch of this stream was not stored".into(),
                        )));
                    } else {
                        batches.push((session, who, rows, done));
                    }
                }
            }
        }
        if !batches.is_empty() {
            failed_sessions.extend(commit_batches(&mut conn, batches, &metrics, &healthy));
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

type Pending = (
    i64,
    AgentIdentity,
    Vec<ResultRow>,
    oneshot::Sender<Result<(), StoreError>>,
);

/// Commit batches in one transaction; returns the sessions whose batches failed.
fn commit_batches(
    conn: &mut Connection,
    batches: Vec<Pending>,
    metrics: &Metrics,
    healthy: &AtomicBool,
) -> Vec<i64> {
    let started = Instant::now();
    let received_at = store::now_ms();
    let attempt = (|| {
        let tx = store::write_tx(conn).map_err(|source| StoreError::Sqlite {
            op: "begin batch",
            source,
        })?;
        let mut counts = Vec::with_capacity(batches.len());
        for (_, who, rows, _) in &batches {
            counts.push(store::insert_results(&tx, who, rows, received_at)?);
            // Same transaction: a stored result always re-rolls its hour.
            crate::report::rollup::mark_dirty(&tx, &who.opd_id, rows)?;
        }
        tx.commit().map_err(|source| StoreError::Sqlite {
            op: "commit batch",
            source,
        })?;
        Ok::<_, StoreError>(counts)
    })();
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    note(metrics, healthy, "batch", attempt.as_ref().err());
    match attempt {
        Ok(counts) => {
            for ((_, who, rows, done), new) in batches.into_iter().zip(counts) {
                metrics.committed(&who, &rows, new, received_at);
                let _ = done.send(Ok(()));
            }
            Vec::new()
        }
        Err(e) => {
            let text = e.to_string();
            let mut failed = Vec::with_capacity(batches.len());
            for (session, _, _, done) in batches {
                failed.push(session);
                let _ = done.send(Err(StoreError::NotStored(text.clone())));
            }
            failed
        }
    }
}
