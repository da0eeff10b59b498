//! The exporter: keeps one gRPC stream open to the collector, resends
//! everything its spool holds unacknowledged, sends numbered batches with a
//! bounded number in flight, and forgets results only when acknowledged.
//! Reconnects forever with capped exponential backoff and jitter.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, error, info, warn};

use crate::config::AgentConfig;
use crate::spool::{DiskSpool, SpoolState};
use crate::wire::unix_ms;

/// Batches sent but not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: usize = 4;
/// Backlogs of at least this many results get progress lines while replayed.
pub const REPLAY_LOG_MIN: u64 = 50;
/// How often replay progress is logged.
pub const REPLAY_LOG_EVERY: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(120);

/// Shared view of the connection for heartbeats and `check`.
#[derive(Debug, Default)]
pub struct LinkState {
    /// Estimated collector clock minus agent clock, ms.
    pub clock_offset_ms: AtomicI64,
    /// Whether a stream is established.
    pub connected: AtomicBool,
    /// Welcomes that claimed results beyond this spool (another writer with
    /// this identity, or a forged result): an alert, each one logged as an
    /// ERROR; the spool is kept and resent from its own acknowledgement.
    pub welcome_beyond_spool: AtomicU64,
    /// The central configuration (set by `run`; absent in `check`).
    pub central: std::sync::OnceLock<Arc<crate::central::Central>>,
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Could not connect.
    #[error(
        "cannot connect to collector {url}: {}{}",
        chain(source),
        tls_hint(url)
    )]
    Connect {
        /// Collector URL.
        url: String,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// The TLS settings could not be used.
    #[error(transparent)]
    Tls(#[from] EndpointError),
    /// The collector refused or ended the stream.
    #[error("collector {url} ended the stream: {status}")]
    Status {
        /// Collector URL.
        url: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The collector broke the protocol.
    #[error("collector {url} broke the protocol: {what}")]
    Protocol {
        /// Collector URL.
        url: String,
        /// What happened.
        what: String,
    },
}

/// Progress of sending the results that waited in the spool while the
/// collector was unreachable: what is logged, and when.
#[derive(Debug)]
pub struct Replay {
    /// Highest seq the collector had committed at connect.
    base: u64,
    /// Last seq held at connect: the backlog is (base, end].
    end: u64,
    /// Results in the backlog.
    total: u64,
    started: Instant,
    last_log: Instant,
}

impl Replay {
    /// A replay to report, when the backlog is at least [`REPLAY_LOG_MIN`].
    /// Returns it with its first log line.
    pub fn start(committed: u64, held: u64, next_seq: u64, now: Instant) -> Option<(Self, String)> {
        if held < REPLAY_LOG_MIN {
            return None;
        }
        let r = Replay {
            base: committed,
            end: next_seq.saturating_sub(1),
            total: held,
            started: now,
            last_log: now,
        };
        let line = r.line(0);
        Some((r, line))
    }

    /// The collector acknowledged up to `up_to`: a progress line every
    /// [`REPLAY_LOG_EVERY`], and a closing line when the backlog is through
    /// (then `finished` is true and the replay is over).
    pub fn ack(&mut self, up_to: u64, now: Instant) -> (Option<String>, bool) {
        if up_to >= self.end {
            let secs = now.duration_since(self.started).as_secs_f64();
            return (
                Some(format!(
                    "antrean terkirim: {n} hasil dalam {secs:.1} s / backlog replayed: {n} results in {secs:.1} s",
                    n = self.total
                )),
                true,
            );
        }
        if now.duration_since(self.last_log) < REPLAY_LOG_EVERY {
            return (None, false);
        }
        self.last_log = now;
        let sent = up_to.saturating_sub(self.base).min(self.total);
        (Some(self.line(sent)), false)
    }

    fn line(&self, sent: u64) -> String {
        format!(
            "mengirim ulang antrean: {sent} dari {n} hasil terkirim / replaying backlog: {sent} of {n} sent",
            n = self.total
        )
    }
}

/// Next backoff: double, capped, then +-20 % jitter.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_CAP)
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.8..1.2))
}

