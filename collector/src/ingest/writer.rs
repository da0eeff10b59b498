//! The single writer: one thread owns the store's writes, takes operations
//! from a bounded channel, commits batches from many agents in one
//! transaction (queued Hellos in another, session ends in a third), and
//! answers each sender only after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::metrics::Metrics;
use crate::model::{AgentIdentity, HelloInfo, ResultRow};
use crate::store::{self, IncomingBatch, IncomingHello, Store, StoreError};

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
    /// Batches sent and not yet taken by the writer thread.
    queued_batches: Arc<AtomicUsize>,
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
        let queued_batches = Arc::new(AtomicUsize::new(0));
        let (h, q) = (Arc::clone(&healthy), Arc::clone(&queued_batches));
        let join = std::thread::Builder::new()
            .name("pantau-writer".into())
            .spawn(move || {
                let mut rx = rx;
                startup(&*store, &metrics);
                run(&*store, &mut rx, &metrics, &h, &q);
            })
            .expect("spawning the writer thread");
        (
            Writer {
                tx,
                healthy,
                queued_batches,
            },
            join,
        )
    }

    /// Whether batches fill more than nine tenths of the write queue. Only
    /// batches count: queued Hellos and session ends are committed a group
    /// per transaction and are no reason to slow agents down (thousands of
    /// agents connecting at once would otherwise all be told to back off).
    pub fn busy(&self) -> bool {
        self.queued_batches.load(Ordering::Relaxed) * 10 > self.tx.max_capacity() * 9
    }

    /// Whether the last commit succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Queue an operation; waits while the queue is full (backpressure).
    pub async fn send(&self, op: WriteOp) -> Result<(), WriterGone> {
        let batch = matches!(op, WriteOp::Batch { .. });
        if batch {
            self.queued_batches.fetch_add(1, Ordering::Relaxed);
        }
        let sent = self.tx.send(op).await.map_err(|_| WriterGone);
        if batch && sent.is_err() {
            self.queued_batches.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }
}

/// Before the first operation: sessions of the previous run end, OPD
/// counters start at 0.
fn startup(store: &dyn Store, metrics: &Metrics) {
    if let Err(e) = store.close_dangling_sessions() {
        error!(error = %e, "cannot close sessions left open by the previous run");
    }
    seed_opds(store, metrics);
}

