//! Optional export of every stored result to a Prometheus remote-write 1.0
//! receiver (Prometheus, Mimir, Thanos Receive, VictoriaMetrics), stamped
//! with the time the agent observed it, so results delivered late after an
//! outage land at the right time in the receiver's store.
//!
//! - [`config`]: `[remote_write]` keys and validation.
//! - [`series`]: which samples a result becomes (the `/metrics` gauge families).
//! - [`wire`]: the protobuf messages and snappy body.
//!
//! Lossless: the store queues each new result (see [`ExportQueue`]; in
//! SQLite a trigger, `store/sqlite/schema_remote_write.sql`); entries are deleted only after the
//! receiver answered 2xx, or refused exactly those results as bad data. A
//! receiver that is down, overloaded (429, 5xx) or misconfigured (401, 403,
//! 404) is retried with backoff for as long as it takes, across collector
//! restarts. A refused request (400, 413, 422, ...) is split in halves until
//! only the refused results are left; those are counted and logged.

pub mod config;
pub mod series;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::store::export::{QueueEntry, Queued};
use crate::store::{self, ExportQueue, SharedStore, StoreError};
pub use config::{Auth, RawRemoteWrite, RemoteWriteConfig};
use series::Point;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Receiver text kept for logs.
const MAX_ERROR_TEXT: usize = 300;

/// The exporter's own metric families.
#[derive(Clone)]
pub struct Counters {
    sent: IntCounter,
    rejected: IntCounter,
    skipped: IntCounterVec,
    retries: IntCounter,
    pending: IntGauge,
    last_sent: Gauge,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    /// Create and register in `r` (the `/metrics` registry).
    pub fn register(r: &Registry) -> Self {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone()))
                .expect("remote-write metric names are unique and valid");
            c
        }
        Counters {
            sent: reg(r, IntCounter::new("pantau_remote_write_samples_total", "Samples the remote-write receiver accepted.").unwrap()),
            rejected: reg(r, IntCounter::new("pantau_remote_write_samples_rejected_total", "Samples the receiver refused as bad data (HTTP 4xx other than 401, 403, 404, 405, 407, 408, 429, or a TSDB sample error such as too old sample); they are not sent again.").unwrap()),
            skipped: reg(r, IntCounterVec::new(Opts::new("pantau_remote_write_results_skipped_total", "Stored results not exported, by reason: untrusted_time (agent clock flagged future or past), expired (deleted by raw retention before export)."), &["reason"]).unwrap()),
            retries: reg(r, IntCounter::new("pantau_remote_write_retries_total", "Requests that failed (connection error, timeout, 429, 5xx, 401/403/404) and are retried.").unwrap()),
            pending: reg(r, IntGauge::new("pantau_remote_write_pending_results", "Stored results not yet exported.").unwrap()),
            last_sent: reg(r, Gauge::new("pantau_remote_write_last_sent_timestamp_seconds", "When the receiver last accepted a request (collector clock), Unix seconds.").unwrap()),
        }
    }
}

/// The oldest queued results, turned into samples.
#[derive(Debug, Default)]
pub struct Batch {
    /// Highest queue id covered: acknowledge up to here when delivered.
    pub last_id: i64,
    /// The samples of each exported result, in queue order.
    pub results: Vec<Vec<Point>>,
    /// Results skipped because the agent's clock was flagged.
    pub untrusted: u64,
    /// Results deleted by retention before they could be sent.
    pub expired: u64,
}

/// Read the oldest queued results, at most `max_samples` samples; `None`
/// when the queue is empty.
pub fn read_batch(
    store: &dyn ExportQueue,
    max_samples: usize,
) -> Result<Option<Batch>, StoreError> {
    // A result is at least one sample: `max_samples` entries always suffice.
    Ok(batch(store.export_take(max_samples)?, max_samples))
}

/// Fold queue entries, oldest first, into a batch of at most `max_samples`
/// samples (at least one result, however many samples it has).
pub fn batch(entries: Vec<QueueEntry>, max_samples: usize) -> Option<Batch> {
    let mut b = Batch::default();
    let mut found = false;
    let mut samples = 0;
    for e in entries {
        let r = match e.item {
            Queued::Expired => {
                (b.last_id, found) = (e.id, true);
                b.expired += 1;
                continue;
            }
            Queued::Untrusted => {
                (b.last_id, found) = (e.id, true);
                b.untrusted += 1;
                continue;
            }
            Queued::Result(r) => r,
        };
        let points = series::points(&r);
        if samples + points.len() > max_samples && found {
            break;
        }
        samples += points.len();
        b.results.push(points);
        (b.last_id, found) = (e.id, true);
    }
    found.then_some(b)
}