/// Run until shutdown. With several collectors (`[collector] urls`) a
/// failed connection or an ended stream moves to the next one, after the
/// same backoff; the spool, epoch and sequence go with the agent, and the
/// next collector's Welcome says where to resume from (they share one store).
pub async fn run(
    cfg: Arc<AgentConfig>,
    token: String,
    spool: Arc<DiskSpool>,
    link: Arc<LinkState>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_START;
    let mut at = 0usize;
    loop {
        let url = cfg.collector_urls[at].as_str();
        let result = stream_once(&cfg, url, &token, &spool, &link, &shutdown, &mut backoff).await;
        link.connected.store(false, Ordering::Relaxed);
        if shutdown.is_cancelled() {
            return;
        }
        let next = next_collector(at, cfg.collector_urls.len());
        let then = cfg.collector_urls[next].as_str();
        match &result {
            Err(StreamError::Status { status, .. })
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                error!(error = %result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                    collector = %url,
                    "collector rejected this agent's token; check collector.token_file or re-enrol");
                backoff = BACKOFF_CAP;
            }
            Err(e) => {
                warn!(error = %e, collector = %url, next = %then, retry_in = ?backoff,
                    "collector stream failed; results stay queued")
            }
            Ok(()) => {
                info!(collector = %url, next = %then, "collector closed the stream; reconnecting")
            }
        }
        at = next;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(jittered(backoff)) => {}
        }
        backoff = next_backoff(backoff);
    }
}

/// The collector to try after `at` among `n`: the next one, round the list.
pub fn next_collector(at: usize, n: usize) -> usize {
    (at + 1) % n.max(1)
}

/// One connection: connect, say Hello, wait for Welcome, then send and
/// take acknowledgements until the stream ends or `shutdown` fires.
async fn stream_once(
    cfg: &AgentConfig,
    url: &str,
    token: &str,
    spool: &DiskSpool,
    link: &LinkState,
    shutdown: &CancellationToken,
    backoff: &mut Duration,
) -> Result<(), StreamError> {
    // A certificate renewed into the spool (read-only config directory)
    // replaces the configured one once it is the longer-lived.
    let mut tls = cfg.collector_tls.clone();
    if let Some((cert, _)) = &mut tls.cert_key {
        *cert = crate::identity::current_cert(cert, &cfg.spool.dir);
    }
    let Some(mut client) = connect(url, &tls, shutdown).await? else {
        return Ok(());
    };
    let renew_in = match &tls.cert_key {
        Some((cert, key)) => match renew_due(cert) {
            Some(0) => {
                renew(&mut client, cfg, cert, key, token, url).await?;
                // The next connection shows the new certificate.
                *backoff = BACKOFF_START;
                return Ok(());
            }
            other => other,
        },
        None => None,
    };
    // End the session when the certificate is due for renewal: the next
    // connection renews it.
    let session_end = shutdown.child_token();
    if let Some(secs) = renew_in {
        let end = session_end.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = end.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(secs.max(1))) => {
                    info!("client certificate due for renewal; reconnecting to renew it");
                    end.cancel();
                }
            }
        });
    }
    let _stop_timer = session_end.clone().drop_guard();
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(MAX_IN_FLIGHT + 2);
    let state = spool.state();
    let hello = hello(cfg, state, link.central.get().map(|c| &**c));
    let sent_at = SystemTime::now();
    tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(hello)),
    })
    .await
    .map_err(|_| StreamError::protocol(url, "stream closed before Hello"))?;
    let mut inbound = open(&mut client, rx, token, url).await?;
    let welcome = welcome(&mut inbound, url).await?;
    if let Some(offset) = clock_offset_ms(&welcome, sent_at, SystemTime::now()) {
        link.clock_offset_ms.store(offset, Ordering::Relaxed);
    }
    link.connected.store(true, Ordering::Relaxed);
    *backoff = BACKOFF_START;
    if resume_point(&welcome, state.epoch, &spool.state()).1 {
        link.welcome_beyond_spool.fetch_add(1, Ordering::Relaxed);
    }
    let mut session = Session::start(cfg, url, spool, tx, state.epoch, &welcome);
    session.central = link.central.get().cloned();
    session.run(&mut inbound, &session_end).await
}

/// Seconds until the certificate at `cert` is due for renewal (`None`
/// when it cannot be read: the handshake then says what is wrong).
fn renew_due(cert: &std::path::Path) -> Option<u64> {
    let pem = std::fs::read_to_string(cert).ok()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    crate::identity::renew_in(&pem, now)
}

