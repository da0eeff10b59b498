//! Which samples one stored result becomes: the same families and labels as
//! the collector's `/metrics` gauges (see [`crate::metrics`]), stamped with
//! the time the agent observed the result, so dashboards work on either
//! source and late results land where they belong. Counters and the RTT
//! histogram are scrape-only: they count arrivals, not observations.

use serde_json::Value;

use crate::model::{Outcome, ProbeKind, RowKind};

/// A result as read back from the store for export.
pub use crate::store::export::QueuedResult as StoredResult;

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Metric name.
    pub name: &'static str,
    /// Labels other than `__name__` and the external labels.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
    /// Milliseconds since the Unix epoch (observation time).
    pub timestamp_ms: i64,
}

/// Most samples one result can become (a link result: success, capacity,
/// throughput and utilisation in both directions).
pub const MAX_POINTS_PER_RESULT: usize = 7;

/// The samples of one result.
pub fn points(r: &StoredResult) -> Vec<Point> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, labels: Vec<(&'static str, String)>, value: f64| {
        if value.is_finite() {
            out.push(Point {
                name,
                labels,
                value,
                timestamp_ms: r.observed_at_ms,
            });
        }
    };
    let agent_labels = || vec![("opd", r.opd.clone()), ("agent", r.agent.clone())];
    let num = |k: &str| r.data.get(k).and_then(Value::as_f64);
    if r.kind == RowKind::Heartbeat {
        for (name, key) in [
            ("pantau_agent_spool_records", "spool_records"),
            ("pantau_agent_dropped_results", "results_dropped"),
            ("pantau_agent_spool_bytes", "spool_bytes"),
            ("pantau_agent_spool_corrupt_bytes", "spool_corrupt_bytes"),
            ("pantau_agent_seq_skipped", "seq_skipped"),
        ] {
            push(name, agent_labels(), num(key).unwrap_or(0.0));
        }
        return out;
    }
    let target_labels = || {
        vec![
            ("opd", r.opd.clone()),
            ("agent", r.agent.clone()),
            ("target", r.target.clone()),
            ("group", r.group.clone()),
            ("kind", r.kind.as_str().to_string()),
        ]
    };
    let ok = r.outcome == Outcome::Ok;
    push(
        "pantau_probe_success",
        target_labels(),
        f64::from(u8::from(ok)),
    );
    if let Some(v) = r.value_ms {
        push("pantau_probe_duration_seconds", target_labels(), v / 1000.0);
    }
    if let (Some(s), Some(rc)) = (r.sent, r.received)
        && s > 0
    {
        push(
            "pantau_probe_loss_ratio",
            target_labels(),
            (s - rc.min(s)) as f64 / s as f64,
        );
    }
    if let Some(ms) = r.data.get("tls_not_after_ms").and_then(Value::as_i64) {
        push(
            "pantau_probe_tls_not_after_timestamp_seconds",
            target_labels(),
            ms as f64 / 1000.0,
        );
    }
    match r.kind {
        RowKind::Probe(ProbeKind::Link) => {
            let link = || {
                vec![
                    ("opd", r.opd.clone()),
                    ("agent", r.agent.clone()),
                    ("target", r.target.clone()),
                ]
            };
            let capacity = num("capacity_bps").filter(|c| *c > 0.0);
            if let Some(c) = capacity {
                push("pantau_link_capacity_bits_per_second", link(), c);
            }
            // No rate (first poll, gap, counter reset, failure) is unknown, not zero.
            if ok && num("interval_seconds").is_some_and(|s| s > 0.0) {
                for (direction, key) in pantau_core::probe::link::RATE_KEYS {
                    let Some(bps) = num(key) else { continue };
                    let mut l = link();
                    l.push(("direction", direction.into()));
                    push("pantau_link_throughput_bits_per_second", l.clone(), bps);
                    if let Some(c) = capacity {
                        push("pantau_link_utilisation_ratio", l, bps / c);
                    }
                }
            }
        }
        RowKind::Probe(ProbeKind::Bandwidth) => {
            if let Some(b) = num("month_bytes") {
                push("pantau_bandwidth_month_bytes", agent_labels(), b);
            }
            let ran = r.data.get("skipped").and_then(Value::as_str) == Some("");
            if ok && ran {
                for (direction, key) in pantau_core::probe::bandwidth::RATE_KEYS {
                    if let Some(bps) = num(key).filter(|b| *b > 0.0) {
                        push(
                            "pantau_bandwidth_throughput_bits_per_second",
                            vec![
                                ("opd", r.opd.clone()),
                                ("agent", r.agent.clone()),
                                ("target", r.target.clone()),
                                ("direction", direction.into()),
                            ],
                            bps,
                        );
                    }
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(kind: &str, outcome: &str, data: Value) -> StoredResult {
        StoredResult {
            opd: "dinkes".into(),
            agent: "a1".into(),
            target: "t1".into(),
            group: "intranet".into(),
            kind: RowKind::parse(kind).unwrap(),
            observed_at_ms: 1_700_000_000_000,
            outcome: Outcome::parse(outcome).unwrap(),
            value_ms: None,
            sent: None,
            received: None,
            data,
        }
    }

    fn names(p: &[Point]) -> Vec<(&str, f64)> {
        p.iter().map(|p| (p.name, p.value)).collect()
    }

    #[test]
    fn icmp_result_becomes_success_duration_and_loss_at_its_observed_time() {
        let mut r = row("icmp", "ok", json!({}));
        r.value_ms = Some(12.5);
        (r.sent, r.received) = (Some(4), Some(3));
        let p = points(&r);
        assert_eq!(
            names(&p),
            [
                ("pantau_probe_success", 1.0),
                ("pantau_probe_duration_seconds", 0.0125),
                ("pantau_probe_loss_ratio", 0.25)
            ]
        );
        assert!(p.iter().all(|p| p.timestamp_ms == 1_700_000_000_000));
        let l: Vec<&str> = p[0].labels.iter().map(|(k, _)| *k).collect();
        assert_eq!(l, ["opd", "agent", "target", "group", "kind"]);
        // Total loss: the probe failed, loss is 1, no duration.
        let mut r = row("icmp", "timeout", json!({}));
        (r.sent, r.received) = (Some(4), Some(0));
        assert_eq!(
            names(&points(&r)),
            [
                ("pantau_probe_success", 0.0),
                ("pantau_probe_loss_ratio", 1.0)
            ]
        );
    }

    #[test]
    fn link_rates_only_with_an_interval_and_heartbeats_give_spool_gauges() {
        let d = json!({"capacity_bps": 20_000_000.0, "interval_seconds": 10.0,
                       "in_bps": 18_000_000.0, "out_bps": 2_000_000.0});
        let p = points(&row("link", "ok", d));
        assert_eq!(
            names(&p),
            [
                ("pantau_probe_success", 1.0),
                ("pantau_link_capacity_bits_per_second", 20_000_000.0),
                ("pantau_link_throughput_bits_per_second", 18_000_000.0),
                ("pantau_link_utilisation_ratio", 0.9),
                ("pantau_link_throughput_bits_per_second", 2_000_000.0),
                ("pantau_link_utilisation_ratio", 0.1),
            ]
        );
        assert!(p.len() <= MAX_POINTS_PER_RESULT);
        let gap = json!({"capacity_bps": 20_000_000.0, "interval_seconds": 0.0, "in_bps": 0.0});
        assert_eq!(points(&row("link", "ok", gap)).len(), 2);
        let hb = points(&row("heartbeat", "ok", json!({"spool_records": 42})));
        assert_eq!(hb.len(), 5);
        assert_eq!(names(&hb)[0], ("pantau_agent_spool_records", 42.0));
    }

    #[test]
    fn every_exported_name_is_a_family_of_the_metrics_endpoint() {
        let mut rows = [
            row("heartbeat", "ok", json!({})),
            row(
                "link",
                "ok",
                json!({"capacity_bps": 1.0, "interval_seconds": 1.0, "in_bps": 1.0, "out_bps": 1.0}),
            ),
            row(
                "bandwidth",
                "ok",
                json!({"month_bytes": 1, "skipped": "", "download_bps": 1, "upload_bps": 1}),
            ),
            row("http", "ok", json!({"tls_not_after_ms": 1})),
            row("icmp", "ok", json!({})),
        ];
        rows[3].value_ms = Some(1.0);
        (rows[4].sent, rows[4].received) = (Some(1), Some(1));
        let seen: std::collections::BTreeSet<&str> =
            rows.iter().flat_map(points).map(|p| p.name).collect();
        assert_eq!(seen.len(), 14, "{seen:?}");
        // Families without a series are not gathered, so look for the name
        // where the /metrics families are registered.
        let families = include_str!("../metrics/mod.rs");
        // The receiver example drops these from the scrape so no series exists twice.
        let receiver = include_str!("../../../deploy/prometheus/receiver.yml");
        let dropped = receiver
            .lines()
            .find_map(|l| l.trim().strip_prefix("regex: "))
            .expect("receiver.yml has the drop regex")
            .trim_matches('"');
        let dropped: std::collections::BTreeSet<&str> = dropped.split('|').collect();
        assert_eq!(dropped, seen, "deploy/prometheus/receiver.yml drop list");
        for name in seen {
            assert!(
                families.contains(&format!("\"{name}\"")),
                "{name} is not a /metrics family"
            );
        }
    }
}
