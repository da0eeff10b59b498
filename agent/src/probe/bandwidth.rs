//! Throughput tests over HTTP: to the collector's bandwidth endpoint (with the
//! agent token) or to a configured URL. Links are small and sometimes
//! metered, so a test never hogs them: parallel streams for a bounded time
//! and bounded bytes, one test at a time with a minimum gap between tests,
//! skipped when the link already carries traffic, and a monthly byte budget
//! kept on disk.
//!
//! The rate is bytes counted after the warm-up (TCP slow start, a shaper's
//! burst) divided by the time they took, ending when the first stream
//! finishes (after that fewer streams may not fill the link) or at the
//! duration cap.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Mutex;

use super::us;
use super::{ProbeSetupError, failed, link, ok};
use crate::config::{BandwidthPolicy, CollectorTls};
use crate::model::{BandwidthResult, Measurement, Observation, Outcome};
use pantau_core::probe::{BandwidthSpec, Direction, Target};
use pantau_proto::v1 as pb;

/// Size of the chunks an upload stream sends.
const CHUNK: usize = 64 * 1024;

/// The month's usage as kept on disk: `YYYY-MM bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthUsage {
    /// Calendar month (UTC), e.g. "2026-11".
    pub month: String,
    /// Bytes used in it.
    pub bytes: u64,
}

/// The calendar month (UTC) of a time, "YYYY-MM".
pub fn month_of(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m")
        .to_string()
}

/// Read the usage file; a missing or unreadable file counts as nothing used
/// this month (and is logged by the caller's next save).
pub fn load_usage(path: &Path, month: &str) -> MonthUsage {
    let parsed = std::fs::read_to_string(path).ok().and_then(|t| {
        let (m, b) = t.trim().split_once(' ')?;
        Some(MonthUsage {
            month: m.to_string(),
            bytes: b.trim().parse().ok()?,
        })
    });
    match parsed {
        Some(u) if u.month == month => u,
        _ => MonthUsage {
            month: month.to_string(),
            bytes: 0,
        },
    }
}

/// Write the usage file atomically (temp file, fsync, rename).
pub fn save_usage(path: &Path, u: &MonthUsage) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{} {}", u.month, u.bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Why a test must not run now, or `None` to run it.
/// `planned`: the most bytes the test may use (its caps).
pub fn skip_reason(
    since_last: Option<Duration>,
    min_gap: Duration,
    budget: u64,
    used: u64,
    planned: u64,
    busy: Option<(u64, u64)>,
) -> Option<&'static str> {
    if since_last.is_some_and(|d| d < min_gap) {
        return Some("gap");
    }
    if budget > 0 && used.saturating_add(planned) > budget {
        return Some("budget");
    }
    if let Some((rate, threshold)) = busy
        && rate > threshold
    {
        return Some("busy");
    }
    None
}

/// Rate in bit/s of `bytes` over `window`.
pub fn bits_per_second(bytes: u64, window: Duration) -> u64 {
    if window.is_zero() {
        return 0;
    }
    (bytes as f64 * 8.0 / window.as_secs_f64()).round() as u64
}

/// One direction's counts.
#[derive(Debug, Clone, Copy, Default)]
struct DirResult {
    total: u64,
    measured: u64,
    window: Duration,
}

/// A collector bandwidth test refused: its address is plaintext and the
/// agent is not `collector.insecure`, so the token would cross in clear.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` tanpa TLS / is plaintext: the agent token goes to the collector only over https:// \
     (or set collector.insecure = true)"
)]
pub struct PlaintextToken(String);

/// Runs bandwidth tests, one at a time.
#[derive(Debug)]
pub struct BandwidthProber {
    /// For `server = "http"` URLs: the web PKI roots, no token.
    client: reqwest::Client,
    /// For the collector's endpoint (with the token): `collector.ca` only
    /// when set, like the gRPC channel.
    collector_client: reqwest::Client,
    /// `collector.insecure`: the token may go over `http://` (a lab).
    insecure: bool,
    /// Why collector tests cannot run (`collector.ca` unreadable): they
    /// fail with this text while every other probe keeps measuring.
    collector_unavailable: Option<String>,
    token: Option<String>,
    policy: Option<BandwidthPolicy>,
    last_start: Mutex<Option<Instant>>,
}

