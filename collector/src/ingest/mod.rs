//! gRPC ingest: a thin tonic handler that authenticates the stream, checks
//! Hello, hands validated batches to the writer and acknowledges each batch
//! in order once the writer has committed it.

mod auth;
pub mod clock;
mod enrol;
pub(crate) mod limiter;
pub mod server;
pub mod validate;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_server::Ingest;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::model::AgentIdentity;
use crate::store::{self, SharedStore, StoreError};
use writer::{WriteOp, Writer};

/// Batches received but not yet acknowledged, per stream.
const ACK_QUEUE: usize = 16;

/// How often an open stream re-checks its agent's credential, so that
/// `agent disable|revoke|rotate` and an expiry close it within seconds.
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(2);

/// A peer address for logs and messages (`unknown` when the transport has none).
fn peer_text(p: Option<SocketAddr>) -> String {
    p.map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// The open stream of an agent.
#[derive(Debug)]
struct Live {
    /// Distinguishes this stream from a later one of the same agent.
    generation: u64,
    /// Closes the stream, naming the newer connection's peer.
    replace: Option<oneshot::Sender<String>>,
}

/// Open streams by agent id: at most one per agent. A newer stream with the
/// same identity wins; the older one is closed with ABORTED.
#[derive(Debug, Default)]
struct LiveStreams {
    next: u64,
    by_agent: HashMap<String, Live>,
}

/// The Ingest service.
#[derive(Debug, Clone)]
pub struct IngestService {
    store: SharedStore,
    writer: Writer,
    metrics: Arc<Metrics>,
    hello_timeout: Duration,
    max_batch: usize,
    max_age_ms: i64,
    shutdown: CancellationToken,
    /// `[enrol]` targets (a `[[targets]]` fragment); `None`: built-in default.
    enrol_targets: Option<Arc<str>>,
    /// The CA certificate (PEM) handed to enrolling agents.
    enrol_ca_pem: Option<Arc<str>>,
    live: Arc<Mutex<LiveStreams>>,
    /// Failed authentications per source address (Stream and Enrol).
    limiter: Arc<limiter::FailureLimiter>,
    /// Client certificates: required or not, revocations, issuance.
    certs: Option<Arc<CertPolicy>>,
    /// The key central configuration updates are signed with; `None`: no
    /// updates are pushed.
    config_key: Option<Arc<ed25519_dalek::SigningKey>>,
}

/// How the service treats client certificates (mutual TLS).
#[derive(Debug)]
pub struct CertPolicy {
    /// `[tls] client_certs`.
    pub mode: crate::mtls::ClientCertMode,
    /// What the handshake accepts; refreshed after every issuance.
    pub revocations: Arc<crate::mtls::Revocations>,
    /// The built-in CA that issues certificates (`None` with an own CA).
    pub issuer: Option<crate::tls::CaFiles>,
    /// Validity of issued certificates.
    pub validity: Duration,
}

impl IngestService {
    /// Build the service. Open streams end when `shutdown` is cancelled.
    pub fn new(
        store: SharedStore,
        writer: Writer,
        metrics: Arc<Metrics>,
        hello_timeout: Duration,
        max_batch: usize,
        max_age_ms: i64,
        shutdown: CancellationToken,
    ) -> Self {
        IngestService {
            store,
            writer,
            metrics,
            hello_timeout,
            max_batch,
            max_age_ms,
            shutdown,
            enrol_targets: None,
            enrol_ca_pem: None,
            live: Arc::default(),
            limiter: Arc::default(),
            certs: None,
            config_key: None,
        }
    }

    /// Push central targets (`crate::fleet`) to agents, signed with `key`.
    pub fn with_config_key(mut self, key: ed25519_dalek::SigningKey) -> Self {
        self.config_key = Some(Arc::new(key));
        self
    }

    /// Client certificate checks and issuance; without, no certificate is
    /// asked for (plaintext lab setups).
    pub fn with_client_certs(mut self, policy: Option<CertPolicy>) -> Self {
        self.certs = policy.map(Arc::new);
        self
    }

    /// The standard targets for newly enrolled agents (`[enrol]`), as a
    /// `[[targets]]` TOML fragment; `None` keeps the built-in default.
    pub fn with_enrol_targets(mut self, targets: Option<String>) -> Self {
        self.enrol_targets = targets.map(Arc::from);
        self
    }

    /// The CA certificate (PEM) enrolling agents are given for `collector.ca`.
    pub fn with_enrol_ca(mut self, ca_pem: Option<String>) -> Self {
        self.enrol_ca_pem = ca_pem.map(Arc::from);
        self
    }
}

/// Map an inbound stream error to the status the agent should see.
fn inbound_status(s: Status) -> (Status, &'static str) {
    match s.code() {
        tonic::Code::OutOfRange => (
            Status::resource_exhausted(s.message().to_string()),
            "too_large",
        ),
        tonic::Code::Internal => (
            Status::invalid_argument(format!("malformed message: {}", s.message())),
            "malformed",
        ),
        _ => (s, "stream_error"),
    }
}

type Out = mpsc::Sender<Result<pb::CollectorMessage, Status>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type StreamStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::CollectorMessage, Status>> + Send>>;

    async fn enrol(
        &self,
        req: Request<pb::EnrolRequest>,
    ) -> Result<Response<pb::EnrolInfo>, Status> {
        self.enrol_info(req).await
    }

    async fn renew(
        &self,
        req: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::RenewReply>, Status> {
        self.renew_cert(req).await
    }

    // Long: the stream's life in order (authenticate, Hello, Welcome,
    // take-over of an older stream, the read loop, the goodbye), one place.
    async fn stream(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let auth::Authenticated { who, digest } = self.authenticated(&req).await?;
        let peer = peer_text(req.remote_addr());
        let mut inbound = req.into_inner();
        let first = match tokio::time::timeout(self.hello_timeout, inbound.message()).await {
            Err(_) => {
                return Err(Status::deadline_exceeded(
                    "no Hello within the hello timeout",
                ));
            }
            Ok(Err(s)) => {
                let (s, reason) = inbound_status(s);
                self.metrics.reject(reason);
                return Err(s);
            }
            Ok(Ok(m)) => m,
        };
        let Some(pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Hello(hello)),
        }) = first
        else {
            self.metrics.reject("invalid");
            return Err(Status::invalid_argument("the first message must be Hello"));
        };
        if hello.agent_id != who.agent_id {
            self.metrics.reject("wrong_agent");
            return Err(Status::permission_denied(format!(
                "this token belongs to agent `{}`, not `{}`",
                who.agent_id,
                hello.agent_id.chars().take(64).collect::<String>()
            )));
        }
        let declared_next = hello.spool.as_ref().map_or(0, |s| s.next_seq);
        let applied = AppliedConfig {
            version: hello.config_version,
            sha256: hello.config_sha256.chars().take(64).collect(),
        };
        let info = validate::hello(hello).map_err(|e| {
            self.metrics.reject("invalid");
            Status::invalid_argument(format!("Hello: {e}"))
        })?;
        let now = store::now_ms();
        let offset = info.agent_time_ms.map(|t| now - t);
        let (done, answer) = oneshot::channel();
        let catalogue = validate::catalogue(&info);
        let epoch = info.epoch;
        self.metrics
            .declare_targets(&who, info.targets.iter().map(|t| t.id.as_str()));
        self.metrics
            .agent_info(&who, &info.version, &info.hostname, &info.config_hash);
        self.metrics.config_version(&who, applied.version);
        self.writer
            .send(WriteOp::Hello {
                who: who.clone(),
                info,
                clock_offset_ms: offset,
                peer: peer.clone(),
                done,
            })
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (committed, session_id) = answer
            .await
            .map_err(|_| Status::unavailable("store writer stopped"))?
            .map_err(|e| Status::unavailable(format!("store unavailable: {e}")))?;
        if let Some(o) = offset {
            self.metrics.clock_offset(&who, o);
        }
        info!(agent = %who.agent_id, opd = %who.opd_id, %peer, epoch, committed, "agent connected");
        if declared_next > 0 && committed >= declared_next {
            // The agent keeps its spool (see the agent's resume_point); the
            // admin has to find the second writer or the restored copy.
            self.metrics.seq_beyond_spool(&who);
            warn!(agent = %who.agent_id, opd = %who.opd_id, %peer, epoch, committed, declared_next,
                "the collector holds results numbered beyond this agent's spool: another machine may use its identity, or its spool was restored from a copy");
        }

        let (out, rx) = mpsc::channel(ACK_QUEUE + 4);
        let welcome = pb::Welcome {
            epoch,
            committed_seq: committed,
            collector_time: Some(pantau_proto::timestamp_from_millis(store::now_ms())),
            opd_id: who.opd_id.clone(),
            max_batch_results: self.max_batch as u32,
        };
        let _ = out
            .send(Ok(pb::CollectorMessage {
                msg: Some(pb::collector_message::Msg::Welcome(welcome)),
            }))
            .await;
        let (replace, replaced) = oneshot::channel();
        let generation = {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.next += 1;
            let generation = live.next;
            let older = live.by_agent.insert(
                who.agent_id.clone(),
                Live {
                    generation,
                    replace: Some(replace),
                },
            );
            if let Some(tx) = older.and_then(|mut o| o.replace.take()) {
                // The older stream logs its own peer when it closes.
                warn!(agent = %who.agent_id, opd = %who.opd_id, newer_peer = %peer,
                    "a second stream with the same agent identity: the newer wins, closing the older");
                let _ = tx.send(peer.clone());
            }
            self.metrics.connected(&who, true);
            generation
        };
        // Replays at or below `committed` are accepted and ignored by the store's
        // unique key; only order within the stream is enforced.
        let session = Session {
            svc: self.clone(),
            who,
            epoch,
            catalogue,
            after: 0,
            offset_ms: offset.unwrap_or(0),
            id: session_id,
            peer,
            generation,
            declared_next,
            started: std::time::Instant::now(),
            digest,
            applied,
            checked_revision: -1,
        };
        tokio::spawn(session.run(inbound, out, replaced));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

struct Session {
    svc: IngestService,
    who: AgentIdentity,
    epoch: u64,
    catalogue: validate::Catalogue,
    /// Highest seq received on this stream.
    after: u64,
    /// Collector clock minus agent clock at Hello.
    offset_ms: i64,
    /// Session row id.
    id: i64,
    /// The agent's address, for logs and kept-aside conflicts.
    peer: String,
    /// This stream's entry in the service's open streams.
    generation: u64,
    /// `Hello.spool.next_seq`: seqs far above it are refused.
    declared_next: u64,
    /// When the Hello was accepted.
    started: std::time::Instant,
    /// SHA-256 of the token the stream authenticated with.
    digest: [u8; 32],
    /// The central configuration the agent says it applied.
    applied: AppliedConfig,
    /// The configuration revision last compared with `applied` (-1: none).
    checked_revision: i64,
}

/// What an agent reported applying (Hello, then ConfigStatus).
#[derive(Debug, Clone, Default)]
struct AppliedConfig {
    version: u64,
    sha256: String,
}

impl Session {
    async fn run(
        mut self,
        mut inbound: Streaming<pb::AgentMessage>,
        out: Out,
        replaced: oneshot::Receiver<String>,
    ) {
        // Only a sent peer closes the stream; a dropped sender never does.
        let replaced = async move {
            match replaced.await {
                Ok(newer) => newer,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::pin!(replaced);
        let (ack_tx, ack_rx) =
            mpsc::channel::<(u64, oneshot::Receiver<Result<(), StoreError>>)>(ACK_QUEUE);
        let acker = tokio::spawn(acker(self.epoch, ack_rx, out.clone()));
        let shutdown = self.svc.shutdown.clone();
        let mut recheck = tokio::time::interval_at(
            tokio::time::Instant::now() + CREDENTIAL_RECHECK,
            CREDENTIAL_RECHECK,
        );
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.record_status(String::new()).await;
        self.push_config(&out).await;
        let end: Option<Status> = loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break Some(Status::unavailable("collector is shutting down; reconnect later")),
                _ = recheck.tick() => match self.credential_ended().await {
                    Some(status) => break Some(status),
                    None => {
                        self.push_config(&out).await;
                        continue;
                    }
                },
                newer = &mut replaced => {
                    self.svc.metrics.reject("replaced");
                    break Some(Status::aborted(format!(
                        "replaced by a newer connection from {newer} with the same agent identity; \
                         two agents may be sharing one token"
                    )));
                }
                m = inbound.message() => m,
            };
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(None) => break None,
                Err(s) => {
                    let (s, reason) = inbound_status(s);
                    if reason != "stream_error" {
                        self.svc.metrics.reject(reason);
                    }
                    break Some(s);
                }
            };
            match msg.msg {
                Some(pb::agent_message::Msg::Batch(b)) => {
                    if let Some(end) = self.batch(b, &out, &ack_tx).await {
                        break end;
                    }
                }
                Some(pb::agent_message::Msg::ConfigStatus(s)) => self.config_status(s).await,
                Some(pb::agent_message::Msg::Hello(_)) => {
                    self.svc.metrics.reject("invalid");
                    break Some(Status::invalid_argument(
                        "Hello may only be sent once, first",
                    ));
                }
                None => {
                    self.svc.metrics.reject("invalid");
                    break Some(Status::invalid_argument("empty AgentMessage"));
                }
            }
        };
        // Let every accepted batch be acknowledged before the stream closes.
        drop(ack_tx);
        let _ = acker.await;
        let reason = match &end {
            None => "agent closed the stream".to_string(),
            Some(s) => format!(
                "{:?}: {}",
                s.code(),
                s.message().chars().take(200).collect::<String>()
            ),
        };
        if let Some(s) = end {
            warn!(agent = %self.who.agent_id, peer = %self.peer, code = ?s.code(), status = %s.message(), "closing agent stream");
            let _ = out.send(Err(s)).await;
        }
        let _ = self
            .svc
            .writer
            .send(WriteOp::SessionEnd {
                id: self.id,
                reason,
            })
            .await;
        // Disconnected only when no newer stream of the agent is open.
        let last = {
            let mut live = self.svc.live.lock().unwrap_or_else(|p| p.into_inner());
            let mine = live
                .by_agent
                .get(&self.who.agent_id)
                .is_some_and(|l| l.generation == self.generation);
            if mine {
                live.by_agent.remove(&self.who.agent_id);
                self.svc.metrics.connected(&self.who, false);
            }
            mine
        };
        info!(agent = %self.who.agent_id, peer = %self.peer, still_connected = !last, "agent disconnected");
    }

    /// Validate, stamp and queue one batch for the writer, its ack for the
    /// acker. `Some(end)` ends the stream (`end` as in [`Session::run`]).
    async fn batch(
        &mut self,
        b: pb::ResultBatch,
        out: &Out,
        ack_tx: &mpsc::Sender<(u64, oneshot::Receiver<Result<(), StoreError>>)>,
    ) -> Option<Option<Status>> {
        if b.results.len() > self.svc.max_batch {
            self.svc.metrics.reject("too_large");
            return Some(Some(Status::resource_exhausted(format!(
                "batch of {} results; at most {}",
                b.results.len(),
                self.svc.max_batch
            ))));
        }
        let mut rows = match validate::batch(b, self.epoch, self.after, &self.catalogue)
            .and_then(|rows| self.within_declared(rows))
        {
            Ok(r) => r,
            Err(e) => {
                self.svc.metrics.reject("invalid");
                return Some(Some(Status::invalid_argument(e.to_string())));
            }
        };
        clock::stamp(
            &mut rows,
            store::now_ms(),
            self.offset_ms,
            self.svc.max_age_ms,
            &self.catalogue,
        );
        if self.svc.writer.busy() {
            let hint = pb::Backoff {
                delay_ms: 1000,
                reason: "store busy".into(),
            };
            let msg = pb::CollectorMessage {
                msg: Some(pb::collector_message::Msg::Backoff(hint)),
            };
            let _ = out.try_send(Ok(msg));
        }
        let last = rows.last().map_or(self.after, |r| r.seq);
        self.after = last;
        let (done, committed) = oneshot::channel();
        if self
            .svc
            .writer
            .send(WriteOp::Batch {
                session: self.id,
                who: self.who.clone(),
                rows,
                peer: Some(self.peer.clone()),
                done,
            })
            .await
            .is_err()
        {
            return Some(Some(Status::unavailable("collector is shutting down")));
        }
        if ack_tx.send((last, committed)).await.is_err() {
            return Some(None);
        }
        None
    }
}

