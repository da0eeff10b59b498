//! Prometheus metrics. Labels come only from registered OPDs and agents and
//! from targets declared in a validated Hello; per-agent target series are
//! capped and refusals counted.
//!
//! - [`seed`]: at start, series of every agent and OPD in the database and
//!   every known label value at 0, so alerts see what happened before.
//! - [`availability`]: the report's availability and open incidents, from
//!   the rollups, after each refresh.
//! - [`events`]: maintenance windows in force and path changes, for the
//!   dashboards' annotations and panels.

pub mod availability;
pub mod events;
pub mod seed;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::model::{AgentIdentity, Outcome, ProbeKind, ResultRow, RowKind};

/// Most target series one agent may create: as many targets as a Hello may declare.
pub const MAX_TARGETS_PER_AGENT: usize = pantau_core::probe::limits::MAX_TARGETS_PER_AGENT;

const TARGET_LABELS: &[&str] = &["opd", "agent", "target", "group", "kind"];
const AGENT_LABELS: &[&str] = &["opd", "agent"];

/// Every `op` of `pantau_store_errors_total` (the writer's operations).
pub const STORE_OPS: &[&str] = &["hello", "session", "batch"];

/// Every `reason` of `pantau_ingest_rejected_total`.
pub const REJECT_REASONS: &[&str] = &[
    "unauthenticated",
    "wrong_agent",
    "invalid",
    "malformed",
    "too_large",
    "replaced",
];

/// Every `(result, reason)` of `pantau_auth_total`: `ok`, a refused
/// authentication by why, and an open stream closed by a credential change.
pub const AUTH_OUTCOMES: &[(&str, &str)] = &[
    ("ok", "ok"),
    ("refused", "missing"),
    ("refused", "unknown"),
    ("refused", "revoked"),
    ("refused", "rotated"),
    ("refused", "disabled"),
    ("refused", "expired"),
    ("refused", "limited"),
    ("closed", "revoked"),
    ("closed", "rotated"),
    ("closed", "disabled"),
    ("closed", "expired"),
];

/// Every `flag` of `pantau_ingest_clock_flagged_results_total`.
pub const CLOCK_FLAGS: &[&str] = &["future", "past"];

/// The collector's metric families.
pub struct Metrics {
    registry: Registry,
    probe_success: IntGaugeVec,
    probe_duration: GaugeVec,
    probe_loss: GaugeVec,
    probe_rtt: HistogramVec,
    probe_tls_not_after: GaugeVec,
    probe_last_seen: GaugeVec,
    probe_results: IntCounterVec,
    agent_last_seen: GaugeVec,
    agent_connected: IntGaugeVec,
    agent_info: IntGaugeVec,
    connections_open: IntGaugeVec,
    connections_refused: IntCounterVec,
    agent_spool_records: IntGaugeVec,
    agent_dropped: IntGaugeVec,
    agent_spool_bytes: IntGaugeVec,
    agent_corrupt: IntGaugeVec,
    agent_seq_skipped: IntGaugeVec,
    agent_clock_offset: GaugeVec,
    ingest_results: IntCounterVec,
    ingest_duplicates: IntCounterVec,
    ingest_conflicts: IntCounterVec,
    ingest_batches: IntCounterVec,
    ingest_late: IntCounterVec,
    ingest_clock: IntCounterVec,
    /// Messages or streams refused, by reason.
    pub ingest_rejected: IntCounterVec,
    /// Authentications and credential closures, by result and reason.
    auth_total: IntCounterVec,
    /// Commit latency.
    pub commit_seconds: Histogram,
    /// Failed commits.
    pub store_errors: IntCounterVec,
    series_refused: IntCounterVec,
    seq_beyond_spool: IntCounterVec,
    link_utilisation: GaugeVec,
    link_throughput: GaugeVec,
    link_capacity: GaugeVec,
    bandwidth_throughput: GaugeVec,
    bandwidth_month_bytes: GaugeVec,
    state: Mutex<State>,
    /// Per-target series kept (`[web] metrics_per_target`).
    per_target: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Series of each agent's declared targets that sent a result, by agent
    /// then target.
    series: HashMap<String, HashMap<String, TargetSeries>>,
    /// Targets with series, per agent.
    targets: HashMap<String, HashSet<String>>,
    /// Label values of each agent's `pantau_agent_info` series.
    info: HashMap<String, [String; 6]>,
}