/// `collector.ca` as a certificate reqwest trusts.
fn load_ca(path: &std::path::Path) -> Result<reqwest::Certificate, ProbeSetupError> {
    let pem = std::fs::read(path).map_err(|source| ProbeSetupError::CollectorCa {
        path: path.to_path_buf(),
        source,
    })?;
    reqwest::Certificate::from_pem(&pem).map_err(|source| ProbeSetupError::CollectorCaPem {
        path: path.to_path_buf(),
        source,
    })
}

/// The client settings every bandwidth test uses.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("pantau-agent/", env!("CARGO_PKG_VERSION")))
        // One TCP connection per stream: HTTP/2 would multiplex them onto one.
        .http1_only()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
}

impl BandwidthProber {
    /// A prober without token or policy (every test uses no budget or gap).
    pub fn new() -> Result<Self, ProbeSetupError> {
        let client = client_builder()
            .build()
            .map_err(ProbeSetupError::HttpClient)?;
        Ok(BandwidthProber {
            collector_client: client.clone(),
            client,
            insecure: false,
            collector_unavailable: None,
            token: None,
            policy: None,
            last_start: Mutex::new(None),
        })
    }

    /// Set the collector token, how the collector's endpoint is trusted
    /// (`collector.ca`, the same CA as the gRPC channel) and the shared limits.
    pub fn configure(
        &mut self,
        token: Option<String>,
        tls: &CollectorTls,
        policy: BandwidthPolicy,
    ) -> Result<(), ProbeSetupError> {
        let mut builder = client_builder().https_only(!tls.insecure);
        self.collector_unavailable = None;
        if let Some(path) = &tls.ca {
            match load_ca(path) {
                Ok(ca) => {
                    builder = builder
                        .tls_built_in_root_certs(false)
                        .add_root_certificate(ca);
                }
                // Like the gRPC channel, which reads the CA at each connect:
                // the agent keeps measuring and spooling; only the tests
                // that would send the token to the collector fail.
                Err(e) => {
                    tracing::error!(error = %e,
                        "collector bandwidth tests cannot run until collector.ca is readable");
                    self.collector_unavailable = Some(e.to_string());
                }
            }
        }
        self.collector_client = builder.build().map_err(ProbeSetupError::HttpClient)?;
        self.insecure = tls.insecure;
        self.token = token;
        self.policy = Some(policy);
        Ok(())
    }

    /// A collector test sends the token: only over https://, or over
    /// http:// with `collector.insecure` and a WARN at every test. Config
    /// validation refuses it first; this keeps the token off the wire
    /// whatever built the target.
    fn check_plaintext(&self, t: &Target, spec: &BandwidthSpec) -> Result<(), PlaintextToken> {
        if !spec.collector || t.address.starts_with("https://") {
            return Ok(());
        }
        if !self.insecure {
            return Err(PlaintextToken(t.address.clone()));
        }
        tracing::warn!(
            target = %t.id,
            address = %t.address,
            "TIDAK AMAN / INSECURE: bandwidth test sends the agent token over plaintext \
             http:// (collector.insecure = true); anyone on the path can read it"
        );
        Ok(())
    }