impl Session {
    /// Send the agent its central configuration when the revision moved
    /// since the last check and what it applied differs from what it
    /// should probe (checked at the start and at every credential re-check,
    /// so a change made by any collector sharing the store arrives within
    /// seconds). A store error is logged; the next check tries again.
    async fn push_config(&mut self, out: &Out) {
        let Some(key) = self.svc.config_key.clone() else {
            return;
        };
        let revision = match self.svc.store.with(|s| s.fleet_revision()).await {
            Ok(r) => r,
            Err(e) => {
                warn!(agent = %self.who.agent_id, error = %e, "cannot read the configuration revision");
                return;
            }
        };
        if revision == self.checked_revision || revision == 0 {
            return;
        }
        let (agent, opd) = (self.who.agent_id.clone(), self.who.opd_id.clone());
        let effective = match self
            .svc
            .store
            .with(move |s| crate::fleet::effective(s, &agent, &opd))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                warn!(agent = %self.who.agent_id, error = %e, "cannot compute the agent's central configuration");
                return;
            }
        };
        self.checked_revision = revision;
        if self.applied.version == effective.version.max(0) as u64
            && self.applied.sha256 == effective.sha256
        {
            return;
        }
        let update = crate::fleet::sign_update(&key, &self.who.agent_id, &effective);
        info!(agent = %self.who.agent_id, version = update.version, sha256 = %update.sha256,
            "sending central configuration");
        let _ = out
            .send(Ok(pb::CollectorMessage {
                msg: Some(pb::collector_message::Msg::Config(update)),
            }))
            .await;
    }

    /// The agent's answer to an update: kept in the store, shown by
    /// `agent list`, `/api/v1/agents` and `pantau_agent_info`.
    async fn config_status(&mut self, s: pb::ConfigStatus) {
        self.applied = AppliedConfig {
            version: s.version,
            sha256: s.sha256.chars().take(64).collect(),
        };
        self.svc.metrics.config_version(&self.who, s.version);
        let error: String = s.error.chars().take(2000).collect();
        if error.is_empty() {
            info!(agent = %self.who.agent_id, version = s.version, "agent applied its central configuration");
        } else {
            warn!(agent = %self.who.agent_id, version = s.version, error = %error,
                "agent refused its central configuration and keeps the previous one");
        }
        self.record_status(error).await;
    }

    async fn record_status(&self, error: String) {
        let status = crate::store::fleet::ConfigStatus {
            version: self.applied.version.min(i64::MAX as u64) as i64,
            sha256: self.applied.sha256.clone(),
            error,
            reported_at_ms: store::now_ms(),
        };
        let agent = self.who.agent_id.clone();
        if let Err(e) = self
            .svc
            .store
            .with(move |s| s.record_config_status(&agent, &status))
            .await
        {
            warn!(agent = %self.who.agent_id, error = %e, "cannot store the agent's configuration status");
        }
    }

    /// The status that ends this stream if its agent's credential was
    /// disabled, revoked, rotated or expired since it authenticated. A store
    /// error keeps the stream: the next re-check tries again.
    async fn credential_ended(&self) -> Option<Status> {
        let id = self.who.agent_id.clone();
        let cred = match self.svc.store.with(move |s| s.credential_of(&id)).await {
            Ok(c) => c,
            Err(e) => {
                warn!(agent = %self.who.agent_id, error = %e, "cannot re-check the agent's credential");
                return None;
            }
        };
        let why = match cred {
            None => store::registry::Refusal::Revoked,
            Some(c) => c.refusal(&self.digest, store::now_ms())?,
        };
        self.svc.metrics.auth("closed", why.label());
        warn!(agent = %self.who.agent_id, peer = %self.peer, reason = why.label(),
            "credential changed: closing the agent's open stream");
        Some(auth::refusal_status(why))
    }

    /// Refuse a batch numbered far beyond the `next_seq` its Hello declared
    /// ([`validate::seq_ceiling`]).
    fn within_declared(
        &self,
        rows: Vec<crate::model::ResultRow>,
    ) -> Result<Vec<crate::model::ResultRow>, validate::BatchError> {
        let elapsed = self.started.elapsed().as_millis() as u64;
        let ceiling = validate::seq_ceiling(self.declared_next, &self.catalogue, elapsed);
        match rows.iter().position(|r| r.seq > ceiling) {
            None => Ok(rows),
            Some(i) => Err(validate::BatchError::SeqBeyondDeclared {
                i,
                seq: rows[i].seq,
                declared: self.declared_next,
                ceiling,
            }),
        }
    }
}

/// Acknowledge batches in order, each after its commit.
async fn acker(
    epoch: u64,
    mut rx: mpsc::Receiver<(u64, oneshot::Receiver<Result<(), StoreError>>)>,
    out: Out,
) {
    while let Some((last, committed)) = rx.recv().await {
        match committed.await {
            Ok(Ok(())) => {
                let ack = pb::Ack {
                    epoch,
                    up_to_seq: last,
                };
                if out
                    .send(Ok(pb::CollectorMessage {
                        msg: Some(pb::collector_message::Msg::Ack(ack)),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(Err(e)) => {
                let _ = out
                    .send(Err(Status::unavailable(format!(
                        "store unavailable, results not acknowledged: {e}"
                    ))))
                    .await;
                return;
            }
            Err(_) => {
                let _ = out
                    .send(Err(Status::unavailable("collector is shutting down")))
                    .await;
                return;
            }
        }
    }
}