/// Handles of one declared target's series, made as its results first need
/// them: a result then updates its series without hashing the five label
/// values once per family. Made again when a label value changes (the agent
/// moved to another OPD, the target's group or kind changed); nothing else
/// removes these series but [`Metrics::committed`] itself.
struct TargetSeries {
    opd: String,
    group: String,
    kind: RowKind,
    /// Latest observed time: late results never overwrite newer state.
    latest: Option<i64>,
    /// `pantau_probe_results_total` by outcome.
    results: Vec<(Outcome, prometheus::IntCounter)>,
    rtt: Option<Histogram>,
    tls_not_after: Option<prometheus::Gauge>,
    success: Option<prometheus::IntGauge>,
    last_seen: Option<prometheus::Gauge>,
    /// None while the series is absent (the latest result had no duration)
    /// or not yet known.
    duration: Option<prometheus::Gauge>,
    /// Handles made afresh: a series of these labels may exist from before.
    duration_unknown: bool,
    loss: Option<prometheus::Gauge>,
}

impl TargetSeries {
    fn new(opd: &str, r: &ResultRow, latest: Option<i64>) -> Self {
        TargetSeries {
            opd: opd.to_string(),
            group: r.group.clone(),
            kind: r.kind,
            latest,
            results: Vec::new(),
            rtt: None,
            tls_not_after: None,
            success: None,
            last_seen: None,
            duration: None,
            duration_unknown: true,
            loss: None,
        }
    }