    /// Run one test for `t`.
    // Long: the test's steps in their order (token safety, monthly budget,
    // download, upload, accounting), each short; together the order of the
    // budget checks stays readable.
    pub async fn probe(&self, t: &Target, spec: &BandwidthSpec) -> Observation {
        if let Err(e) = self.check_plaintext(t, spec) {
            return failed(
                Outcome::Other,
                e.to_string(),
                Measurement::Bandwidth(BandwidthResult::default()),
            );
        }
        if let (true, Some(why)) = (spec.collector, &self.collector_unavailable) {
            return failed(
                Outcome::Other,
                why.clone(),
                Measurement::Bandwidth(BandwidthResult::default()),
            );
        }
        // One test at a time: held for the whole test.
        let mut last = self.last_start.lock().await;
        let month = month_of(SystemTime::now());
        let (budget, min_gap, state_file) = match &self.policy {
            Some(p) => (p.monthly_budget, p.min_gap, Some(p.state_file.clone())),
            None => (0, Duration::ZERO, None),
        };
        let mut usage = state_file.as_deref().map_or_else(
            || MonthUsage {
                month: month.clone(),
                bytes: 0,
            },
            |f| load_usage(f, &month),
        );
        let dirs = if spec.direction == Direction::Both {
            2
        } else {
            1
        };
        let planned = spec.max_bytes * dirs;
        let mut result = BandwidthResult {
            streams: spec.streams,
            month_bytes: usage.bytes,
            ..BandwidthResult::default()
        };
        let busy = match &spec.busy {
            None => None,
            Some((iface, threshold)) => match busy_rate(iface).await {
                Ok(r) => {
                    result.busy_bps = r;
                    Some((r, *threshold))
                }
                Err(e) => return failed(Outcome::Other, e, Measurement::Bandwidth(result)),
            },
        };
        if let Some(why) = skip_reason(
            last.map(|l| l.elapsed()),
            min_gap,
            budget,
            usage.bytes,
            planned,
            busy,
        ) {
            result.skipped = why.to_string();
            let detail = match why {
                "gap" => format!(
                    "skipped: less than {} since the previous test",
                    humantime::format_duration(min_gap)
                ),
                "budget" => format!(
                    "skipped: monthly budget {budget} bytes, {} used, this test may use {planned}",
                    usage.bytes
                ),
                _ => format!(
                    "skipped: link already busy ({} bit/s above the threshold)",
                    result.busy_bps
                ),
            };
            // A skipped test is not a failure of the link.
            let mut o = ok(Measurement::Bandwidth(result));
            o.detail = detail;
            return o;
        }
        *last = Some(Instant::now());

        let mut errors = Vec::new();
        if matches!(spec.direction, Direction::Download | Direction::Both) {
            match self.run_direction(t, spec, false).await {
                Ok(d) => {
                    result.download_bytes = d.total;
                    result.download_bps = bits_per_second(d.measured, d.window);
                    result.download_window = d.window;
                }
                Err((bytes, e)) => {
                    result.download_bytes = bytes;
                    errors.push((e.0, format!("download: {}", e.1)));
                }
            }
        }
        if matches!(spec.direction, Direction::Upload | Direction::Both) {
            match self.run_direction(t, spec, true).await {
                Ok(d) => {
                    result.upload_bytes = d.total;
                    result.upload_bps = bits_per_second(d.measured, d.window);
                    result.upload_window = d.window;
                }
                Err((bytes, e)) => {
                    result.upload_bytes = bytes;
                    errors.push((e.0, format!("upload: {}", e.1)));
                }
            }
        }
        usage.bytes = usage
            .bytes
            .saturating_add(result.download_bytes + result.upload_bytes);
        result.month_bytes = usage.bytes;
        if let Some(f) = &state_file
            && let Err(e) = save_usage(f, &usage)
        {
            tracing::warn!(file = %f.display(), error = %e, "cannot save the bandwidth budget");
        }
        match errors.into_iter().next() {
            None => ok(Measurement::Bandwidth(result)),
            Some((outcome, detail)) => failed(outcome, detail, Measurement::Bandwidth(result)),
        }
    }

