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

/// Validate a Hello.
pub fn hello(h: pb::Hello) -> Result<HelloInfo, String> {
    if h.targets.len() > MAX_TARGETS {
        return Err(format!(
            "{} targets declared; at most {MAX_TARGETS}",
            h.targets.len()
        ));
    }
    let spool = h.spool.ok_or("Hello.spool is missing")?;
    if spool.epoch == 0 {
        return Err("Hello.spool.epoch must not be 0".into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut targets = Vec::with_capacity(h.targets.len());
    for (i, t) in h.targets.into_iter().enumerate() {
        if !valid_id(&t.id) {
            return Err(format!("targets[{i}].id is not a valid id"));
        }
        if !seen.insert(t.id.clone()) {
            return Err(format!("targets[{i}].id `{}` is declared twice", t.id));
        }
        let Some(group) = Group::parse(&t.group) else {
            return Err(format!(
                "targets[{i}].group `{}` is unknown",
                short(&t.group)
            ));
        };
        let kind = row_kind(t.kind)
            .and_then(RowKind::probe)
            .ok_or(format!("targets[{i}].kind is invalid"))?;
        if t.address.len() > 512 || t.label.len() > 256 {
            return Err(format!("targets[{i}] address or label is too long"));
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
) -> Result<Vec<ResultRow>, String> {
    if b.results.is_empty() {
        return Err("empty batch".into());
    }
    let mut prev = after;
    let mut rows = Vec::with_capacity(b.results.len());
    for (i, r) in b.results.into_iter().enumerate() {
        if r.epoch != epoch {
            return Err(format!(
                "results[{i}].epoch {} differs from the stream's epoch {epoch}",
                r.epoch
            ));
        }
        if r.seq <= prev {
            return Err(format!(
                "results[{i}].seq {} is not above {prev}; sequences must increase",
                r.seq
            ));
        }
        if r.seq > i64::MAX as u64 {
            return Err(format!("results[{i}].seq is too large"));
        }
        prev = r.seq;
        rows.push(
            result(r)
                .map_err(|e| format!("results[{i}]: {e}"))
                .and_then(|row| attach_group(row, cat).map_err(|e| format!("results[{i}]: {e}")))?,
        );
    }
    Ok(rows)
}

fn attach_group(mut row: ResultRow, cat: &Catalogue) -> Result<ResultRow, String> {
    let RowKind::Probe(row_kind) = row.kind else {
        if !row.target_id.is_empty() {
            return Err("heartbeat must not name a target".into());
        }
        return Ok(row);
    };
    let (group, kind, _) = cat.get(&row.target_id).ok_or_else(|| {
        format!(
            "target `{}` was not declared in Hello",
            short(&row.target_id)
        )
    })?;
    if *kind != row_kind {
        return Err(format!(
            "target `{}` is {kind}, result says {}",
            row.target_id, row.kind
        ));
    }
    row.group = group.as_str().to_string();
    Ok(row)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Convert one result (without catalogue checks).
// Long on purpose: one arm per probe kind's measurements, read in one place
// so the wire-to-domain boundary is a single function to audit.
pub fn result(r: pb::Result) -> Result<ResultRow, String> {
    use pb::result::Measurement as M;
    let kind = row_kind(r.kind).ok_or("kind is missing or unknown")?;
    let outcome = outcome(r.outcome).ok_or("outcome is missing or unknown")?;
    let observed_at_ms = r
        .observed_at
        .as_ref()
        .and_then(pantau_proto::millis_from_timestamp)
        .ok_or("observed_at is missing or invalid")?;
    if r.detail.len() > MAX_DETAIL {
        return Err(format!("detail is longer than {MAX_DETAIL} bytes"));
    }
    let (mut value_ms, mut sent, mut received) = (None, None, None);
    let data = match (kind, r.measurement) {
        (RowKind::Probe(ProbeKind::Icmp), Some(M::Ping(p))) => {
            if p.samples_us.len() > MAX_SAMPLES
                || p.received > p.sent
                || p.samples_us.len() != p.received as usize
            {
                return Err("ping counts are inconsistent".into());
            }
            sent = Some(p.sent);
            received = Some(p.received);
            if p.received > 0 {
                value_ms = Some(ms(p.rtt_avg_us));
            }
            json!({"rtt_min_us": p.rtt_min_us, "rtt_avg_us": p.rtt_avg_us, "rtt_max_us": p.rtt_max_us,
                   "rtt_stddev_us": p.rtt_stddev_us, "samples_us": p.samples_us})
        }
        (RowKind::Probe(ProbeKind::Tcp), Some(M::Tcp(t))) => {
            if outcome == Outcome::Ok {
                value_ms = Some(ms(t.connect_us));
            }
            json!({"connect_us": t.connect_us})
        }
        (RowKind::Probe(ProbeKind::Http), Some(M::Http(h))) => {
            if h.status > 0 {
                value_ms = Some(ms(h.total_us));
            }
            let not_after = h
                .tls_not_after
                .as_ref()
                .and_then(pantau_proto::millis_from_timestamp);
            json!({"status": h.status, "ttfb_us": h.ttfb_us, "total_us": h.total_us,
                   "tls_not_after_ms": not_after, "body_bytes": h.body_bytes})
        }
        (RowKind::Probe(ProbeKind::Dns), Some(M::Dns(d))) => {
            if outcome == Outcome::Ok {
                value_ms = Some(ms(d.resolve_us));
            }
            json!({"resolve_us": d.resolve_us, "answers": d.answers, "rcode": d.rcode})
        }
        (RowKind::Heartbeat, Some(M::Heartbeat(h))) => json!({
            "uptime_seconds": h.uptime_seconds, "spool_records": h.spool_records, "spool_bytes": h.spool_bytes,
            "results_dropped": h.results_dropped, "clock_offset_ms": h.clock_offset_ms,
            "probes_in_flight": h.probes_in_flight, "spool_corrupt_bytes": h.spool_corrupt_bytes,
            "seq_skipped": h.seq_skipped}),
        (RowKind::Probe(ProbeKind::Bandwidth), Some(M::Bandwidth(b))) => {
            if b.streams > 64 || b.skipped.len() > 16 {
                return Err("bandwidth measurement is out of range".into());
            }
            json!({"download_bps": b.download_bps, "upload_bps": b.upload_bps,
                   "download_bytes": b.download_bytes, "upload_bytes": b.upload_bytes,
                   "download_window_us": b.download_window_us, "upload_window_us": b.upload_window_us,
                   "streams": b.streams, "skipped": b.skipped, "busy_bps": b.busy_bps,
                   "month_bytes": b.month_bytes})
        }
        (RowKind::Probe(ProbeKind::Link), Some(M::Link(l))) => {
            let finite = [l.interval_seconds, l.in_bps, l.out_bps]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0);
            if !finite
                || !matches!(l.source.as_str(), "snmp" | "local")
                || !matches!(l.no_rate.as_str(), "" | "first" | "reset" | "gap")
                || !matches!(l.counter_bits, 32 | 64)
                || l.if_name.len() > 64
            {
                return Err("link measurement is out of range".into());
            }
            json!({"source": l.source, "if_index": l.if_index, "if_name": l.if_name,
                   "in_octets": l.in_octets, "out_octets": l.out_octets, "counter_bits": l.counter_bits,
                   "sys_uptime_cs": l.sys_uptime_cs, "oper_status": l.oper_status,
                   "capacity_bps": l.capacity_bps, "contracted": l.contracted,
                   "interval_seconds": l.interval_seconds, "in_bps": l.in_bps, "out_bps": l.out_bps,
                   "no_rate": l.no_rate, "wraps": l.wraps})
        }
        (RowKind::Probe(ProbeKind::Traceroute), Some(M::Traceroute(t))) => {
            let valid = t.hops.len() <= MAX_HOPS
                && t.hops.iter().enumerate().all(|(i, h)| {
                    h.ttl as usize == i + 1
                        && (h.address.is_empty() || h.address.parse::<std::net::IpAddr>().is_ok())
                        && (h.rtt_us == 0 || !h.address.is_empty())
                });
            if !valid {
                return Err("traceroute hops are inconsistent".into());
            }
            if let Some(last) = t.hops.last().filter(|_| t.reached) {
                value_ms = Some(ms(last.rtt_us));
            }
            let hops: Vec<_> = t
                .hops
                .iter()
                .map(|h| json!({"ttl": h.ttl, "address": h.address, "rtt_us": h.rtt_us}))
                .collect();
            json!({"hops": hops, "reached": t.reached})
        }
        (RowKind::Heartbeat, None) => return Err("heartbeat without health".into()),
        (_, None) => json!({}),
        (k, Some(_)) => return Err(format!("measurement does not match kind {k}")),
    };
    if kind == RowKind::Probe(ProbeKind::Icmp) && outcome == Outcome::Ok && received == Some(0) {
        return Err("ok ping result with no replies".into());
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
        value_ms,
        sent,
        received,
        data,
        late: false,
        clock_flag: None,
        agent_time_ms: observed_at_ms,
        clock_correction_ms: None,
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
        assert!(e.contains("must increase"), "{e}");
        assert!(
            batch(b(vec![ping(1, "other")]), 9, 0, &c)
                .unwrap_err()
                .contains("not declared")
        );
        assert!(
            batch(b(vec![ping(1, "core")]), 8, 0, &c)
                .unwrap_err()
                .contains("epoch")
        );
        assert!(
            batch(b(vec![ping(3, "core")]), 9, 3, &c)
                .unwrap_err()
                .contains("not above 3")
        );
        let mut bad = ping(1, "core");
        bad.outcome = 99;
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
                .contains("outcome")
        );
        let mut bad = ping(1, "core");
        bad.measurement = Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
            connect_us: 1,
        }));
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
                .contains("does not match")
        );
        let mut bad = ping(1, "core");
        bad.observed_at = None;
        assert!(
            batch(b(vec![bad]), 9, 0, &c)
                .unwrap_err()
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
        assert!(hello(h.clone()).unwrap_err().contains("group"));
        h.targets[0].group = "app".into();
        h.spool = None;
        assert!(hello(h).unwrap_err().contains("spool"));
    }
}