/// Renew the client certificate over the current (authenticated)
/// connection: a CSR for the same key, the answer written atomically.
async fn renew(
    client: &mut IngestClient<Channel>,
    cfg: &AgentConfig,
    cert: &std::path::Path,
    key: &std::path::Path,
    token: &str,
    url: &str,
) -> Result<(), StreamError> {
    let key_pem = std::fs::read_to_string(key)
        .map_err(|e| StreamError::protocol(url, format!("collector.key {}: {e}", key.display())))?;
    let csr_pem = crate::identity::csr_for_key(&key_pem, &cfg.agent_id)
        .map_err(|e| StreamError::protocol(url, e.to_string()))?;
    let mut request = tonic::Request::new(pb::RenewRequest { csr_pem });
    let bearer = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        StreamError::protocol(url, "the token contains characters that cannot be sent")
    })?;
    request
        .metadata_mut()
        .insert(pantau_proto::AUTHORIZATION, bearer);
    let reply = client
        .renew(request)
        .await
        .map_err(|s| StreamError::ended(url, s))?
        .into_inner();
    if crate::identity::validity(&reply.cert_pem).is_none() {
        return Err(StreamError::protocol(
            url,
            "Renew answered without a certificate",
        ));
    }
    let written = match crate::identity::write_atomic(cert, &reply.cert_pem, 0o644) {
        Ok(()) => cert.to_path_buf(),
        Err(e) => {
            // The packaged service cannot write /etc/pantau: keep the
            // renewed certificate in the spool directory instead.
            let fallback = crate::identity::renewed_path(&cfg.spool.dir);
            warn!(cert = %cert.display(), error = %e, fallback = %fallback.display(),
                "cannot replace the configured certificate; keeping the renewed one in the spool directory");
            crate::identity::write_atomic(&fallback, &reply.cert_pem, 0o644)
                .map_err(|e| StreamError::protocol(url, e.to_string()))?;
            fallback
        }
    };
    info!(cert = %written.display(), "client certificate renewed");
    Ok(())
}

impl StreamError {
    fn protocol(url: &str, what: impl Into<String>) -> Self {
        StreamError::Protocol {
            url: url.to_string(),
            what: what.into(),
        }
    }

    fn ended(url: &str, status: tonic::Status) -> Self {
        StreamError::Status {
            url: url.to_string(),
            status,
        }
    }
}

/// Why the collector endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `collector.url` is not a URI.
    #[error("collector.url `{url}`: {source}")]
    Url {
        /// The URL.
        url: String,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// `collector.ca`, `collector.cert` or `collector.key` could not be read.
    #[error("collector.ca/cert/key {path}: {source}")]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error("collector.url `{url}`: TLS: {}", chain(source))]
    Tls {
        /// The URL.
        url: String,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// Plaintext without the explicit opt-in.
    #[error(
        "collector.url `{0}` tanpa TLS / is plaintext: use https://, or set collector.insecure = true"
    )]
    Plaintext(String),
}

/// An error with its causes, `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// What to check when a TLS connection fails.
pub fn tls_hint(url: &str) -> &'static str {
    if url.starts_with("https://") {
        " (TLS: collector.url is https://, so the collector must serve TLS (not \
         [tls] insecure = true) with a certificate signed by collector.ca and naming \
         the URL's host; Pantau never falls back to plaintext)"
    } else {
        ""
    }
}