/// One request's worth of results as a `WriteRequest`: samples grouped per
/// series, labels sorted by name, samples oldest first.
pub fn request(results: &[Vec<Point>], external: &[(String, String)]) -> wire::WriteRequest {
    let mut by_series: BTreeMap<Vec<(String, String)>, Vec<wire::Sample>> = BTreeMap::new();
    for p in results.iter().flatten() {
        let mut labels: Vec<(String, String)> =
            Vec::with_capacity(p.labels.len() + 1 + external.len());
        labels.push(("__name__".into(), p.name.into()));
        labels.extend(p.labels.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        labels.extend(external.iter().cloned());
        labels.sort();
        by_series.entry(labels).or_default().push(wire::Sample {
            value: p.value,
            timestamp: p.timestamp_ms,
        });
    }
    wire::WriteRequest {
        timeseries: by_series
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.timestamp);
                wire::TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| wire::Label { name, value })
                        .collect(),
                    samples,
                }
            })
            .collect(),
    }
}

/// What a response means for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored.
    Accepted,
    /// The data is bad; sending it again cannot help.
    Rejected(String),
    /// The receiver is down, busy or misconfigured; try again later.
    Retry(String),
}

/// Prometheus TSDB errors that refuse the samples themselves. Prometheus
/// 2.42 (Debian bookworm) answers "too old sample" (older than its
/// out-of-order window) with HTTP 500, which as a plain 5xx would be retried
/// forever and hold up every later result.
const SAMPLE_ERRORS: &[&str] = &[
    "too old sample",
    "out of bounds",
    "out of order sample",
    "duplicate sample for timestamp",
];

/// Judge a response. 401/403/404/405/407 are the operator's to fix
/// (credentials, URL, receiver flag) and must not cost data, so they are
/// retried like 5xx and 429.
pub fn verdict(status: u16, text: &str) -> Verdict {
    let msg = format!("HTTP {status}: {text}");
    if !(200..=299).contains(&status) && SAMPLE_ERRORS.iter().any(|e| text.contains(e)) {
        return Verdict::Rejected(msg);
    }
    match status {
        200..=299 => Verdict::Accepted,
        401 | 403 | 404 | 405 | 407 | 408 | 429 => Verdict::Retry(msg),
        400..=499 => Verdict::Rejected(msg),
        _ => Verdict::Retry(msg),
    }
}

struct Exporter {
    cfg: RemoteWriteConfig,
    client: reqwest::Client,
    counters: Counters,
    shutdown: CancellationToken,
}

