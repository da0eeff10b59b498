//! The collector's one boundary with the wire: `pantau.v1` messages become
//! domain types here, or are refused with a reason that becomes an
//! INVALID_ARGUMENT status.

use std::collections::HashMap;

use std::time::Duration;

use pantau_core::probe::limits;
use pantau_core::valid_id;
use pantau_proto::v1 as pb;
use serde_json::json;

use crate::model::{Group, HelloInfo, Outcome, ProbeKind, ResultRow, RowKind, TargetDecl};

/// Most targets one agent may declare (the agent's own limit, from core).
pub const MAX_TARGETS: usize = limits::MAX_TARGETS_PER_AGENT;
/// Longest accepted detail text, bytes.
pub const MAX_DETAIL: usize = 1024;
/// Most hops in one traceroute result.
pub const MAX_HOPS: usize = 64;
/// Most RTT samples in one ping result.
pub const MAX_SAMPLES: usize = 1000;

fn row_kind(k: i32) -> Option<RowKind> {
    Some(match pb::ProbeKind::try_from(k).ok()? {
        pb::ProbeKind::Icmp => ProbeKind::Icmp.into(),
        pb::ProbeKind::Tcp => ProbeKind::Tcp.into(),
        pb::ProbeKind::Http => ProbeKind::Http.into(),
        pb::ProbeKind::Dns => ProbeKind::Dns.into(),
        pb::ProbeKind::Heartbeat => RowKind::Heartbeat,
        pb::ProbeKind::Bandwidth => ProbeKind::Bandwidth.into(),
        pb::ProbeKind::Link => ProbeKind::Link.into(),
        pb::ProbeKind::Traceroute => ProbeKind::Traceroute.into(),
        pb::ProbeKind::Unspecified => return None,
    })
}

fn outcome(o: i32) -> Option<Outcome> {
    Some(match pb::Outcome::try_from(o).ok()? {
        pb::Outcome::Ok => Outcome::Ok,
        pb::Outcome::Timeout => Outcome::Timeout,
        pb::Outcome::Refused => Outcome::Refused,
        pb::Outcome::Unreachable => Outcome::Unreachable,
        pb::Outcome::DnsError => Outcome::DnsError,
        pb::Outcome::TlsError => Outcome::TlsError,
        pb::Outcome::HttpStatus => Outcome::HttpStatus,
        pb::Outcome::HttpMatch => Outcome::HttpMatch,
        pb::Outcome::Other => Outcome::Other,
        pb::Outcome::Unspecified => return None,
    })
}

/// Why a Hello was refused. The text is the INVALID_ARGUMENT status the
/// agent sees (after `Hello: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// More targets than [`MAX_TARGETS`].
    #[error("{0} targets declared; at most {MAX_TARGETS}")]
    TooManyTargets(usize),
    /// No spool state.
    #[error("Hello.spool is missing")]
    NoSpool,
    /// Epoch 0 is reserved.
    #[error("Hello.spool.epoch must not be 0")]
    ZeroEpoch,
    /// A target id breaks the id rule.
    #[error("targets[{0}].id is not a valid id")]
    BadId(usize),
    /// A target id appears twice.
    #[error("targets[{i}].id `{id}` is declared twice")]
    Duplicate {
        /// Index in the Hello.
        i: usize,
        /// The id.
        id: String,
    },
    /// A group this collector does not know (shortened to 40 characters).
    #[error("targets[{i}].group `{group}` is unknown")]
    UnknownGroup {
        /// Index in the Hello.
        i: usize,
        /// The group as sent, shortened.
        group: String,
    },
    /// A kind that is missing, unknown or not a probe.
    #[error("targets[{0}].kind is invalid")]
    BadKind(usize),
    /// Address or label longer than allowed.
    #[error("targets[{0}] address or label is too long")]
    TooLong(usize),
    /// An interval outside the agent's own limits.
    #[error("targets[{i}].interval_ms {ms} is out of range; allowed {} to {}",
        limits::MIN_INTERVAL.as_millis(), limits::MAX_INTERVAL.as_millis())]
    Interval {
        /// Index in the Hello.
        i: usize,
        /// The interval as sent.
        ms: u64,
    },
    /// A timeout outside the agent's own limits.
    #[error("targets[{i}].timeout_ms {ms} is out of range; allowed {} to {}",
        limits::MIN_TIMEOUT.as_millis(), limits::MAX_TIMEOUT.as_millis())]
    Timeout {
        /// Index in the Hello.
        i: usize,
        /// The timeout as sent.
        ms: u64,
    },
    /// A control character in a name or address.
    #[error("targets[{i}].{field} contains a control character")]
    Control {
        /// Index in the Hello.
        i: usize,
        /// `address` or `label`.
        field: &'static str,
    },
}