/// The collector endpoint for `url`: TLS for `https://` (trusting
/// `tls.ca`, or the web PKI roots without it), plaintext for `http://`
/// only with `tls.insecure`. Never downgrades.
pub fn endpoint(url: &str, tls: &crate::config::CollectorTls) -> Result<Endpoint, EndpointError> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| EndpointError::Url {
        url: url.to_string(),
        source,
    })?;
    if !url.starts_with("https://") {
        if !tls.insecure {
            return Err(EndpointError::Plaintext(url.to_string()));
        }
        warn!(collector = %url, "TIDAK AMAN / INSECURE: plaintext gRPC (collector.insecure = true); token and results are readable on the network");
        return Ok(endpoint);
    }
    let pem = match &tls.ca {
        Some(path) => Some(std::fs::read(path).map_err(|source| EndpointError::Ca {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let identity = client_identity(tls.cert_key.as_ref())?;
    tls_endpoint(endpoint, url, pem, identity)
}

/// The client certificate and key the agent presents (mutual TLS), read
/// from `cert_key`; `None` without them.
fn client_identity(
    cert_key: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<Option<tonic::transport::Identity>, EndpointError> {
    let Some((cert, key)) = cert_key else {
        return Ok(None);
    };
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| EndpointError::Ca {
            path: path.clone(),
            source,
        })
    };
    Ok(Some(tonic::transport::Identity::from_pem(
        read(cert)?,
        read(key)?,
    )))
}

/// An `https://` endpoint trusting only the CA certificate `ca_pem`, as
/// `pantau-agent enroll --ca-fingerprint` connects once it has pinned it.
pub fn endpoint_with_ca(
    url: &str,
    ca_pem: &str,
    cert_key: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<Endpoint, EndpointError> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| EndpointError::Url {
        url: url.to_string(),
        source,
    })?;
    if !url.starts_with("https://") {
        return Err(EndpointError::Plaintext(url.to_string()));
    }
    let identity = client_identity(cert_key)?;
    tls_endpoint(endpoint, url, Some(ca_pem.as_bytes().to_vec()), identity)
}

/// TLS trusting `ca_pem`, or the web PKI roots without it; showing the
/// client certificate `identity` when given.
fn tls_endpoint(
    endpoint: Endpoint,
    url: &str,
    ca_pem: Option<Vec<u8>>,
    identity: Option<tonic::transport::Identity>,
) -> Result<Endpoint, EndpointError> {
    let cfg = tonic::transport::ClientTlsConfig::new().timeout(Duration::from_secs(10));
    let cfg = match identity {
        Some(id) => cfg.identity(id),
        None => cfg,
    };
    let cfg = match ca_pem {
        Some(pem) => cfg.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        None => cfg.with_webpki_roots(),
    };
    endpoint
        .tls_config(cfg)
        .map_err(|source| EndpointError::Tls {
            url: url.to_string(),
            source,
        })
}

/// Connect to the collector; `None` when `shutdown` fires first.
async fn connect(
    url: &str,
    tls: &crate::config::CollectorTls,
    shutdown: &CancellationToken,
) -> Result<Option<IngestClient<Channel>>, StreamError> {
    let connect_error = |source| StreamError::Connect {
        url: url.to_string(),
        source,
    };
    let endpoint = endpoint(url, tls)?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let channel = tokio::select! {
        _ = shutdown.cancelled() => return Ok(None),
        c = endpoint.connect() => c.map_err(connect_error)?,
    };
    Ok(Some(
        IngestClient::new(channel)
            .max_decoding_message_size(pantau_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(pantau_proto::MAX_MESSAGE_BYTES),
    ))
}

/// The Hello that opens every stream: who we are, what we probe, and what
/// the spool holds.
fn hello(
    cfg: &AgentConfig,
    state: SpoolState,
    central: Option<&crate::central::Central>,
) -> pb::Hello {
    let (config_version, config_sha256) = central.map(|c| c.applied()).unwrap_or_default();
    let targets = central.map_or_else(|| cfg.targets.clone(), |c| c.declared());
    pb::Hello {
        agent_id: cfg.agent_id.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        config_hash: cfg.config_hash.clone(),
        spool: Some(state.into()),
        agent_time: Some(pantau_proto::timestamp_from_millis(unix_ms(
            SystemTime::now(),
        ))),
        targets: targets.iter().map(crate::wire::target_info).collect(),
        hostname: std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_string(),
        config_version,
        config_sha256,
    }
}

/// Open the bidirectional stream with the bearer token; outbound messages
/// come from `rx`.
async fn open(
    client: &mut IngestClient<Channel>,
    rx: mpsc::Receiver<pb::AgentMessage>,
    token: &str,
    url: &str,
) -> Result<Streaming<pb::CollectorMessage>, StreamError> {
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let bearer = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        StreamError::protocol(
            url,
            "the token contains characters that cannot be sent; re-enrol",
        )
    })?;
    request
        .metadata_mut()
        .insert(pantau_proto::AUTHORIZATION, bearer);
    Ok(client
        .stream(request)
        .await
        .map_err(|s| StreamError::ended(url, s))?
        .into_inner())
}