    /// Run `spec.streams` streams one way; Err carries the bytes moved anyway.
    async fn run_direction(
        &self,
        t: &Target,
        spec: &BandwidthSpec,
        upload: bool,
    ) -> Result<DirResult, (u64, (Outcome, String))> {
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let per_stream = (spec.max_bytes / u64::from(spec.streams)).max(1);
        let mut set = tokio::task::JoinSet::new();
        let start = Instant::now();
        for _ in 0..spec.streams {
            let req = self.request(t, spec, upload, per_stream, &counter, &stop);
            let counter = Arc::clone(&counter);
            let connect_timeout = t.timeout;
            set.spawn(async move {
                let req = match req {
                    Ok(r) => r,
                    Err(e) => return Err(e),
                };
                // An upload's response comes only after its whole body: the
                // duration cap bounds it, not the probe timeout.
                let mut resp = if upload {
                    req.send()
                        .await
                        .map_err(|e| (classify(&e), e.to_string()))?
                } else {
                    tokio::time::timeout(connect_timeout, req.send())
                        .await
                        .map_err(|_| (Outcome::Timeout, "no response in time".to_string()))?
                        .map_err(|e| (classify(&e), e.to_string()))?
                };
                if !resp.status().is_success() {
                    return Err((
                        Outcome::HttpStatus,
                        format!("server answered HTTP {}", resp.status().as_u16()),
                    ));
                }
                if !upload {
                    let mut got = 0u64;
                    while got < per_stream {
                        match resp.chunk().await {
                            Ok(Some(c)) => {
                                got += c.len() as u64;
                                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                            }
                            Ok(None) => break,
                            Err(e) => return Err((classify(&e), e.to_string())),
                        }
                    }
                }
                Ok(())
            });
        }
        let deadline = tokio::time::Instant::from_std(start + spec.max_duration);
        let warm_end = tokio::time::Instant::from_std(start + spec.warmup);
        let mut mark: Option<(Instant, u64)> = None;
        let mut first_error = None;
        let mut end = None;
        loop {
            tokio::select! {
                // Counting starts when the warm-up ends; this timer is part of
                // the measurement, not a wait for something to happen.
                _ = tokio::time::sleep_until(warm_end), if mark.is_none() => {
                    mark = Some((Instant::now(), counter.load(Ordering::Relaxed)));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    end = Some((Instant::now(), counter.load(Ordering::Relaxed)));
                    break;
                }
                joined = set.join_next() => match joined {
                    None => break,
                    Some(r) => {
                        let r = r.unwrap_or_else(|e| Err((Outcome::Other, format!("stream task failed: {e}"))));
                        match r {
                            Err(e) => {
                                first_error = Some(e);
                                break;
                            }
                            Ok(()) => {
                                // The first stream done ends the window.
                                end = Some((Instant::now(), counter.load(Ordering::Relaxed)));
                                break;
                            }
                        }
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        set.abort_all();
        while set.join_next().await.is_some() {}
        let total = counter.load(Ordering::Relaxed);
        if let Some(e) = first_error {
            return Err((total, e));
        }
        let (t_end, b_end) = end.unwrap_or((Instant::now(), total));
        let Some((t0, b0)) = mark else {
            return Err((
                total,
                (
                    Outcome::Other,
                    format!(
                        "the byte cap ({} bytes) was reached within the warm-up ({}); raise max_bytes",
                        spec.max_bytes,
                        humantime::format_duration(spec.warmup)
                    ),
                ),
            ));
        };
        Ok(DirResult {
            total,
            measured: b_end.saturating_sub(b0),
            window: t_end.saturating_duration_since(t0),
        })
    }

    fn request(
        &self,
        t: &Target,
        spec: &BandwidthSpec,
        upload: bool,
        bytes: u64,
        counter: &Arc<AtomicU64>,
        stop: &Arc<AtomicBool>,
    ) -> Result<reqwest::RequestBuilder, (Outcome, String)> {
        let base = t.address.trim_end_matches('/');
        let mut rb = match (spec.collector, upload) {
            (true, false) => self
                .collector_client
                .get(format!("{base}/api/v1/bandwidth/download?bytes={bytes}")),
            (true, true) => self
                .collector_client
                .post(format!("{base}/api/v1/bandwidth/upload")),
            (false, false) => self.client.get(&t.address),
            (false, true) => self
                .client
                .post(spec.upload_url.as_deref().unwrap_or(&t.address)),
        };
        if spec.collector {
            let token = self.token.as_deref().ok_or((
                Outcome::Other,
                "no collector token to authenticate the test".to_string(),
            ))?;
            rb = rb.bearer_auth(token);
        }
        if upload {
            let (counter, stop) = (Arc::clone(counter), Arc::clone(stop));
            let chunk = vec![0u8; CHUNK];
            let mut left = bytes;
            let chunks = std::iter::from_fn(move || {
                if left == 0 || stop.load(Ordering::Relaxed) {
                    return None;
                }
                let n = left.min(CHUNK as u64) as usize;
                left -= n as u64;
                // Counted as handed to the connection; the warm-up covers
                // the socket buffer filling up.
                counter.fetch_add(n as u64, Ordering::Relaxed);
                Some(Ok::<_, std::io::Error>(chunk[..n].to_vec()))
            });
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, bytes)
                .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)));
        }
        Ok(rb)
    }
}