/// Why one result was refused: its own fields, or how it fits the targets
/// its session declared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    /// Kind missing or unknown.
    #[error("kind is missing or unknown")]
    NoKind,
    /// Outcome missing or unknown.
    #[error("outcome is missing or unknown")]
    NoOutcome,
    /// No usable observation time.
    #[error("observed_at is missing or invalid")]
    NoObservedAt,
    /// Detail longer than [`MAX_DETAIL`].
    #[error("detail is longer than {MAX_DETAIL} bytes")]
    DetailTooLong,
    /// Ping counts and samples disagree.
    #[error("ping counts are inconsistent")]
    PingCounts,
    /// An ok ping without a reply.
    #[error("ok ping result with no replies")]
    OkPingNoReplies,
    /// Bandwidth figures out of range.
    #[error("bandwidth measurement is out of range")]
    Bandwidth,
    /// Link figures out of range.
    #[error("link measurement is out of range")]
    Link,
    /// Traceroute hops out of order or malformed.
    #[error("traceroute hops are inconsistent")]
    Traceroute,
    /// A heartbeat without its health measurement.
    #[error("heartbeat without health")]
    HeartbeatWithoutHealth,
    /// The measurement belongs to another kind.
    #[error("measurement does not match kind {0}")]
    WrongMeasurement(RowKind),
    /// A figure no working agent can produce (field, value, bound).
    #[error("{field} {value} is out of range; at most {max}")]
    OutOfRange {
        /// The field, as in `pantau.v1`.
        field: &'static str,
        /// The value as sent.
        value: String,
        /// The bound.
        max: String,
    },
    /// A control character in an agent-supplied name.
    #[error("{0} contains a control character")]
    Control(&'static str),
    /// A heartbeat that names a target.
    #[error("heartbeat must not name a target")]
    HeartbeatTarget,
    /// A target the session's Hello did not declare (shortened id).
    #[error("target `{0}` was not declared in Hello")]
    Undeclared(String),
    /// The result's kind differs from the declared one.
    #[error("target `{target}` is {declared}, result says {got}")]
    WrongKind {
        /// Target id.
        target: String,
        /// Kind declared in Hello.
        declared: ProbeKind,
        /// Kind of the result.
        got: RowKind,
    },
}

/// Why a batch was refused. The text is the INVALID_ARGUMENT status the
/// agent sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// No results.
    #[error("empty batch")]
    Empty,
    /// A result of another epoch than the stream's.
    #[error("results[{i}].epoch {got} differs from the stream's epoch {epoch}")]
    Epoch {
        /// Index in the batch.
        i: usize,
        /// The result's epoch.
        got: u64,
        /// The stream's epoch.
        epoch: u64,
    },
    /// Sequences must increase within and across batches.
    #[error("results[{i}].seq {seq} is not above {prev}; sequences must increase")]
    NotIncreasing {
        /// Index in the batch.
        i: usize,
        /// The result's seq.
        seq: u64,
        /// The seq before it.
        prev: u64,
    },
    /// A seq that does not fit storage.
    #[error("results[{0}].seq is too large")]
    SeqTooLarge(usize),
    /// A seq far beyond what the agent declared it would number.
    #[error(
        "results[{i}].seq {seq} is far above the next_seq {declared} declared in Hello (at most {ceiling} now)"
    )]
    SeqBeyondDeclared {
        /// Index in the batch.
        i: usize,
        /// The result's seq.
        seq: u64,
        /// `Hello.spool.next_seq`.
        declared: u64,
        /// The ceiling at this time ([`seq_ceiling`]).
        ceiling: u64,
    },
    /// One result is invalid.
    #[error("results[{i}]: {error}")]
    Result {
        /// Index in the batch.
        i: usize,
        /// Why.
        #[source]
        error: ResultError,
    },
}