/// The collector's first answer, which must be Welcome.
async fn welcome(
    inbound: &mut Streaming<pb::CollectorMessage>,
    url: &str,
) -> Result<pb::Welcome, StreamError> {
    match inbound
        .message()
        .await
        .map_err(|s| StreamError::ended(url, s))?
    {
        Some(pb::CollectorMessage {
            msg: Some(pb::collector_message::Msg::Welcome(w)),
        }) => Ok(w),
        other => Err(StreamError::protocol(
            url,
            format!("expected Welcome, got {other:?}"),
        )),
    }
}

/// Collector clock minus agent clock, ms: the collector's time against the
/// middle of the Hello/Welcome round trip.
fn clock_offset_ms(
    welcome: &pb::Welcome,
    sent_at: SystemTime,
    received_at: SystemTime,
) -> Option<i64> {
    let ct = welcome
        .collector_time
        .as_ref()
        .and_then(pantau_proto::millis_from_timestamp)?;
    let mid = (unix_ms(sent_at) + unix_ms(received_at)) / 2;
    Some(ct - mid)
}

/// An established stream after Welcome: what was sent, what is still
/// unacknowledged, and when the collector lets us send again.
struct Session<'a> {
    url: &'a str,
    spool: &'a DiskSpool,
    tx: mpsc::Sender<pb::AgentMessage>,
    /// The spool epoch announced in Hello; acks of another epoch do not
    /// advance the replay progress.
    epoch: u64,
    batch_max: usize,
    /// Last seq handed to the stream.
    cursor: u64,
    /// Last seq of each batch sent and not yet acknowledged.
    in_flight: VecDeque<u64>,
    /// The collector asked for a pause until then.
    pause_until: Option<tokio::time::Instant>,
    replay: Option<Replay>,
    /// Where central configuration updates go.
    central: Option<Arc<crate::central::Central>>,
}

impl<'a> Session<'a> {
    /// Decide where to resend from after `welcome`, and log what the
    /// collector said.
    fn start(
        cfg: &'a AgentConfig,
        url: &'a str,
        spool: &'a DiskSpool,
        tx: mpsc::Sender<pb::AgentMessage>,
        epoch: u64,
        welcome: &pb::Welcome,
    ) -> Self {
        let held = spool.state();
        let (cursor, beyond) = resume_point(welcome, epoch, &held);
        if beyond {
            error!(
                committed_seq = welcome.committed_seq,
                next_seq = held.next_seq,
                "the collector holds results numbered beyond this spool: another pantau-agent probably uses \
                 this agent's identity (a cloned SD card or VM, a copied spool); give each machine its own \
                 agent (pantau-collector agent add)"
            );
        }
        let replay =
            Replay::start(cursor, held.records, held.next_seq, Instant::now()).map(|(r, line)| {
                info!(backlog = r.total, "{line}");
                r
            });
        let batch_max = match welcome.max_batch_results as usize {
            0 => cfg.batch_max,
            n => n.min(cfg.batch_max),
        };
        info!(collector = %url, opd = %welcome.opd_id, committed_seq = welcome.committed_seq, "connected to collector");
        Session {
            url,
            spool,
            tx,
            epoch,
            batch_max,
            cursor,
            in_flight: VecDeque::new(),
            pause_until: None,
            replay,
            central: None,
        }
    }