fn classify(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Unreachable
    } else {
        Outcome::Other
    }
}

/// Current rate of an interface (rx + tx, bit/s) over one second.
async fn busy_rate(iface: &str) -> Result<u64, link::LinkError> {
    let (rx0, tx0) = link::local_counters(iface)?;
    let t0 = Instant::now();
    // The sampling window of the measurement.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rx1, tx1) = link::local_counters(iface)?;
    let bytes = rx1.saturating_sub(rx0) + tx1.saturating_sub(tx0);
    Ok(bits_per_second(bytes, t0.elapsed()))
}

/// The wire form of one test.
pub(crate) fn to_wire(b: &BandwidthResult) -> pb::BandwidthMeasurement {
    pb::BandwidthMeasurement {
        download_bps: b.download_bps,
        upload_bps: b.upload_bps,
        download_bytes: b.download_bytes,
        upload_bytes: b.upload_bytes,
        download_window_us: us(b.download_window),
        upload_window_us: us(b.upload_window),
        streams: b.streams,
        skipped: b.skipped.clone(),
        busy_bps: b.busy_bps,
        month_bytes: b.month_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_rules() {
        let gap = Duration::from_secs(900);
        assert_eq!(skip_reason(None, gap, 0, 0, 100, None), None);
        assert_eq!(
            skip_reason(Some(Duration::from_secs(60)), gap, 0, 0, 100, None),
            Some("gap")
        );
        assert_eq!(
            skip_reason(Some(Duration::from_secs(901)), gap, 0, 0, 100, None),
            None
        );
        assert_eq!(skip_reason(None, gap, 1000, 950, 100, None), Some("budget"));
        assert_eq!(skip_reason(None, gap, 1000, 900, 100, None), None);
        assert_eq!(
            skip_reason(None, gap, 0, 0, 100, Some((6, 5))),
            Some("busy")
        );
        assert_eq!(skip_reason(None, gap, 0, 0, 100, Some((5, 5))), None);
    }

    #[test]
    fn usage_survives_restart_and_resets_each_month() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state").join("bw");
        assert_eq!(load_usage(&f, "2026-11").bytes, 0);
        save_usage(
            &f,
            &MonthUsage {
                month: "2026-11".into(),
                bytes: 12345,
            },
        )
        .unwrap();
        assert_eq!(load_usage(&f, "2026-11").bytes, 12345);
        assert_eq!(load_usage(&f, "2026-12").bytes, 0);
        std::fs::write(&f, "garbage").unwrap();
        assert_eq!(load_usage(&f, "2026-11").bytes, 0);
    }

    #[test]
    fn an_unreadable_collector_ca_stops_only_the_collector_tests() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = BandwidthProber::new().unwrap();
        let tls = CollectorTls {
            insecure: false,
            ca: Some(dir.path().join("missing-ca.crt")),
            cert_key: None,
        };
        let policy = BandwidthPolicy {
            min_gap: Duration::ZERO,
            monthly_budget: 0,
            state_file: dir.path().join("bw.json"),
        };
        // The agent starts (it keeps measuring and spooling) ...
        p.configure(Some("t".into()), &tls, policy.clone()).unwrap();
        // ... and collector tests carry the reason, naming the key.
        let why = p.collector_unavailable.clone().unwrap();
        assert!(
            why.starts_with("collector.ca ") && why.contains("missing-ca.crt"),
            "{why}"
        );
        // Configured again without that file: the reason is gone.
        let tls = CollectorTls {
            insecure: false,
            ca: None,
            cert_key: None,
        };
        p.configure(Some("t".into()), &tls, policy).unwrap();
        assert_eq!(p.collector_unavailable, None);
    }

    #[test]
    fn rates_and_months() {
        assert_eq!(
            bits_per_second(2_500_000, Duration::from_secs(1)),
            20_000_000
        );
        assert_eq!(bits_per_second(1, Duration::ZERO), 0);
        assert_eq!(
            month_of(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_288_000)),
            "2025-11"
        );
    }
}