    fn labels_match(&self, opd: &str, r: &ResultRow) -> bool {
        self.kind == r.kind && self.group == r.group && self.opd == opd
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

impl Metrics {
    /// Create and register every family.
    pub fn new() -> Self {
        let r = Registry::new();
        let o = |n: &str, h: &str| Opts::new(n, h);
        let m = Metrics {
            probe_success: reg(&r, IntGaugeVec::new(o("pantau_probe_success", "1 if the latest probe of the target succeeded, else 0."), TARGET_LABELS).unwrap()),
            probe_duration: reg(&r, GaugeVec::new(o("pantau_probe_duration_seconds", "Latest headline duration: ICMP mean RTT, TCP connect, HTTP total, DNS resolve."), TARGET_LABELS).unwrap()),
            probe_loss: reg(&r, GaugeVec::new(o("pantau_probe_loss_ratio", "Packet loss of the latest ICMP round, 0 to 1."), TARGET_LABELS).unwrap()),
            probe_rtt: reg(&r, HistogramVec::new(HistogramOpts::new("pantau_probe_rtt_seconds", "Round-trip time of every ICMP echo reply.").buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5]), &["opd", "agent", "target", "group"]).unwrap()),
            probe_tls_not_after: reg(&r, GaugeVec::new(o("pantau_probe_tls_not_after_timestamp_seconds", "Expiry (notAfter) of the HTTPS target's leaf certificate, Unix seconds."), TARGET_LABELS).unwrap()),
            probe_last_seen: reg(&r, GaugeVec::new(o("pantau_probe_last_seen_timestamp_seconds", "Observation time (agent clock) of the latest result, Unix seconds."), TARGET_LABELS).unwrap()),
            probe_results: reg(&r, IntCounterVec::new(o("pantau_probe_results_total", "Results stored, by outcome."), &["opd", "agent", "target", "group", "kind", "outcome"]).unwrap()),
            agent_last_seen: reg(&r, GaugeVec::new(o("pantau_agent_last_seen_timestamp_seconds", "When the collector last stored a result from the agent (collector clock), Unix seconds."), AGENT_LABELS).unwrap()),
            agent_info: reg(&r, IntGaugeVec::new(o("pantau_agent_info", "1 for each agent with the software version, host name and configuration hash of its latest Hello and the central configuration version it applied (join on opd, agent)."), &["opd", "agent", "version", "hostname", "config_hash", "config_version"]).unwrap()),
            connections_open: reg(&r, IntGaugeVec::new(o("pantau_connections_open", "Connections open now on a listening port (grpc: agents, http: pages, API, metrics)."), &["port"]).unwrap()),
            connections_refused: reg(&r, IntCounterVec::new(o("pantau_connections_refused_total", "Connections closed at once because a cap was reached: per_source (one address had its share, [limits] *_per_source) or total (the port was full, [limits] *_total)."), &["port", "reason"]).unwrap()),
            agent_connected: reg(&r, IntGaugeVec::new(o("pantau_agent_connected", "1 while the agent has a stream open."), AGENT_LABELS).unwrap()),
            agent_spool_records: reg(&r, IntGaugeVec::new(o("pantau_agent_spool_records", "Results waiting in the agent's spool, from its latest heartbeat."), AGENT_LABELS).unwrap()),
            agent_dropped: reg(&r, IntGaugeVec::new(o("pantau_agent_dropped_results", "Results the agent dropped in its current epoch, from its latest heartbeat."), AGENT_LABELS).unwrap()),
            agent_spool_bytes: reg(&r, IntGaugeVec::new(o("pantau_agent_spool_bytes", "Disk bytes of the agent's spool, from its latest heartbeat."), AGENT_LABELS).unwrap()),
            agent_corrupt: reg(&r, IntGaugeVec::new(o("pantau_agent_spool_corrupt_bytes", "Corrupt spool bytes the agent skipped in its current epoch (e.g. after a power cut), from its latest heartbeat."), AGENT_LABELS).unwrap()),
            agent_seq_skipped: reg(&r, IntGaugeVec::new(o("pantau_agent_seq_skipped", "Sequence numbers the agent gave up after spool damage in its current epoch, from its latest heartbeat."), AGENT_LABELS).unwrap()),
            agent_clock_offset: reg(&r, GaugeVec::new(o("pantau_agent_clock_offset_seconds", "Collector clock minus agent clock, estimated at Hello."), AGENT_LABELS).unwrap()),
            ingest_results: reg(&r, IntCounterVec::new(o("pantau_ingest_results_total", "Results newly stored."), &["opd"]).unwrap()),
            ingest_duplicates: reg(&r, IntCounterVec::new(o("pantau_ingest_duplicate_results_total", "Results received again and ignored (already stored)."), &["opd"]).unwrap()),
            ingest_conflicts: reg(&r, IntCounterVec::new(o("pantau_ingest_conflicts_total", "Results whose (agent, epoch, seq) was already stored with different content (two writers on one spool, a cloned agent); kept aside in result_conflict, not counted."), &["opd"]).unwrap()),
            ingest_batches: reg(&r, IntCounterVec::new(o("pantau_ingest_batches_total", "Batches committed and acknowledged."), &["opd"]).unwrap()),
            ingest_late: reg(&r, IntCounterVec::new(o("pantau_ingest_late_results_total", "Results stored that arrived late, after an outage."), &["opd"]).unwrap()),
            ingest_clock: reg(&r, IntCounterVec::new(o("pantau_ingest_clock_flagged_results_total", "Results whose agent timestamp is far in the future or past, by flag."), &["opd", "flag"]).unwrap()),
            ingest_rejected: reg(&r, IntCounterVec::new(o("pantau_ingest_rejected_total", "Streams or messages refused, by reason."), &["reason"]).unwrap()),
            auth_total: reg(&r, IntCounterVec::new(o("pantau_auth_total", "Agent authentications by result (ok, refused, closed: an open stream ended by a credential change) and reason (missing, unknown, revoked, rotated, disabled, expired, limited)."), &["result", "reason"]).unwrap()),
            commit_seconds: reg(&r, Histogram::with_opts(HistogramOpts::new("pantau_store_commit_duration_seconds", "Time to commit one write transaction.").buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])).unwrap()),
            store_errors: reg(&r, IntCounterVec::new(o("pantau_store_errors_total", "Failed store operations."), &["op"]).unwrap()),
            series_refused: reg(&r, IntCounterVec::new(o("pantau_metrics_series_refused_total", "Target series not created because the agent exceeded the per-agent cap."), AGENT_LABELS).unwrap()),
            seq_beyond_spool: reg(&r, IntCounterVec::new(o("pantau_agent_seq_beyond_spool_total", "Hellos whose spool ends below what the collector already holds for that epoch: another machine uses this agent's identity and spool epoch, or the spool was restored from a copy. The agent keeps its data; an admin must look."), AGENT_LABELS).unwrap()),
            link_utilisation: reg(&r, GaugeVec::new(o("pantau_link_utilisation_ratio", "Utilisation of the link over the latest poll interval, 0 to 1: rate divided by the contracted bandwidth (or the interface speed). Absent after a gap or counter reset."), &["opd", "agent", "target", "direction"]).unwrap()),
            link_throughput: reg(&r, GaugeVec::new(o("pantau_link_throughput_bits_per_second", "Traffic on the link over the latest poll interval, bit/s. Absent after a gap or counter reset."), &["opd", "agent", "target", "direction"]).unwrap()),
            link_capacity: reg(&r, GaugeVec::new(o("pantau_link_capacity_bits_per_second", "Capacity used for the utilisation ratio: contracted bandwidth if configured, else the interface speed."), &["opd", "agent", "target"]).unwrap()),
            bandwidth_throughput: reg(&r, GaugeVec::new(o("pantau_bandwidth_throughput_bits_per_second", "Throughput measured by the latest bandwidth test that ran, bit/s."), &["opd", "agent", "target", "direction"]).unwrap()),
            bandwidth_month_bytes: reg(&r, GaugeVec::new(o("pantau_bandwidth_month_bytes", "Bytes the agent's bandwidth tests used this calendar month (UTC), from its latest test."), AGENT_LABELS).unwrap()),
            registry: r,
            state: Mutex::new(State::default()),
            per_target: std::sync::atomic::AtomicBool::new(true),
        };
        // Known label values exist from the start at 0, so the first
        // increment is an increase that rate()/increase() can see.
        for op in STORE_OPS {
            m.store_errors.with_label_values(&[op]);
        }
        let build = reg(
            &m.registry,
            IntGaugeVec::new(
                o(
                    "pantau_build_info",
                    "1, labelled with the collector's version.",
                ),
                &["version"],
            )
            .unwrap(),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for reason in REJECT_REASONS {
            m.ingest_rejected.with_label_values(&[reason]);
        }
        for (result, reason) in AUTH_OUTCOMES {
            m.auth_total.with_label_values(&[result, reason]);
        }
        m
    }

    /// Count an authentication outcome (one of [`AUTH_OUTCOMES`]).
    pub fn auth(&self, result: &str, reason: &str) {
        self.auth_total.with_label_values(&[result, reason]).inc();
    }

    /// Series of an OPD known from the database, at 0 until data arrives.
    pub fn seed_opd(&self, opd: &str) {
        for c in [
            &self.ingest_results,
            &self.ingest_duplicates,
            &self.ingest_batches,
            &self.ingest_late,
        ] {
            c.with_label_values(&[opd]);
        }
        for flag in CLOCK_FLAGS {
            self.ingest_clock.with_label_values(&[opd, flag]);
        }
    }

    /// Series of an agent known from the database: not connected, last
    /// stored result and clock offset as the database has them. An agent
    /// that never reconnects after a collector restart keeps its last-seen
    /// time, so `PantauAgentSilent` fires for it.
    pub fn seed_agent(
        &self,
        who: &AgentIdentity,
        last_seen_ms: Option<i64>,
        offset_ms: Option<i64>,
    ) {
        let labels = [who.opd_id.as_str(), who.agent_id.as_str()];
        self.agent_connected.with_label_values(&labels).set(0);
        self.series_refused.with_label_values(&labels);
        self.seq_beyond_spool.with_label_values(&labels);
        if let Some(ms) = last_seen_ms {
            self.agent_last_seen
                .with_label_values(&labels)
                .set(ms as f64 / 1000.0);
        }
        if let Some(ms) = offset_ms {
            self.clock_offset(who, ms);
        }
    }

    /// Register the targets an agent declared (bounded).
    pub fn declare_targets<'a>(&self, who: &AgentIdentity, ids: impl Iterator<Item = &'a str>) {
        // Without per-target series no target is declared, so no result
        // makes a `pantau_probe_*` series (see `committed`).
        if !self.per_target.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let set = st.targets.entry(who.agent_id.clone()).or_default();
        let refused = self
            .series_refused
            .with_label_values(&[&who.opd_id, &who.agent_id]);
        for id in ids {
            if set.len() >= MAX_TARGETS_PER_AGENT && !set.contains(id) {
                refused.inc();
                continue;
            }
            set.insert(id.to_string());
        }
    }

    /// Keep per-target series or not (`[web] metrics_per_target`); set
    /// before any target is declared. A collector holding thousands of
    /// agents spends about 90 KB per agent of 20 targets on them.
    pub fn set_per_target(&self, on: bool) {
        self.per_target
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Set the connection gauge.
    pub fn connected(&self, who: &AgentIdentity, up: bool) {
        self.agent_connected
            .with_label_values(&[&who.opd_id, &who.agent_id])
            .set(i64::from(up));
    }

    /// Clock offset estimate.
    pub fn clock_offset(&self, who: &AgentIdentity, ms: i64) {
        self.agent_clock_offset
            .with_label_values(&[&who.opd_id, &who.agent_id])
            .set(ms as f64 / 1000.0);
    }

    /// Start the conflict counter of a known OPD at 0, so the first
    /// conflict is an increase an alert can see.
    pub fn known_opd(&self, opd: &str) {
        self.ingest_conflicts.with_label_values(&[opd]);
    }

    /// Count conflicting duplicates kept aside.
    pub fn conflicts(&self, opd: &str, n: usize) {
        self.ingest_conflicts
            .with_label_values(&[opd])
            .inc_by(n as u64);
    }

    /// The agent's `pantau_agent_info` series after a Hello; the series of
    /// its previous Hello goes when anything changed.
    pub fn agent_info(
        &self,
        who: &AgentIdentity,
        version: &str,
        hostname: &str,
        config_hash: &str,
    ) {
        let labels = [
            who.opd_id.clone(),
            who.agent_id.clone(),
            version.to_string(),
            hostname.to_string(),
            config_hash.to_string(),
            "0".to_string(),
        ];
        self.set_info(who, labels);
    }

    /// The central configuration version `who` applied (a label of
    /// `pantau_agent_info`).
    pub fn config_version(&self, who: &AgentIdentity, version: u64) {
        let labels = {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.info.get(&who.agent_id).cloned()
        };
        let Some(mut labels) = labels else {
            return;
        };
        labels[5] = version.to_string();
        self.set_info(who, labels);
    }

    fn set_info(&self, who: &AgentIdentity, labels: [String; 6]) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = st.info.insert(who.agent_id.clone(), labels.clone())
            && old != labels
        {
            let old: Vec<&str> = old.iter().map(String::as_str).collect();
            let _ = self.agent_info.remove_label_values(&old);
        }
        let now: Vec<&str> = labels.iter().map(String::as_str).collect();
        self.agent_info.with_label_values(&now).set(1);
    }

    /// The connection counters of listening port `port` (`grpc`, `http`),
    /// at 0 from the start.
    pub fn port_counters(&self, port: &str) -> crate::net::PortCounters {
        crate::net::PortCounters {
            open: self.connections_open.with_label_values(&[port]),
            refused_per_source: self
                .connections_refused
                .with_label_values(&[port, "per_source"]),
            refused_total: self.connections_refused.with_label_values(&[port, "total"]),
        }
    }

    /// Count a Hello whose spool ends below the committed seq.
    pub fn seq_beyond_spool(&self, who: &AgentIdentity) {
        self.seq_beyond_spool
            .with_label_values(&[who.opd_id.as_str(), who.agent_id.as_str()])
            .inc();
    }

    /// Count a refused stream or message.
    pub fn reject(&self, reason: &str) {
        self.ingest_rejected.with_label_values(&[reason]).inc();
    }

    /// Update after a committed batch.
    pub fn committed(
        &self,
        who: &AgentIdentity,
        rows: &[ResultRow],
        new: usize,
        received_at_ms: i64,
    ) {
        let (opd, agent) = (who.opd_id.as_str(), who.agent_id.as_str());
        self.ingest_results
            .with_label_values(&[opd])
            .inc_by(new as u64);
        self.ingest_duplicates
            .with_label_values(&[opd])
            .inc_by((rows.len() - new) as u64);
        self.ingest_batches.with_label_values(&[opd]).inc();
        self.agent_last_seen
            .with_label_values(&[opd, agent])
            .set(received_at_ms as f64 / 1000.0);
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let declared = st.targets.get(agent);
        if declared.is_some() && !st.series.contains_key(agent) {
            st.series.insert(agent.to_string(), HashMap::new());
        }
        let mut series = st.series.get_mut(agent);
        for r in rows {
            if r.late {
                self.ingest_late.with_label_values(&[opd]).inc();
            }
            if let Some(flag) = r.clock_flag {
                self.ingest_clock.with_label_values(&[opd, flag]).inc();
            }
            if r.kind == RowKind::Heartbeat {
                self.heartbeat(opd, agent, r);
                continue;
            }
            if !declared.is_some_and(|s| s.contains(&r.target_id)) {
                continue;
            }
            let Some(targets) = series.as_deref_mut() else {
                continue;
            };
            let s = match targets.get_mut(r.target_id.as_str()) {
                Some(s) if s.labels_match(opd, r) => s,
                found => {
                    let latest = found.and_then(|s| s.latest);
                    let fresh = TargetSeries::new(opd, r, latest);
                    targets.insert(r.target_id.clone(), fresh);
                    targets
                        .get_mut(r.target_id.as_str())
                        .expect("just inserted")
                }
            };
            self.probe_row(s, opd, agent, r);
        }
    }

    /// Gauges of an agent's heartbeat.
    fn heartbeat(&self, opd: &str, agent: &str, r: &ResultRow) {
        let Some(h) = r.data.as_object() else {
            return;
        };
        let get = |k: &str| h.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
        for (gauge, key) in [
            (&self.agent_spool_records, "spool_records"),
            (&self.agent_dropped, "results_dropped"),
            (&self.agent_spool_bytes, "spool_bytes"),
            (&self.agent_corrupt, "spool_corrupt_bytes"),
            (&self.agent_seq_skipped, "seq_skipped"),
        ] {
            gauge.with_label_values(&[opd, agent]).set(get(key));
        }
    }

    /// Series of one result of a declared target, through its handles.
    fn probe_row(&self, s: &mut TargetSeries, opd: &str, agent: &str, r: &ResultRow) {
        let labels = || {
            [
                opd,
                agent,
                r.target_id.as_str(),
                r.group.as_str(),
                r.kind.as_str(),
            ]
        };
        let counted = match s.results.iter().find(|(o, _)| *o == r.outcome) {
            Some((_, c)) => c,
            None => {
                let [o, a, t, g, k] = labels();
                let c = self
                    .probe_results
                    .with_label_values(&[o, a, t, g, k, r.outcome.as_str()]);
                s.results.push((r.outcome, c));
                &s.results[s.results.len() - 1].1
            }
        };
        counted.inc();
        if let Some(samples) = r
            .data
            .get("samples_us")
            .and_then(serde_json::Value::as_array)
        {
            let h = s
                .rtt
                .get_or_insert_with(|| self.probe_rtt.with_label_values(&labels()[..4]));
            for us in samples.iter().filter_map(serde_json::Value::as_u64) {
                h.observe(us as f64 / 1e6);
            }
        }
        if let Some(ms) = r
            .data
            .get("tls_not_after_ms")
            .and_then(serde_json::Value::as_i64)
        {
            s.tls_not_after
                .get_or_insert_with(|| self.probe_tls_not_after.with_label_values(&labels()))
                .set(ms as f64 / 1000.0);
        }
        if s.latest.is_some_and(|t| t > r.observed_at_ms) {
            return;
        }
        s.latest = Some(r.observed_at_ms);
        s.success
            .get_or_insert_with(|| self.probe_success.with_label_values(&labels()))
            .set(i64::from(r.outcome == Outcome::Ok));
        s.last_seen
            .get_or_insert_with(|| self.probe_last_seen.with_label_values(&labels()))
            .set(r.observed_at_ms as f64 / 1000.0);
        match r.value_ms {
            Some(v) => {
                s.duration_unknown = false;
                s.duration
                    .get_or_insert_with(|| self.probe_duration.with_label_values(&labels()))
                    .set(v / 1000.0);
            }
            // The series goes; its handle with it, so the next duration
            // makes it again.
            None => {
                if s.duration.take().is_some() || std::mem::take(&mut s.duration_unknown) {
                    let _ = self.probe_duration.remove_label_values(&labels());
                }
            }
        }
        if let Some(l) = r.loss() {
            s.loss
                .get_or_insert_with(|| self.probe_loss.with_label_values(&labels()))
                .set(l);
        }
        match r.kind {
            RowKind::Probe(ProbeKind::Link) => self.link(opd, agent, r),
            RowKind::Probe(ProbeKind::Bandwidth) => self.bandwidth(opd, agent, r),
            _ => {}
        }
    }

    fn link(&self, opd: &str, agent: &str, r: &ResultRow) {
        let f = |k: &str| r.data.get(k).and_then(serde_json::Value::as_f64);
        let link = r.target_id.as_str();
        let capacity = f("capacity_bps").filter(|c| *c > 0.0);
        match capacity {
            Some(c) => self
                .link_capacity
                .with_label_values(&[opd, agent, link])
                .set(c),
            None => {
                let _ = self.link_capacity.remove_label_values(&[opd, agent, link]);
            }
        }
        let has_rate = r.outcome == Outcome::Ok && f("interval_seconds").is_some_and(|s| s > 0.0);
        for (direction, key) in pantau_core::probe::link::RATE_KEYS {
            let l = [opd, agent, link, direction];
            match (has_rate, f(key)) {
                (true, Some(bps)) => {
                    self.link_throughput.with_label_values(&l).set(bps);
                    match capacity {
                        Some(c) => self.link_utilisation.with_label_values(&l).set(bps / c),
                        None => {
                            let _ = self.link_utilisation.remove_label_values(&l);
                        }
                    }
                }
                // No rate (first poll, gap, reset, failure): unknown, not zero.
                _ => {
                    let _ = self.link_throughput.remove_label_values(&l);
                    let _ = self.link_utilisation.remove_label_values(&l);
                }
            }
        }
    }

    fn bandwidth(&self, opd: &str, agent: &str, r: &ResultRow) {
        let u = |k: &str| r.data.get(k).and_then(serde_json::Value::as_u64);
        if let Some(b) = u("month_bytes") {
            self.bandwidth_month_bytes
                .with_label_values(&[opd, agent])
                .set(b as f64);
        }
        let ran = r.data.get("skipped").and_then(serde_json::Value::as_str) == Some("");
        if r.outcome != Outcome::Ok || !ran {
            return;
        }
        for (direction, key) in pantau_core::probe::bandwidth::RATE_KEYS {
            if let Some(bps) = u(key).filter(|b| *b > 0) {
                self.bandwidth_throughput
                    .with_label_values(&[opd, agent, &r.target_id, direction])
                    .set(bps as f64);
            }
        }
    }

    /// The registry, for families owned by other modules (remote write).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, observed: i64, outcome: Outcome, value: f64) -> ResultRow {
        ResultRow {
            epoch: 1,
            seq: 1,
            target_id: target.into(),
            group: "intranet".into(),
            kind: ProbeKind::Icmp.into(),
            observed_at_ms: observed,
            outcome,
            detail: String::new(),
            value_ms: Some(value),
            sent: Some(5),
            received: Some(if outcome == Outcome::Ok { 4 } else { 0 }),
            data: serde_json::json!({"samples_us": [800, 1200, 30000, 40000]}),
            late: false,
            clock_flag: None,
            agent_time_ms: observed,
            clock_correction_ms: None,
        }
    }

    #[test]
    fn build_info_and_one_agent_info_series_per_agent() {
        let m = Metrics::new();
        let text = m.render();
        let build = format!(
            "pantau_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        m.agent_info(&who, "0.1.0", "box", "h1");
        m.agent_info(&who, "0.1.0", "box", "h1");
        m.agent_info(&who, "0.2.0", "box", "h2");
        let text = m.render();
        let info: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("pantau_agent_info{"))
            .collect();
        assert_eq!(
            info,
            [
                "pantau_agent_info{agent=\"a1\",config_hash=\"h2\",config_version=\"0\",hostname=\"box\",opd=\"dinkes\",version=\"0.2.0\"} 1"
            ]
        );
    }

    #[test]
    fn conflicts_start_at_zero_per_known_opd_and_count() {
        let m = Metrics::new();
        m.known_opd("dinkes");
        m.known_opd("dishub");
        m.conflicts("dinkes", 2);
        m.conflicts("dinkes", 1);
        let text = m.render();
        assert!(
            text.contains("pantau_ingest_conflicts_total{opd=\"dinkes\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("pantau_ingest_conflicts_total{opd=\"dishub\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn without_per_target_series_results_are_counted_per_opd_only() {
        let m = Metrics::new();
        m.set_per_target(false);
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        m.declare_targets(&who, ["core"].into_iter());
        m.committed(&who, &[row("core", 2_000, Outcome::Ok, 12.5)], 1, 3_000);
        let text = m.render();
        assert!(!text.contains("pantau_probe_success{"), "{text}");
        assert!(!text.contains("pantau_probe_results_total{"), "{text}");
        assert!(
            text.contains("pantau_ingest_results_total{opd=\"dinkes\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "pantau_agent_last_seen_timestamp_seconds{agent=\"a1\",opd=\"dinkes\"} 3\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn exposition_reflects_latest_and_ignores_late_and_undeclared() {
        let m = Metrics::new();
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        m.declare_targets(&who, ["core"].into_iter());
        m.committed(
            &who,
            &[
                row("core", 2_000, Outcome::Ok, 12.5),
                row("rogue", 2_000, Outcome::Ok, 1.0),
            ],
            2,
            3_000,
        );
        // A late result from before must not overwrite the newer state.
        m.committed(&who, &[row("core", 1_000, Outcome::Timeout, 0.0)], 1, 4_000);
        let text = m.render();
        let l = r#"{agent="a1",group="intranet",kind="icmp",opd="dinkes",target="core"}"#;
        assert!(
            text.contains(&format!("pantau_probe_success{l} 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pantau_probe_duration_seconds{l} 0.0125\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pantau_probe_loss_ratio{l} 0.2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pantau_probe_last_seen_timestamp_seconds{l} 2\n")),
            "{text}"
        );
        assert!(
            text.contains("pantau_ingest_results_total{opd=\"dinkes\"} 3\n"),
            "{text}"
        );
        assert!(
            !text.contains("rogue"),
            "undeclared target made a series: {text}"
        );
        assert!(text.contains(r#"pantau_probe_results_total{agent="a1",group="intranet",kind="icmp",opd="dinkes",outcome="timeout",target="core"} 1"#));
    }

    #[test]
    fn cached_series_follow_removal_and_label_changes() {
        let m = Metrics::new();
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        m.declare_targets(&who, ["core"].into_iter());
        let l = r#"{agent="a1",group="intranet",kind="icmp",opd="dinkes",target="core"}"#;
        let duration = |text: &str| {
            text.lines()
                .filter(|x| x.starts_with("pantau_probe_duration_seconds{"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        m.committed(&who, &[row("core", 1_000, Outcome::Ok, 10.0)], 1, 1_000);
        let mut none = row("core", 2_000, Outcome::Timeout, 0.0);
        none.value_ms = None;
        m.committed(&who, &[none], 1, 2_000);
        assert_eq!(duration(&m.render()), Vec::<String>::new());
        m.committed(&who, &[row("core", 3_000, Outcome::Ok, 20.0)], 1, 3_000);
        assert_eq!(
            duration(&m.render()),
            [format!("pantau_probe_duration_seconds{l} 0.02")]
        );
        // The target moved to another group: series of the new labels; the
        // old ones keep their last values, as before the handles were kept.
        let mut moved = row("core", 4_000, Outcome::Ok, 30.0);
        moved.group = "internet".into();
        m.committed(&who, &[moved], 1, 4_000);
        let text = m.render();
        let n = r#"{agent="a1",group="internet",kind="icmp",opd="dinkes",target="core"}"#;
        assert!(
            text.contains(&format!("pantau_probe_duration_seconds{n} 0.03\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pantau_probe_last_seen_timestamp_seconds{n} 4\n")),
            "{text}"
        );
        // Back to the first group, a result without a duration removes the
        // series of those labels, made before the handles were made again.
        let mut back = row("core", 5_000, Outcome::Timeout, 0.0);
        back.value_ms = None;
        m.committed(&who, &[back], 1, 5_000);
        assert_eq!(
            duration(&m.render()),
            [format!("pantau_probe_duration_seconds{n} 0.03")]
        );
        // A late result of the old labels does not move the newer state.
        let late = row("core", 500, Outcome::Ok, 1.0);
        m.committed(&who, &[late], 1, 6_000);
        let text = m.render();
        assert!(
            text.contains(&format!("pantau_probe_last_seen_timestamp_seconds{l} 5\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("pantau_probe_results_total{}", r#"{agent="a1",group="intranet",kind="icmp",opd="dinkes",outcome="ok",target="core"} 3"#)),
            "{text}"
        );
    }

    #[test]
    fn link_utilisation_uses_capacity_and_disappears_after_a_gap() {
        let m = Metrics::new();
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        m.declare_targets(&who, ["wan1"].into_iter());
        let mut r = row("wan1", 1_000, Outcome::Ok, 0.0);
        r.kind = ProbeKind::Link.into();
        r.value_ms = None;
        r.sent = None;
        r.received = None;
        r.data = serde_json::json!({"capacity_bps": 20_000_000u64, "interval_seconds": 60.0,
            "in_bps": 18_000_000.0, "out_bps": 2_000_000.0, "no_rate": ""});
        m.committed(&who, std::slice::from_ref(&r), 1, 2_000);
        let text = m.render();
        assert!(
            text.contains(r#"pantau_link_utilisation_ratio{agent="a1",direction="download",opd="dinkes",target="wan1"} 0.9"#),
            "{text}"
        );
        assert!(
            text.contains(r#"pantau_link_utilisation_ratio{agent="a1",direction="upload",opd="dinkes",target="wan1"} 0.1"#),
            "{text}"
        );
        r.observed_at_ms = 5_000;
        r.data = serde_json::json!({"capacity_bps": 20_000_000u64, "interval_seconds": 0.0,
            "in_bps": 0.0, "out_bps": 0.0, "no_rate": "gap"});
        m.committed(&who, &[r], 1, 6_000);
        let text = m.render();
        assert!(!text.contains("pantau_link_utilisation_ratio{"), "{text}");
        assert!(text.contains(r#"pantau_link_capacity_bits_per_second{agent="a1",opd="dinkes",target="wan1"} 20000000"#), "{text}");
    }

    #[test]
    fn target_series_are_capped_per_agent() {
        let m = Metrics::new();
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "o".into(),
        };
        let ids: Vec<String> = (0..MAX_TARGETS_PER_AGENT + 3)
            .map(|i| format!("t{i}"))
            .collect();
        m.declare_targets(&who, ids.iter().map(String::as_str));
        assert!(
            m.render()
                .contains(r#"pantau_metrics_series_refused_total{agent="a1",opd="o"} 3"#)
        );
    }
}