    /// Send whatever the spool holds, as the in-flight bound and any pause
    /// allow; between batches, wait for new results, the end of a pause or
    /// a message from the collector.
    async fn run(
        mut self,
        inbound: &mut Streaming<pb::CollectorMessage>,
        shutdown: &CancellationToken,
    ) -> Result<(), StreamError> {
        loop {
            let batch = self.next_batch();
            if !batch.is_empty() {
                self.send(batch).await?;
                continue;
            }
            let wake = wake(
                self.pause_until,
                self.in_flight.len() < MAX_IN_FLIGHT,
                self.spool,
            );
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = wake => { self.pause_until = None; }
                msg = inbound.message() => match msg.map_err(|s| StreamError::ended(self.url, s))? {
                    None => return Ok(()),
                    Some(pb::CollectorMessage { msg: Some(pb::collector_message::Msg::Config(u)) }) => {
                        if self.config(&u).await? {
                            return self.close(inbound).await;
                        }
                    }
                    Some(pb::CollectorMessage { msg: Some(m) }) => self.received(m)?,
                    Some(_) => {}
                },
            }
        }
    }

    /// The next batch after the cursor; empty when nothing waits or sending
    /// must wait (too many in flight, or paused).
    fn next_batch(&self) -> Vec<pb::Result> {
        let can_send = self.in_flight.len() < MAX_IN_FLIGHT
            && self
                .pause_until
                .is_none_or(|t| tokio::time::Instant::now() >= t);
        if can_send {
            self.spool.after(self.cursor, self.batch_max)
        } else {
            Vec::new()
        }
    }

    async fn send(&mut self, batch: Vec<pb::Result>) -> Result<(), StreamError> {
        let last = batch.last().map_or(self.cursor, |r| r.seq);
        debug!(first = batch[0].seq, last, "sending batch");
        let msg = pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch {
                results: batch,
            })),
        };
        if self.tx.send(msg).await.is_err() {
            return Err(StreamError::protocol(self.url, "outbound stream closed"));
        }
        self.cursor = last;
        self.in_flight.push_back(last);
        Ok(())
    }

    /// Act on one message from the collector.
    fn received(&mut self, m: pb::collector_message::Msg) -> Result<(), StreamError> {
        match m {
            pb::collector_message::Msg::Ack(a) => self.acked(&a),
            pb::collector_message::Msg::Backoff(b) => {
                let d = Duration::from_millis(b.delay_ms.min(60_000));
                info!(delay = ?d, reason = %b.reason, "collector asked to slow down");
                self.pause_until = Some(tokio::time::Instant::now() + d);
            }
            pb::collector_message::Msg::Config(u) => {
                return Err(StreamError::protocol(
                    self.url,
                    format!("config update {} outside the session", u.version),
                ));
            }
            pb::collector_message::Msg::Welcome(_) => {
                return Err(StreamError::protocol(self.url, "second Welcome"));
            }
        }
        Ok(())
    }

    /// Hand a central configuration update to [`crate::central`] and answer
    /// with ConfigStatus. `Ok(true)`: the target set changed; the session
    /// ends so the next Hello declares it (spool, epoch and seq go on).
    async fn config(&mut self, u: &pb::ConfigUpdate) -> Result<bool, StreamError> {
        let Some(central) = self.central.clone() else {
            return Ok(false);
        };
        let outcome = central.apply(u);
        if let Err(e) = &outcome {
            warn!(version = u.version, error = %e, "pembaruan konfigurasi pusat ditolak, konfigurasi sebelumnya tetap dipakai / central configuration update refused, keeping the previous one");
        }
        let status = central.status(outcome.as_ref().err());
        let msg = pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::ConfigStatus(status)),
        };
        if self.tx.send(msg).await.is_err() {
            return Err(StreamError::protocol(self.url, "outbound stream closed"));
        }
        Ok(matches!(outcome, Ok(true)))
    }

    /// End the stream from this side (after a new target set): the
    /// collector takes what was sent, acknowledges it and closes; then the
    /// exporter reconnects with a new Hello.
    async fn close(
        mut self,
        inbound: &mut Streaming<pb::CollectorMessage>,
    ) -> Result<(), StreamError> {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, closed));
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Ok(()),
                m = inbound.message() => match m {
                    Ok(Some(pb::CollectorMessage { msg: Some(pb::collector_message::Msg::Ack(a)) })) => self.acked(&a),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Ok(()),
                },
            }
        }
    }

    /// Forget what the collector committed, log replay progress, and free
    /// the in-flight slots of the acknowledged batches.
    fn acked(&mut self, a: &pb::Ack) {
        self.spool.ack(a.epoch, a.up_to_seq);
        if let Some(r) = self.replay.as_mut().filter(|_| a.epoch == self.epoch) {
            let (line, finished) = r.ack(a.up_to_seq, Instant::now());
            if let Some(line) = line {
                info!(backlog = r.total, acked_seq = a.up_to_seq, "{line}");
            }
            if finished {
                self.replay = None;
            }
        }
        while self.in_flight.front().is_some_and(|s| *s <= a.up_to_seq) {
            self.in_flight.pop_front();
        }
    }
}