/// Take groups of operations until every sender is gone.
fn run(
    store: &dyn Store,
    rx: &mut mpsc::Receiver<WriteOp>,
    metrics: &Metrics,
    healthy: &AtomicBool,
    queued_batches: &AtomicUsize,
) {
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
        let mut hellos = Vec::new();
        let mut ends = Vec::new();
        for op in group.drain(..) {
            match op {
                WriteOp::Hello {
                    who,
                    info,
                    clock_offset_ms,
                    peer,
                    done,
                } => hellos.push(PendingHello {
                    who,
                    info,
                    clock_offset_ms,
                    peer,
                    done,
                }),
                WriteOp::SessionEnd { id, reason } => {
                    failed_sessions.remove(&id);
                    ends.push((id, reason));
                }
                WriteOp::Batch {
                    session,
                    who,
                    rows,
                    peer,
                    done,
                } => {
                    queued_batches.fetch_sub(1, Ordering::Relaxed);
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
        // Batches first, then Hellos, then session ends, each kind in one
        // transaction. No operation in a group waits for another of the same
        // group (a stream sends batches only after its Hello was answered, and
        // its end only after its batches were), so this order keeps every
        // stream's own order; a Hello queued after its agent's older stream's
        // batches sees them committed, as if handled one by one.
        if !batches.is_empty() {
            failed_sessions.extend(commit_batches(store, batches, metrics, healthy));
        }
        if !hellos.is_empty() {
            open_sessions(store, hellos, metrics, healthy);
        }
        if !ends.is_empty() {
            let ends: Vec<(i64, &str)> = ends.iter().map(|(id, r)| (*id, r.as_str())).collect();
            let r = store.end_sessions(&ends, store::now_ms());
            note(metrics, healthy, "session", r.as_ref().err());
        }
    }
}

struct PendingHello {
    who: AgentIdentity,
    info: HelloInfo,
    clock_offset_ms: Option<i64>,
    peer: String,
    done: oneshot::Sender<Result<(u64, i64), StoreError>>,
}

/// Record Hellos in one transaction and answer each: a failing one gets its
/// own error, the others their session.
fn open_sessions(
    store: &dyn Store,
    hellos: Vec<PendingHello>,
    metrics: &Metrics,
    healthy: &AtomicBool,
) {
    let incoming: Vec<IncomingHello<'_>> = hellos
        .iter()
        .map(|h| IncomingHello {
            who: &h.who,
            info: &h.info,
            clock_offset_ms: h.clock_offset_ms,
            peer: Some(&h.peer),
        })
        .collect();
    let attempt = store.hellos(&incoming, store::now_ms());
    drop(incoming);
    match attempt {
        Ok(answers) => {
            for (h, r) in hellos.into_iter().zip(answers) {
                let r = r.map(|o| (o.committed_seq, o.session));
                note(metrics, healthy, "hello", r.as_ref().err());
                metrics.known_opd(&h.who.opd_id);
                let _ = h.done.send(r);
            }
        }
        Err(e) => {
            note(metrics, healthy, "hello", Some(&e));
            let text = e.to_string();
            for h in hellos {
                metrics.known_opd(&h.who.opd_id);
                let _ = h.done.send(Err(StoreError::NotStored(text.clone())));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, ProbeKind, TargetDecl};
    use crate::store::conformance::core::row;
    use crate::store::{Registry, SqliteStore};

    fn who(agent: &str) -> AgentIdentity {
        AgentIdentity {
            agent_id: agent.into(),
            opd_id: "dinkes".into(),
        }
    }

    fn info() -> HelloInfo {
        HelloInfo {
            version: "0.1.0".into(),
            config_hash: "h".into(),
            hostname: "box".into(),
            epoch: 5,
            agent_time_ms: None,
            targets: vec![TargetDecl {
                id: "core".into(),
                group: Group::Intranet,
                kind: ProbeKind::Icmp,
                address: "10.0.0.1".into(),
                label: "Core".into(),
                interval_ms: 30_000,
                timeout_ms: 5_000,
            }],
        }
    }

    fn store(agents: &[&str]) -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        for (i, a) in agents.iter().enumerate() {
            s.add_agent(a, "dinkes", &[i as u8 + 1; 32]).unwrap();
        }
        (dir, Arc::new(s))
    }

    type HelloAnswer = oneshot::Receiver<Result<(u64, i64), StoreError>>;

    fn hello_op(agent: &str) -> (WriteOp, HelloAnswer) {
        let (done, answer) = oneshot::channel();
        let op = WriteOp::Hello {
            who: who(agent),
            info: info(),
            clock_offset_ms: Some(1),
            peer: "192.0.2.9:4000".into(),
            done,
        };
        (op, answer)
    }

    /// Queue `ops` before the writer starts, so that they form one group,
    /// then run the writer until the queue is empty.
    fn run_group(store: &Arc<dyn Store>, ops: Vec<WriteOp>) {
        assert!(ops.len() <= GROUP_MAX);
        let (tx, rx) = mpsc::channel(ops.len());
        for op in ops {
            tx.try_send(op).unwrap();
        }
        drop(tx);
        let (mut rx, healthy, queued) = (rx, AtomicBool::new(true), AtomicUsize::new(0));
        run(&**store, &mut rx, &Metrics::new(), &healthy, &queued);
    }

    #[test]
    fn one_bad_hello_in_a_group_fails_alone() {
        let (_dir, s) = store(&["a1", "a3"]);
        let (h1, a1) = hello_op("a1");
        // Not registered (removed after it authenticated): its target and
        // session rows break the foreign keys.
        let (h2, a2) = hello_op("gone");
        let (h3, a3) = hello_op("a3");
        run_group(&s, vec![h1, h2, h3]);
        let (c1, s1) = a1.blocking_recv().unwrap().expect("a1 answered");
        let (c3, s3) = a3.blocking_recv().unwrap().expect("a3 answered");
        assert_eq!((c1, c3), (0, 0));
        assert_ne!(s1, s3);
        let bad = a2.blocking_recv().unwrap();
        assert!(bad.is_err(), "the unknown agent's Hello fails: {bad:?}");
        for a in ["a1", "a3"] {
            let sessions = s.sessions(a, 0, i64::MAX).unwrap();
            assert_eq!(sessions.len(), 1, "{a} has its session");
            assert_eq!(sessions[0].peer.as_deref(), Some("192.0.2.9:4000"));
        }
        assert!(s.sessions("gone", 0, i64::MAX).unwrap().is_empty());
        let agents = s.agents().unwrap();
        assert!(
            agents
                .iter()
                .all(|a| a.version.as_deref() == Some("0.1.0") && a.clock_offset_ms == Some(1)),
            "both good Hellos recorded: {agents:?}"
        );
        assert_eq!(
            s.targets(None).unwrap().len(),
            2,
            "one `core` per good agent"
        );
    }

    #[test]
    fn hello_after_batches_of_its_agent_in_one_group_sees_them() {
        let (_dir, s) = store(&["a1"]);
        // The agent's older stream: its session and three batches still
        // queued when the agent reconnects; the new Hello comes after them,
        // then the older stream ends.
        let (first, a) = hello_op("a1");
        run_group(&s, vec![first]);
        let (_, old) = a.blocking_recv().unwrap().unwrap();
        let mut ops = Vec::new();
        let mut acks = Vec::new();
        for seqs in [1..=2, 3..=3, 4..=6] {
            let (done, ack) = oneshot::channel();
            ops.push(WriteOp::Batch {
                session: old,
                who: who("a1"),
                rows: seqs.map(|q| row(5, q)).collect(),
                peer: Some("192.0.2.9:4000".into()),
                done,
            });
            acks.push(ack);
        }
        let (again, answer) = hello_op("a1");
        ops.push(again);
        ops.push(WriteOp::SessionEnd {
            id: old,
            reason: "replaced".into(),
        });
        run_group(&s, ops);
        for ack in acks {
            ack.blocking_recv().unwrap().expect("batch committed");
        }
        let (committed, new) = answer.blocking_recv().unwrap().unwrap();
        assert_eq!(
            committed, 6,
            "the Hello answers after the batches queued before it"
        );
        assert_ne!(new, old);
        assert_eq!(s.committed_seq("a1", 5).unwrap(), 6);
        let sessions = s.sessions("a1", 0, i64::MAX).unwrap();
        let mut ends: Vec<Option<&str>> =
            sessions.iter().map(|x| x.end_reason.as_deref()).collect();
        ends.sort();
        assert_eq!(
            ends,
            [None, Some("replaced")],
            "the older ended, the newer open"
        );
    }

    /// A writer whose thread has not taken anything yet.
    fn stalled(queue: usize) -> (Writer, mpsc::Receiver<WriteOp>) {
        let (tx, rx) = mpsc::channel(queue);
        let w = Writer {
            tx,
            healthy: Arc::new(AtomicBool::new(true)),
            queued_batches: Arc::new(AtomicUsize::new(0)),
        };
        (w, rx)
    }

    #[test]
    fn queued_hellos_do_not_make_the_store_busy() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (w, mut rx) = stalled(10);
        rt.block_on(async {
            for i in 0..5 {
                w.send(hello_op(&format!("a{i}")).0).await.unwrap();
                let end = WriteOp::SessionEnd {
                    id: i,
                    reason: "x".into(),
                };
                w.send(end).await.unwrap();
            }
        });
        assert_eq!(w.tx.capacity(), 0, "the queue is full");
        assert!(!w.busy(), "Hellos and ends are committed a group at a time");
        // Batches filling the queue are a reason to back off.
        let (w, _rx) = stalled(10);
        let batch = || WriteOp::Batch {
            session: 1,
            who: who("a1"),
            rows: vec![row(5, 1)],
            peer: None,
            done: oneshot::channel().0,
        };
        rt.block_on(async {
            for _ in 0..9 {
                w.send(batch()).await.unwrap();
            }
            assert!(!w.busy(), "nine tenths");
            w.send(batch()).await.unwrap();
            assert!(w.busy(), "full of batches");
        });
        // The writer taking a batch makes room again.
        let (w2, mut rx2) = stalled(10);
        rt.block_on(async {
            for _ in 0..10 {
                w2.send(batch()).await.unwrap();
            }
        });
        let queued = Arc::clone(&w2.queued_batches);
        drop(w2);
        let (_dir, s) = store(&["a1"]);
        let healthy = Arc::new(AtomicBool::new(true));
        run(&*s, &mut rx2, &Metrics::new(), &healthy, &queued);
        assert_eq!(queued.load(Ordering::Relaxed), 0);
        rx.close();
    }
}
