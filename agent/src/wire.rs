//! The agent's one boundary with the wire types of `pantau.v1`.

use pantau_proto::v1 as pb;

use crate::model::{Measurement, Outcome, ProbeKind, Record};
use crate::probe::{self, ts};
use crate::spool::SpoolState;
use pantau_core::probe::Target;

/// Milliseconds since the Unix epoch (kept here for existing callers; it
/// lives in [`crate::model`] so the spool needs nothing from this module).
pub use crate::model::unix_ms;

/// The wire value of a probe kind (the enum lives in `pantau_core`, so a
/// function rather than a `From` impl).
pub fn wire_kind(k: ProbeKind) -> pb::ProbeKind {
    match k {
        ProbeKind::Icmp => pb::ProbeKind::Icmp,
        ProbeKind::Tcp => pb::ProbeKind::Tcp,
        ProbeKind::Http => pb::ProbeKind::Http,
        ProbeKind::Dns => pb::ProbeKind::Dns,
        ProbeKind::Bandwidth => pb::ProbeKind::Bandwidth,
        ProbeKind::Link => pb::ProbeKind::Link,
        ProbeKind::Traceroute => pb::ProbeKind::Traceroute,
    }
}

/// The wire value of an outcome.
pub fn wire_outcome(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Ok => pb::Outcome::Ok,
        Outcome::Timeout => pb::Outcome::Timeout,
        Outcome::Refused => pb::Outcome::Refused,
        Outcome::Unreachable => pb::Outcome::Unreachable,
        Outcome::DnsError => pb::Outcome::DnsError,
        Outcome::TlsError => pb::Outcome::TlsError,
        Outcome::HttpStatus => pb::Outcome::HttpStatus,
        Outcome::HttpMatch => pb::Outcome::HttpMatch,
        Outcome::Other => pb::Outcome::Other,
    }
}

impl From<&Record> for pb::Result {
    fn from(r: &Record) -> Self {
        use pb::result::Measurement as M;
        let kind = r.kind.map_or(pb::ProbeKind::Heartbeat, wire_kind);
        let measurement = match &r.obs.measurement {
            Measurement::Ping(p) => Some(M::Ping(probe::icmp::to_wire(p))),
            Measurement::Tcp { connect } => Some(M::Tcp(probe::tcp::to_wire(*connect))),
            Measurement::Http { .. } => probe::http::to_wire(&r.obs.measurement).map(M::Http),
            Measurement::Dns { .. } => probe::dns::to_wire(&r.obs.measurement).map(M::Dns),
            Measurement::Heartbeat(h) => Some(M::Heartbeat(pb::Heartbeat {
                uptime_seconds: h.uptime.as_secs(),
                spool_records: h.spool_records,
                spool_bytes: h.spool_bytes,
                results_dropped: h.dropped,
                clock_offset_ms: h.clock_offset_ms,
                probes_in_flight: h.probes_in_flight,
                spool_corrupt_bytes: h.corrupt_bytes,
                seq_skipped: h.seq_skipped,
            })),
            Measurement::Bandwidth(b) => Some(M::Bandwidth(probe::bandwidth::to_wire(b))),
            Measurement::Link(l) => Some(M::Link(probe::link::to_wire(l))),
            Measurement::Path(p) => Some(M::Traceroute(probe::traceroute::to_wire(p))),
            Measurement::None => None,
        };
        pb::Result {
            epoch: r.epoch,
            seq: r.seq,
            target_id: r.obs.target_id.clone(),
            kind: kind.into(),
            observed_at: Some(ts(r.obs.observed_at)),
            outcome: wire_outcome(r.obs.outcome).into(),
            detail: r.obs.detail.clone(),
            measurement,
        }
    }
}

/// The wire description of a configured target (the type lives in
/// `pantau_core`, so a function rather than a `From` impl).
pub fn target_info(t: &Target) -> pb::TargetInfo {
    pb::TargetInfo {
        id: t.id.clone(),
        group: t.group.as_str().to_string(),
        kind: wire_kind(t.kind()).into(),
        address: t.address.clone(),
        interval_ms: t.interval.as_millis() as u64,
        timeout_ms: t.timeout.as_millis() as u64,
        label: t.label.clone(),
    }
}

impl From<SpoolState> for pb::SpoolState {
    fn from(s: SpoolState) -> Self {
        pb::SpoolState {
            epoch: s.epoch,
            first_seq: s.first_seq,
            next_seq: s.next_seq,
            records: s.records,
            bytes: s.bytes,
            dropped: s.dropped,
            corrupt_bytes: s.corrupt_bytes,
            seq_skipped: s.seq_skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Observation, PingStats};
    use std::time::{Duration, SystemTime};

    #[test]
    fn ping_record_converts_to_wire() {
        let r = Record {
            epoch: 7,
            seq: 42,
            kind: Some(ProbeKind::Icmp),
            obs: Observation {
                target_id: "core".into(),
                observed_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_320_000_123),
                outcome: Outcome::Ok,
                detail: String::new(),
                measurement: Measurement::Ping(PingStats {
                    sent: 5,
                    received: 4,
                    samples: vec![Duration::from_micros(1500); 4],
                    min: Duration::from_micros(1500),
                    avg: Duration::from_micros(1500),
                    max: Duration::from_micros(1500),
                    stddev: Duration::ZERO,
                }),
            },
        };
        let w = pb::Result::from(&r);
        assert_eq!(
            (w.epoch, w.seq, w.kind, w.outcome),
            (7, 42, pb::ProbeKind::Icmp as i32, pb::Outcome::Ok as i32)
        );
        let ts = w.observed_at.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_764_320_000, 123_000_000));
        match w.measurement {
            Some(pb::result::Measurement::Ping(p)) => {
                assert_eq!((p.sent, p.received, p.rtt_avg_us), (5, 4, 1500));
                assert_eq!(p.samples_us, vec![1500; 4]);
            }
            other => panic!("wrong measurement {other:?}"),
        }
    }

    #[test]
    fn heartbeat_has_its_own_kind() {
        let r = Record {
            epoch: 1,
            seq: 1,
            kind: None,
            obs: Observation {
                target_id: String::new(),
                observed_at: SystemTime::UNIX_EPOCH,
                outcome: Outcome::Ok,
                detail: String::new(),
                measurement: Measurement::Heartbeat(crate::model::Health {
                    spool_records: 3,
                    ..Default::default()
                }),
            },
        };
        let w = pb::Result::from(&r);
        assert_eq!(w.kind, pb::ProbeKind::Heartbeat as i32);
        assert!(
            matches!(w.measurement, Some(pb::result::Measurement::Heartbeat(h)) if h.spool_records == 3)
        );
    }
}