/// Validate a Hello.
pub fn hello(h: pb::Hello) -> Result<HelloInfo, HelloError> {
    if h.targets.len() > MAX_TARGETS {
        return Err(HelloError::TooManyTargets(h.targets.len()));
    }
    let spool = h.spool.ok_or(HelloError::NoSpool)?;
    if spool.epoch == 0 {
        return Err(HelloError::ZeroEpoch);
    }
    let mut seen = std::collections::HashSet::new();
    let mut targets = Vec::with_capacity(h.targets.len());
    for (i, t) in h.targets.into_iter().enumerate() {
        if !valid_id(&t.id) {
            return Err(HelloError::BadId(i));
        }
        if !seen.insert(t.id.clone()) {
            return Err(HelloError::Duplicate { i, id: t.id });
        }
        let Some(group) = Group::parse(&t.group) else {
            return Err(HelloError::UnknownGroup {
                i,
                group: short(&t.group),
            });
        };
        let kind = row_kind(t.kind)
            .and_then(RowKind::probe)
            .ok_or(HelloError::BadKind(i))?;
        if t.address.len() > 512 || t.label.len() > 256 {
            return Err(HelloError::TooLong(i));
        }
        if !limits::interval_ok(Duration::from_millis(t.interval_ms)) {
            return Err(HelloError::Interval {
                i,
                ms: t.interval_ms,
            });
        }
        if !limits::timeout_ok(Duration::from_millis(t.timeout_ms)) {
            return Err(HelloError::Timeout {
                i,
                ms: t.timeout_ms,
            });
        }
        for (field, v) in [("address", &t.address), ("label", &t.label)] {
            if !limits::clean_name(v) {
                return Err(HelloError::Control { i, field });
            }
        }
        targets.push(TargetDecl {
            id: t.id,
            group,
            kind,
            address: t.address,
            label: t.label,
            interval_ms: t.interval_ms,
            timeout_ms: t.timeout_ms,
        });
    }
    Ok(HelloInfo {
        version: cap(h.agent_version, 64),
        config_hash: cap(h.config_hash, 128),
        hostname: cap(h.hostname, 255),
        epoch: spool.epoch,
        agent_time_ms: h
            .agent_time
            .as_ref()
            .and_then(pantau_proto::millis_from_timestamp),
        targets,
    })
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

fn cap(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut cut = n;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Targets of a session: id -> (group, kind, interval ms).
pub type Catalogue = HashMap<String, (Group, ProbeKind, u64)>;

/// Build the catalogue from a validated Hello.
pub fn catalogue(h: &HelloInfo) -> Catalogue {
    h.targets
        .iter()
        .map(|t| (t.id.clone(), (t.group, t.kind, t.interval_ms)))
        .collect()
}

/// Seqs an agent may number beyond the `next_seq` its Hello declared before
/// any time has passed (results taken while the Hello was under way).
pub const SEQ_SLACK: u64 = 100_000;
/// Most results one target yields per round (a link target reports each
/// interface of a router).
const RESULTS_PER_ROUND: u64 = 64;

/// The highest seq a session may send `elapsed_ms` after its Hello declared
/// `next_seq`: the declared value, a slack, and what the declared targets
/// (and the heartbeat) can produce at their intervals since. A seq far
/// beyond it is forged, not measured.
pub fn seq_ceiling(next_seq: u64, cat: &Catalogue, elapsed_ms: u64) -> u64 {
    let per_sec: u64 = 1 + cat
        .values()
        .map(|(_, _, iv)| RESULTS_PER_ROUND * 1000 / (*iv).max(1000))
        .sum::<u64>();
    next_seq
        .saturating_add(SEQ_SLACK)
        .saturating_add(per_sec.saturating_mul(elapsed_ms / 1000 + 1))
}

/// Validate a batch of one epoch against the session's catalogue.
/// `after` is the highest seq already received on this stream.
pub fn batch(
    b: pb::ResultBatch,
    epoch: u64,
    after: u64,
    cat: &Catalogue,
) -> Result<Vec<ResultRow>, BatchError> {
    if b.results.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut prev = after;
    let mut rows = Vec::with_capacity(b.results.len());
    for (i, r) in b.results.into_iter().enumerate() {
        if r.epoch != epoch {
            return Err(BatchError::Epoch {
                i,
                got: r.epoch,
                epoch,
            });
        }
        if r.seq <= prev {
            return Err(BatchError::NotIncreasing {
                i,
                seq: r.seq,
                prev,
            });
        }
        if r.seq > i64::MAX as u64 {
            return Err(BatchError::SeqTooLarge(i));
        }
        prev = r.seq;
        rows.push(
            result(r)
                .and_then(|row| attach_group(row, cat))
                .map_err(|error| BatchError::Result { i, error })?,
        );
    }
    Ok(rows)
}

fn attach_group(mut row: ResultRow, cat: &Catalogue) -> Result<ResultRow, ResultError> {
    let RowKind::Probe(row_kind) = row.kind else {
        if !row.target_id.is_empty() {
            return Err(ResultError::HeartbeatTarget);
        }
        return Ok(row);
    };
    let (group, kind, _) = cat
        .get(&row.target_id)
        .ok_or_else(|| ResultError::Undeclared(short(&row.target_id)))?;
    if *kind != row_kind {
        return Err(ResultError::WrongKind {
            target: row.target_id,
            declared: *kind,
            got: row.kind,
        });
    }
    row.group = group.as_str().to_string();
    Ok(row)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// What a measurement adds to a row.
#[derive(Default)]
struct Measured {
    data: serde_json::Value,
    value_ms: Option<f64>,
    sent: Option<u32>,
    received: Option<u32>,
}

impl Measured {
    fn data(data: serde_json::Value) -> Self {
        Measured {
            data,
            ..Measured::default()
        }
    }
}

/// Convert one result (without catalogue checks).
pub fn result(r: pb::Result) -> Result<ResultRow, ResultError> {
    let kind = row_kind(r.kind).ok_or(ResultError::NoKind)?;
    let outcome = outcome(r.outcome).ok_or(ResultError::NoOutcome)?;
    let observed_at_ms = r
        .observed_at
        .as_ref()
        .and_then(pantau_proto::millis_from_timestamp)
        .ok_or(ResultError::NoObservedAt)?;
    if r.detail.len() > MAX_DETAIL {
        return Err(ResultError::DetailTooLong);
    }
    let m = measured(kind, outcome, r.measurement)?;
    if kind == RowKind::Probe(ProbeKind::Icmp) && outcome == Outcome::Ok && m.received == Some(0) {
        return Err(ResultError::OkPingNoReplies);
    }
    Ok(ResultRow {
        epoch: r.epoch,
        seq: r.seq,
        target_id: r.target_id,
        group: String::new(),
        kind,
        observed_at_ms,
        outcome,
        detail: r.detail,
        value_ms: m.value_ms,
        sent: m.sent,
        received: m.received,
        data: m.data,
        late: false,
        clock_flag: None,
        agent_time_ms: observed_at_ms,
        clock_correction_ms: None,
    })
}

/// The measurement of a result of `kind`: one arm per probe kind, so the
/// wire-to-domain boundary of every measurement is one match to audit.
fn measured(
    kind: RowKind,
    outcome: Outcome,
    m: Option<pb::result::Measurement>,
) -> Result<Measured, ResultError> {
    use pb::result::Measurement as M;
    let ok = outcome == Outcome::Ok;
    Ok(match (kind, m) {
        (RowKind::Probe(ProbeKind::Icmp), Some(M::Ping(p))) => ping(p)?,
        (RowKind::Probe(ProbeKind::Tcp), Some(M::Tcp(t))) => Measured {
            value_ms: ok.then(|| ms(t.connect_us)),
            ..Measured::data(json!({"connect_us": rtt("connect_us", t.connect_us)?}))
        },
        (RowKind::Probe(ProbeKind::Http), Some(M::Http(h))) => http(h)?,
        (RowKind::Probe(ProbeKind::Dns), Some(M::Dns(d))) => Measured {
            value_ms: ok.then(|| ms(d.resolve_us)),
            ..Measured::data(json!({"resolve_us": rtt("resolve_us", d.resolve_us)?,
                                    "answers": d.answers, "rcode": d.rcode}))
        },
        (RowKind::Heartbeat, Some(M::Heartbeat(h))) => Measured::data(json!({
            "uptime_seconds": h.uptime_seconds, "spool_records": h.spool_records, "spool_bytes": h.spool_bytes,
            "results_dropped": h.results_dropped, "clock_offset_ms": h.clock_offset_ms,
            "probes_in_flight": h.probes_in_flight, "spool_corrupt_bytes": h.spool_corrupt_bytes,
            "seq_skipped": h.seq_skipped})),
        (RowKind::Probe(ProbeKind::Bandwidth), Some(M::Bandwidth(b))) => bandwidth(b)?,
        (RowKind::Probe(ProbeKind::Link), Some(M::Link(l))) => link(l)?,
        (RowKind::Probe(ProbeKind::Traceroute), Some(M::Traceroute(t))) => traceroute(t)?,
        (RowKind::Heartbeat, None) => return Err(ResultError::HeartbeatWithoutHealth),
        (_, None) => Measured::data(json!({})),
        (k, Some(_)) => return Err(ResultError::WrongMeasurement(k)),
    })
}

/// `v` if it is at most `max`, else [`ResultError::OutOfRange`] naming `field`.
fn at_most(field: &'static str, v: u64, max: u64) -> Result<u64, ResultError> {
    if v <= max {
        Ok(v)
    } else {
        Err(ResultError::OutOfRange {
            field,
            value: v.to_string(),
            max: max.to_string(),
        })
    }
}

/// A measured duration, µs: no probe measures beyond its longest timeout.
fn rtt(field: &'static str, us: u64) -> Result<u64, ResultError> {
    at_most(field, us, limits::MAX_RTT_US)
}

/// A rate in bits per second given as a float: finite, not negative, plausible.
fn bps_f64(field: &'static str, v: f64) -> Result<f64, ResultError> {
    if v.is_finite() && (0.0..=limits::MAX_BPS as f64).contains(&v) {
        Ok(v)
    } else {
        Err(ResultError::OutOfRange {
            field,
            value: v.to_string(),
            max: limits::MAX_BPS.to_string(),
        })
    }
}

fn name(field: &'static str, s: &str) -> Result<(), ResultError> {
    if s.len() > limits::MAX_NAME {
        return Err(ResultError::OutOfRange {
            field,
            value: format!("{} bytes", s.len()),
            max: format!("{} bytes", limits::MAX_NAME),
        });
    }
    if !limits::clean_name(s) {
        return Err(ResultError::Control(field));
    }
    Ok(())
}

fn http(h: pb::HttpMeasurement) -> Result<Measured, ResultError> {
    let not_after = h
        .tls_not_after
        .as_ref()
        .and_then(pantau_proto::millis_from_timestamp);
    at_most("status", u64::from(h.status), 999)?;
    rtt("ttfb_us", h.ttfb_us)?;
    rtt("total_us", h.total_us)?;
    at_most("body_bytes", h.body_bytes, limits::MAX_BYTES)?;
    Ok(Measured {
        value_ms: (h.status > 0).then(|| ms(h.total_us)),
        ..Measured::data(
            json!({"status": h.status, "ttfb_us": h.ttfb_us, "total_us": h.total_us,
                   "tls_not_after_ms": not_after, "body_bytes": h.body_bytes}),
        )
    })
}

fn ping(p: pb::PingMeasurement) -> Result<Measured, ResultError> {
    if p.samples_us.len() > MAX_SAMPLES
        || p.received > p.sent
        || p.samples_us.len() != p.received as usize
    {
        return Err(ResultError::PingCounts);
    }
    at_most("sent", u64::from(p.sent), u64::from(limits::MAX_ICMP_COUNT))?;
    rtt("rtt_min_us", p.rtt_min_us)?;
    rtt("rtt_avg_us", p.rtt_avg_us)?;
    rtt("rtt_max_us", p.rtt_max_us)?;
    rtt("rtt_stddev_us", p.rtt_stddev_us)?;
    for s in &p.samples_us {
        rtt("samples_us", *s)?;
    }
    Ok(Measured {
        value_ms: (p.received > 0).then(|| ms(p.rtt_avg_us)),
        sent: Some(p.sent),
        received: Some(p.received),
        data: json!({"rtt_min_us": p.rtt_min_us, "rtt_avg_us": p.rtt_avg_us, "rtt_max_us": p.rtt_max_us,
                     "rtt_stddev_us": p.rtt_stddev_us, "samples_us": p.samples_us}),
    })
}

fn bandwidth(b: pb::BandwidthMeasurement) -> Result<Measured, ResultError> {
    if b.streams > 64 || b.skipped.len() > 16 {
        return Err(ResultError::Bandwidth);
    }
    at_most("download_bps", b.download_bps, limits::MAX_BPS)?;
    at_most("upload_bps", b.upload_bps, limits::MAX_BPS)?;
    at_most("busy_bps", b.busy_bps, limits::MAX_BPS)?;
    at_most("download_bytes", b.download_bytes, limits::MAX_BYTES)?;
    at_most("upload_bytes", b.upload_bytes, limits::MAX_BYTES)?;
    at_most(
        "download_window_us",
        b.download_window_us,
        limits::MAX_WINDOW_US,
    )?;
    at_most(
        "upload_window_us",
        b.upload_window_us,
        limits::MAX_WINDOW_US,
    )?;
    at_most(
        "month_bytes",
        b.month_bytes,
        limits::MAX_BYTES.saturating_mul(31),
    )?;
    name("skipped", &b.skipped)?;
    Ok(Measured::data(
        json!({"download_bps": b.download_bps, "upload_bps": b.upload_bps,
               "download_bytes": b.download_bytes, "upload_bytes": b.upload_bytes,
               "download_window_us": b.download_window_us, "upload_window_us": b.upload_window_us,
               "streams": b.streams, "skipped": b.skipped, "busy_bps": b.busy_bps,
               "month_bytes": b.month_bytes}),
    ))
}

fn link(l: pb::LinkMeasurement) -> Result<Measured, ResultError> {
    let finite = [l.interval_seconds, l.in_bps, l.out_bps]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0);
    if !finite
        || !matches!(l.source.as_str(), "snmp" | "local")
        || !matches!(l.no_rate.as_str(), "" | "first" | "reset" | "gap")
        || !matches!(l.counter_bits, 32 | 64)
        || l.if_name.len() > 64
    {
        return Err(ResultError::Link);
    }
    name("if_name", &l.if_name)?;
    bps_f64("in_bps", l.in_bps)?;
    bps_f64("out_bps", l.out_bps)?;
    at_most("capacity_bps", l.capacity_bps, limits::MAX_BPS)?;
    Ok(Measured::data(
        json!({"source": l.source, "if_index": l.if_index, "if_name": l.if_name,
               "in_octets": l.in_octets, "out_octets": l.out_octets, "counter_bits": l.counter_bits,
               "sys_uptime_cs": l.sys_uptime_cs, "oper_status": l.oper_status,
               "capacity_bps": l.capacity_bps, "contracted": l.contracted,
               "interval_seconds": l.interval_seconds, "in_bps": l.in_bps, "out_bps": l.out_bps,
               "no_rate": l.no_rate, "wraps": l.wraps}),
    ))
}

fn traceroute(t: pb::TracerouteMeasurement) -> Result<Measured, ResultError> {
    let valid = t.hops.len() <= MAX_HOPS
        && t.hops.iter().enumerate().all(|(i, h)| {
            h.ttl as usize == i + 1
                && (h.address.is_empty() || h.address.parse::<std::net::IpAddr>().is_ok())
                && (h.rtt_us == 0 || !h.address.is_empty())
        });
    if !valid {
        return Err(ResultError::Traceroute);
    }
    for h in &t.hops {
        rtt("hops.rtt_us", h.rtt_us)?;
    }
    let value_ms = t
        .hops
        .last()
        .filter(|_| t.reached)
        .map(|last| ms(last.rtt_us));
    let hops: Vec<_> = t
        .hops
        .iter()
        .map(|h| json!({"ttl": h.ttl, "address": h.address, "rtt_us": h.rtt_us}))
        .collect();
    Ok(Measured {
        value_ms,
        ..Measured::data(json!({"hops": hops, "reached": t.reached}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(seq: u64, target: &str) -> pb::Result {
        pb::Result {
            epoch: 9,
            seq,
            target_id: target.into(),
            kind: pb::ProbeKind::Icmp as i32,
            observed_at: Some(pantau_proto::timestamp_from_millis(1_700_000_000_000)),
            outcome: pb::Outcome::Ok as i32,
            detail: String::new(),
            measurement: Some(pb::result::Measurement::Ping(pb::PingMeasurement {
                sent: 5,
                received: 2,
                rtt_min_us: 900,
                rtt_avg_us: 1000,
                rtt_max_us: 1100,
                rtt_stddev_us: 100,
                samples_us: vec![900, 1100],
            })),
        }
    }

    fn cat() -> Catalogue {
        [(
            "core".to_string(),
            (Group::Intranet, ProbeKind::Icmp, 30_000),
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn good_batch_converts() {
        let rows = batch(
            pb::ResultBatch {
                results: vec![ping(1, "core"), ping(2, "core")],
            },
            9,
            0,
            &cat(),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].group, "intranet");
        assert_eq!(rows[0].value_ms, Some(1.0));
        assert_eq!(rows[0].loss(), Some(0.6));
        assert_eq!(rows[1].observed_at_ms, 1_700_000_000_000);
    }

    #[test]
    fn bad_batches_are_refused_with_a_reason() {
        let c = cat();
        let b = |rs| pb::ResultBatch { results: rs };
        let e = batch(b(vec![ping(2, "core"), ping(2, "core")]), 9, 0, &c).unwrap_err();
        assert!(e.to_string().contains("must increase"), "{e}");
        assert!(
            batch(b(vec![ping(1, "other")]), 9, 0, &c)
                .unwrap_err()
                .to_string()
                .contains("not declared")
        );
        assert!(
            batch(b(vec![ping(1, "core")]), 8, 0, &c)
                .unwrap_err()
                .to_string()
                .contains("epoch")
        );
        assert!(
            batch(b(vec![ping(3, "core")]), 9, 3, &c)
                .unwrap_err()
                .to_string()
                .contains("not above 3")
        );
        let mut bad = ping(1, "core");
        bad.outcome = 99;
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
                .to_string()
                .contains("outcome")
        );
        let mut bad = ping(1, "core");
        bad.measurement = Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
            connect_us: 1,
        }));
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        let mut bad = ping(1, "core");
        bad.observed_at = None;
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
                .to_string()
                .contains("observed_at")
        );
        assert!(batch(b(vec![]), 9, 0, &c).is_err());
    }

    #[test]
    fn hello_validation() {
        let mut h = pb::Hello {
            agent_id: "a".into(),
            spool: Some(pb::SpoolState {
                epoch: 3,
                ..Default::default()
            }),
            targets: vec![pb::TargetInfo {
                id: "core".into(),
                group: "intranet".into(),
                kind: pb::ProbeKind::Icmp as i32,
                address: "10.0.0.1".into(),
                interval_ms: 30_000,
                timeout_ms: 5_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(hello(h.clone()).unwrap().targets[0].kind, ProbeKind::Icmp);
        h.targets[0].group = "mars".into();
        assert!(hello(h.clone()).unwrap_err().to_string().contains("group"));
        h.targets[0].group = "app".into();
        h.spool = None;
        assert!(hello(h).unwrap_err().to_string().contains("spool"));
    }

    fn hello_with(f: impl Fn(&mut pb::TargetInfo)) -> Result<HelloInfo, HelloError> {
        let mut t = pb::TargetInfo {
            id: "core".into(),
            group: "intranet".into(),
            kind: pb::ProbeKind::Icmp as i32,
            address: "10.0.0.1".into(),
            interval_ms: 30_000,
            timeout_ms: 5_000,
            ..Default::default()
        };
        f(&mut t);
        hello(pb::Hello {
            agent_id: "a".into(),
            spool: Some(pb::SpoolState {
                epoch: 3,
                ..Default::default()
            }),
            targets: vec![t],
            ..Default::default()
        })
    }

    #[test]
    fn hello_targets_keep_the_agents_own_limits() {
        assert!(hello_with(|_| {}).is_ok());
        let e = hello_with(|t| t.interval_ms = 1 << 52).unwrap_err();
        assert_eq!(
            e.to_string(),
            "targets[0].interval_ms 4503599627370496 is out of range; allowed 1000 to 86400000"
        );
        let e = hello_with(|t| t.interval_ms = 0).unwrap_err();
        assert!(e.to_string().contains("interval_ms 0"), "{e}");
        let e = hello_with(|t| t.timeout_ms = 10_000_000).unwrap_err();
        assert!(e.to_string().contains("targets[0].timeout_ms"), "{e}");
        let e = hello_with(|t| t.label = "a\r\n=cmd".into()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "targets[0].label contains a control character"
        );
        let e = hello_with(|t| t.address = "10.0.0.1\u{1b}[2J".into()).unwrap_err();
        assert!(e.to_string().contains("address"), "{e}");
        // The cap on declared targets is the agent's own, from core.
        let many = pb::Hello {
            agent_id: "a".into(),
            spool: Some(pb::SpoolState {
                epoch: 3,
                ..Default::default()
            }),
            targets: (0..=limits::MAX_TARGETS_PER_AGENT)
                .map(|i| pb::TargetInfo {
                    id: format!("t{i}"),
                    group: "intranet".into(),
                    kind: pb::ProbeKind::Icmp as i32,
                    address: "10.0.0.1".into(),
                    interval_ms: 30_000,
                    timeout_ms: 5_000,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            hello(many).unwrap_err(),
            HelloError::TooManyTargets(limits::MAX_TARGETS_PER_AGENT + 1)
        );
    }

    #[test]
    fn seq_ceiling_grows_with_time_and_targets_only() {
        let c = cat();
        // One 30 s target: at most 64 results a round, 2 a second, plus the heartbeat.
        assert_eq!(seq_ceiling(10, &c, 0), 10 + SEQ_SLACK + 3);
        assert_eq!(seq_ceiling(10, &c, 9_999), 10 + SEQ_SLACK + 30);
        assert!(seq_ceiling(10, &c, 86_400_000) < 1_000_000_000_000);
        assert_eq!(seq_ceiling(u64::MAX, &c, u64::MAX), u64::MAX);
    }

    #[test]
    fn implausible_results_are_refused_naming_the_field() {
        let c = cat();
        let one = |r| batch(pb::ResultBatch { results: vec![r] }, 9, 0, &c);
        let with_ping = |f: &dyn Fn(&mut pb::PingMeasurement)| {
            let mut r = ping(1, "core");
            if let Some(pb::result::Measurement::Ping(p)) = r.measurement.as_mut() {
                f(p);
            }
            r
        };
        let e = one(with_ping(&|p| p.rtt_avg_us = u64::MAX)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "results[0]: rtt_avg_us 18446744073709551615 is out of range; at most 120000000"
        );
        let e = one(with_ping(&|p| p.samples_us[1] = 1 << 40)).unwrap_err();
        assert!(e.to_string().contains("samples_us"), "{e}");
        let e = one(with_ping(&|p| p.sent = 5000)).unwrap_err();
        assert!(e.to_string().contains("sent 5000"), "{e}");
        // At the bound is still a result.
        assert!(one(with_ping(&|p| p.rtt_max_us = limits::MAX_RTT_US)).is_ok());

        let tcp = |us| pb::Result {
            kind: pb::ProbeKind::Tcp as i32,
            measurement: Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
                connect_us: us,
            })),
            ..ping(1, "core")
        };
        assert!(
            result(tcp(u64::MAX))
                .unwrap_err()
                .to_string()
                .contains("connect_us")
        );
        let link = |f: &dyn Fn(&mut pb::LinkMeasurement)| {
            let mut l = pb::LinkMeasurement {
                source: "snmp".into(),
                if_name: "ge-0/0/1".into(),
                counter_bits: 64,
                interval_seconds: 60.0,
                in_bps: 1e6,
                out_bps: 1e6,
                ..Default::default()
            };
            f(&mut l);
            result(pb::Result {
                kind: pb::ProbeKind::Link as i32,
                measurement: Some(pb::result::Measurement::Link(l)),
                ..ping(1, "core")
            })
        };
        assert!(link(&|_| {}).is_ok());
        assert_eq!(
            link(&|l| l.if_name = "eth0\r\n=cmd|' /C calc'!A0".into())
                .unwrap_err()
                .to_string(),
            "if_name contains a control character"
        );
        assert!(
            link(&|l| l.in_bps = 1e20)
                .unwrap_err()
                .to_string()
                .contains("in_bps")
        );
        let bw = result(pb::Result {
            kind: pb::ProbeKind::Bandwidth as i32,
            measurement: Some(pb::result::Measurement::Bandwidth(
                pb::BandwidthMeasurement {
                    download_bps: u64::MAX,
                    ..Default::default()
                },
            )),
            ..ping(1, "core")
        });
        assert!(bw.unwrap_err().to_string().contains("download_bps"));
        let tr = result(pb::Result {
            kind: pb::ProbeKind::Traceroute as i32,
            measurement: Some(pb::result::Measurement::Traceroute(
                pb::TracerouteMeasurement {
                    hops: vec![pb::TracerouteHop {
                        ttl: 1,
                        address: "10.0.0.1".into(),
                        rtt_us: u64::MAX,
                    }],
                    reached: true,
                },
            )),
            ..ping(1, "core")
        });
        assert!(tr.unwrap_err().to_string().contains("hops.rtt_us"));
    }
}