/// Where to resend from after `welcome`, and whether the Welcome claims
/// results beyond this spool (`committed_seq` at or past its `next_seq`).
///
/// The cursor is this spool's own acknowledgement, never the collector's
/// committed seq: a second writer with this identity (or a forged result)
/// may have committed seqs this spool numbered differently, and skipping
/// them would lose these results without a trace. After a lost ack this
/// resends at most the batches that were in flight; the collector ignores
/// identical replays and keeps conflicting ones aside.
pub fn resume_point(welcome: &pb::Welcome, epoch: u64, held: &SpoolState) -> (u64, bool) {
    let beyond = welcome.epoch == epoch && welcome.committed_seq >= held.next_seq;
    let cursor = if held.records > 0 {
        held.first_seq.saturating_sub(1)
    } else {
        held.next_seq.saturating_sub(1)
    };
    (cursor, beyond)
}

/// Resolves when sending may resume: the collector's pause is over, or,
/// with room in flight, the spool got new results. With no room, only an
/// ack (handled beside this) can unblock sending.
async fn wake(pause_until: Option<tokio::time::Instant>, room: bool, spool: &DiskSpool) {
    match pause_until {
        Some(t) => tokio::time::sleep_until(t).await,
        None if room => spool.appended.notified().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_progress_is_logged_at_start_periodically_and_at_the_end() {
        let t0 = Instant::now();
        assert!(Replay::start(100, REPLAY_LOG_MIN - 1, 150, t0).is_none());
        let (mut r, first) = Replay::start(100, 400, 501, t0).unwrap();
        assert_eq!(
            first,
            "mengirim ulang antrean: 0 dari 400 hasil terkirim / replaying backlog: 0 of 400 sent"
        );
        // Not yet time for another line.
        assert_eq!(r.ack(200, t0 + Duration::from_secs(3)), (None, false));
        let (line, done) = r.ack(300, t0 + REPLAY_LOG_EVERY);
        assert!(!done);
        assert_eq!(
            line.as_deref(),
            Some(
                "mengirim ulang antrean: 200 dari 400 hasil terkirim / replaying backlog: 200 of 400 sent"
            )
        );
        assert_eq!(
            r.ack(350, t0 + REPLAY_LOG_EVERY + Duration::from_secs(1)),
            (None, false)
        );
        let (line, done) = r.ack(500, t0 + Duration::from_secs(25));
        assert!(done);
        assert_eq!(
            line.as_deref(),
            Some(
                "antrean terkirim: 400 hasil dalam 25.0 s / backlog replayed: 400 results in 25.0 s"
            )
        );
    }

    #[test]
    fn a_welcome_beyond_the_spool_keeps_the_data_and_alerts() {
        let held = SpoolState {
            epoch: 5,
            first_seq: 10,
            next_seq: 20,
            records: 10,
            ..SpoolState::default()
        };
        let w = |epoch, committed_seq| pb::Welcome {
            epoch,
            committed_seq,
            ..pb::Welcome::default()
        };
        // A forged seq 10^12 committed: alert, resend all ten held results.
        assert_eq!(resume_point(&w(5, 1_000_000_000_000), 5, &held), (9, true));
        assert_eq!(resume_point(&w(5, 20), 5, &held), (9, true));
        // Within the spool: resend from the spool's own ack all the same.
        assert_eq!(resume_point(&w(5, 15), 5, &held), (9, false));
        assert_eq!(resume_point(&w(5, 0), 5, &held), (9, false));
        // Another epoch's figure says nothing about this spool.
        assert_eq!(resume_point(&w(4, 1 << 40), 5, &held), (9, false));
        let empty = SpoolState {
            records: 0,
            first_seq: 0,
            ..held
        };
        assert_eq!(resume_point(&w(5, 1 << 40), 5, &empty), (19, true));
    }

    #[test]
    fn failover_walks_the_collector_list_round() {
        assert_eq!(next_collector(0, 1), 0);
        assert_eq!(next_collector(0, 2), 1);
        assert_eq!(next_collector(1, 2), 0);
        assert_eq!(next_collector(2, 3), 0);
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let mut d = BACKOFF_START;
        let mut seen = vec![d];
        for _ in 0..10 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_secs(2));
        assert_eq!(seen[7], Duration::from_secs(120));
        assert_eq!(*seen.last().unwrap(), BACKOFF_CAP);
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(10));
            assert!(j >= Duration::from_secs(8) && j <= Duration::from_secs(12));
        }
    }
}