impl Exporter {
    async fn post(&self, body: Vec<u8>) -> Verdict {
        use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
        let mut req = self
            .client
            .post(self.cfg.url.clone())
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        req = match &self.cfg.auth {
            Some(Auth::Basic { user, password }) => req.basic_auth(user, Some(&password.0)),
            Some(Auth::Bearer(t)) => req.bearer_auth(&t.0),
            None => req,
        };
        match req.send().await {
            Err(e) => {
                // reqwest's message names the URL only; the cause is in the chain.
                let mut why = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    why = format!("{why}: {s}");
                    src = s.source();
                }
                Verdict::Retry(why)
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.trim().chars().take(MAX_ERROR_TEXT).collect();
                verdict(status, &text)
            }
        }
    }

    /// Post until accepted or rejected; `None` on shutdown.
    async fn post_until_done(&self, body: Vec<u8>) -> Option<Verdict> {
        let mut backoff = MIN_BACKOFF;
        loop {
            let v = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                v = self.post(body.clone()) => v,
            };
            let Verdict::Retry(why) = v else {
                return Some(v);
            };
            self.counters.retries.inc();
            warn!(url = %self.cfg.url, error = %why, retry_in = ?backoff, "remote write failed; results stay queued");
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Deliver a batch: split refused requests until only the refused
    /// results are left. `None` on shutdown (the batch stays queued).
    async fn deliver(&self, results: &[Vec<Point>]) -> Option<()> {
        // Ranges of `results` still to send, last pushed first.
        let mut todo = Vec::with_capacity(8);
        todo.push(0..results.len());
        let mut rejected = (0u64, String::new());
        while let Some(range) = todo.pop() {
            let part = &results[range.clone()];
            let n: usize = part.iter().map(Vec::len).sum();
            if n == 0 {
                continue;
            }
            let body = wire::body(&request(part, &self.cfg.external_labels));
            match self.post_until_done(body).await? {
                Verdict::Accepted => {
                    self.counters.sent.inc_by(n as u64);
                    self.counters.last_sent.set(store::now_ms() as f64 / 1000.0);
                }
                Verdict::Rejected(_) if range.len() > 1 => {
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
                Verdict::Rejected(why) => {
                    self.counters.rejected.inc_by(n as u64);
                    rejected = (rejected.0 + n as u64, why);
                }
                Verdict::Retry(_) => unreachable!("post_until_done retries"),
            }
        }
        if rejected.0 > 0 {
            error!(url = %self.cfg.url, samples = rejected.0, reason = %rejected.1,
                "remote write receiver refused samples as bad data; they are not sent again");
        }
        Some(())
    }
}

/// Export queued results until `shutdown` is cancelled. Call
/// [`ExportQueue::export_prepare`] with `true` before ingest starts. With
/// several collectors on one store only the holder of the `remote_write`
/// lease exports; each acknowledged batch is recorded as the piece
/// (previous last id, this last id] of the queue.
pub async fn run(
    cfg: RemoteWriteConfig,
    store: SharedStore,
    leaser: std::sync::Arc<crate::lease::Leaser>,
    counters: Counters,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout)
        .user_agent(concat!("pantau-collector/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "remote write HTTP client; results stay queued");
            return;
        }
    };
    info!(url = %cfg.url, "remote write enabled");
    let ex = Exporter {
        cfg,
        client,
        counters,
        shutdown,
    };
    let idle = |ex: &Exporter| {
        let (s, d) = (ex.shutdown.clone(), ex.cfg.interval);
        async move {
            tokio::select! {
                _ = s.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            }
        }
    };
    let job = crate::lease::Job::RemoteWrite;
    loop {
        if ex.shutdown.is_cancelled() {
            return;
        }
        let l = std::sync::Arc::clone(&leaser);
        let held = tokio::task::spawn_blocking(move || l.hold(job).map(|t| (t, l.last(job))))
            .await
            .ok()
            .flatten();
        let Some((token, from)) = held else {
            // Another collector exports the queue meanwhile.
            if !idle(&ex).await {
                return;
            }
            continue;
        };
        let max = ex.cfg.max_samples_per_request;
        let batch = match store.with(move |s| read_batch(s, max)).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                ex.counters.pending.set(0);
                if !idle(&ex).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                warn!(error = %e, "remote write cannot read its queue; retrying");
                if !idle(&ex).await {
                    return;
                }
                continue;
            }
        };
        if let Ok(n) = store.with(|s| s.export_pending()).await {
            ex.counters.pending.set(n);
        }
        for (reason, n) in [
            ("untrusted_time", batch.untrusted),
            ("expired", batch.expired),
        ] {
            if n > 0 {
                ex.counters.skipped.with_label_values(&[reason]).inc_by(n);
            }
        }
        if ex.deliver(&batch.results).await.is_none() {
            return;
        }
        let last = batch.last_id;
        loop {
            match store
                .with(move |s| s.export_ack(last).and_then(|()| s.export_pending()))
                .await
            {
                Ok(n) => {
                    ex.counters.pending.set(n);
                    let l = std::sync::Arc::clone(&leaser);
                    let _ = tokio::task::spawn_blocking(move || {
                        l.done(job, from.unwrap_or(0), last, token)
                    })
                    .await;
                    if n == 0 && !idle(&ex).await {
                        return;
                    }
                    break;
                }
                Err(e) => {
                    // Keep trying to acknowledge; if the collector stops
                    // first, the batch is sent again at the next start (the
                    // receiver ignores identical samples).
                    warn!(error = %e, "remote write cannot acknowledge its queue; retrying");
                    if !idle(&ex).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &'static str, target: &str, ts: i64, v: f64) -> Point {
        Point {
            name,
            labels: vec![("target", target.into()), ("opd", "o".into())],
            value: v,
            timestamp_ms: ts,
        }
    }

    #[test]
    fn request_groups_series_sorts_labels_and_samples() {
        let results = vec![
            vec![point("pantau_probe_success", "a", 2_000, 1.0)],
            vec![point("pantau_probe_success", "b", 1_000, 0.0)],
            vec![point("pantau_probe_success", "a", 1_000, 0.0)],
        ];
        let req = request(&results, &[("site".into(), "sulbar".into())]);
        assert_eq!(req.timeseries.len(), 2);
        let a = &req.timeseries[0];
        let names: Vec<&str> = a.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "opd", "site", "target"]);
        assert_eq!(a.labels[3].value, "a");
        let ts: Vec<(i64, f64)> = a.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(ts, [(1_000, 0.0), (2_000, 1.0)]);
    }

    #[test]
    fn statuses_retry_unless_the_data_is_bad() {
        assert_eq!(verdict(204, ""), Verdict::Accepted);
        for s in [500, 502, 503, 429, 401, 403, 404, 408] {
            assert!(matches!(verdict(s, ""), Verdict::Retry(_)), "{s}");
        }
        for s in [400, 409, 413, 422] {
            assert!(matches!(verdict(s, ""), Verdict::Rejected(_)), "{s}");
        }
        // Prometheus 2.42's answer to a sample older than its window.
        assert!(matches!(
            verdict(500, "too old sample"),
            Verdict::Rejected(_)
        ));
        assert!(matches!(
            verdict(500, "no space left on device"),
            Verdict::Retry(_)
        ));
    }
}
