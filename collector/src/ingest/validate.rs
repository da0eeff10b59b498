//! The collector's one boundary with the wire: `pantau.v1` messages become
//! domain types here, or are refused with a reason that becomes an
//! INVALID_ARGUMENT status.

use std::collections::HashMap;

use pantau_core::valid_id;
use pantau_proto::v1 as pb;
use serde_json::json;

use crate::model::{Group, HelloInfo, Outcome, ProbeKind, ResultRow, RowKind, TargetDecl};

/// Most targets one agent may declare.
pub const MAX_TARGETS: usize = 500;
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
            ..Measured::data(json!({"connect_us": t.connect_us}))
        },
        (RowKind::Probe(ProbeKind::Http), Some(M::Http(h))) => {
            let not_after = h
                .tls_not_after
                .as_ref()
                .and_then(pantau_proto::millis_from_timestamp);
            Measured {
                value_ms: (h.status > 0).then(|| ms(h.total_us)),
                ..Measured::data(
                    json!({"status": h.status, "ttfb_us": h.ttfb_us, "total_us": h.total_us,
                           "tls_not_after_ms": not_after, "body_bytes": h.body_bytes}),
                )
            }
        }
        (RowKind::Probe(ProbeKind::Dns), Some(M::Dns(d))) => Measured {
            value_ms: ok.then(|| ms(d.resolve_us)),
            ..Measured::data(
                json!({"resolve_us": d.resolve_us, "answers": d.answers, "rcode": d.rcode}),
            )
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

fn ping(p: pb::PingMeasurement) -> Result<Measured, ResultError> {
    if p.samples_us.len() > MAX_SAMPLES
        || p.received > p.sent
        || p.samples_us.len() != p.received as usize
    {
        return Err(ResultError::PingCounts);
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
}
