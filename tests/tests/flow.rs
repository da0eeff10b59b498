//! End to end: a real collector and a real agent on loopback. Results must
//! flow agent -> collector -> SQLite -> /metrics and the results API, and the
//! stored values must match what the local fixtures make true.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// One stored result row, as the test reads it back.
struct Row {
    target: String,
    outcome: String,
    value: Option<f64>,
    sent: Option<u32>,
    received: Option<u32>,
    data: String,
    opd: String,
}

#[test]
fn results_flow_from_agent_to_sqlite_metrics_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "diskominfo", "kominfo-1");
    let collector = Collector::start(&data);
    let ca = collector.ca().display().to_string();
    let client_cert = client_cert_toml(dir.path(), &collector.grpc.to_string(), "kominfo-1");
    let open = open_port();
    let closed = closed_port();
    let dns = dns_responder();
    let http = collector.http;

    let cfg = dir.path().join("agent.toml");
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            r#"
[agent]
id = "kominfo-1"
heartbeat_interval = "1s"

[collector]
url = "https://{grpc}"
ca = "{ca}"{client_cert}
token_file = "{token_file}"

[spool]
dir = "{spool}"

[defaults]
interval = "1s"
timeout = "900ms"

[[targets]]
id = "loopback"
group = "intranet"
kind = "icmp"
address = "127.0.0.1"

[[targets]]
id = "tcp-open"
group = "datacenter"
kind = "tcp"
address = "127.0.0.1:{open}"

[[targets]]
id = "tcp-closed"
group = "internet"
kind = "tcp"
address = "127.0.0.1:{closed}"

[[targets]]
id = "web-ok"
group = "app"
kind = "http"
address = "http://{http}/healthz"

[[targets]]
id = "web-404"
group = "app"
kind = "http"
address = "http://{http}/no-such-page"

[[targets]]
id = "dns-ok"
group = "intranet"
kind = "dns"
address = "pantau.test"
server = "{dns}"

[[targets]]
id = "dns-nx"
group = "intranet"
kind = "dns"
address = "missing.pantau.test"
server = "{dns}"
"#,
            grpc = collector.grpc,
            token_file = dir.path().join("token").display(),
            spool = dir.path().join("spool").display(),
        ),
    )
    .unwrap();
    let mut agent = start_agent(&cfg);

    // Wait until every target has at least three stored results.
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let targets = [
        "loopback",
        "tcp-open",
        "tcp-closed",
        "web-ok",
        "web-404",
        "dns-ok",
        "dns-nx",
    ];
    wait_for("three results per target", Duration::from_secs(40), || {
        let n: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM (SELECT target_id FROM result WHERE kind != 'heartbeat'
                 GROUP BY target_id HAVING COUNT(*) >= 3)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (n == targets.len() as i64).then_some(())
    });
    let status = agent.terminate();
    assert!(status.success(), "agent exit status {status:?}");

    // Stored rows: outcomes are what the fixtures make true.
    let mut st = db
        .prepare("SELECT target_id, outcome, value_ms, sent, received, data, opd_id FROM result WHERE kind != 'heartbeat'")
        .unwrap();
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok(Row {
                target: r.get(0)?,
                outcome: r.get(1)?,
                value: r.get(2)?,
                sent: r.get(3)?,
                received: r.get(4)?,
                data: r.get(5)?,
                opd: r.get(6)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for Row {
        target,
        outcome,
        value,
        sent,
        received,
        data,
        opd,
    } in &rows
    {
        assert_eq!(opd, "diskominfo", "OPD comes from the token");
        outcomes
            .entry(target.clone())
            .or_default()
            .push(outcome.clone());
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        match target.as_str() {
            "loopback" => {
                assert_eq!(
                    (*sent, *received),
                    (Some(5), Some(5)),
                    "loopback loses no echo"
                );
                let v = value.expect("rtt");
                assert!(v > 0.0 && v < 50.0, "loopback RTT {v} ms");
                assert_eq!(data["samples_us"].as_array().unwrap().len(), 5);
            }
            "web-ok" => assert_eq!(data["status"], 200),
            "web-404" => assert_eq!(data["status"], 404),
            "dns-ok" => assert_eq!(data["answers"], 1),
            "dns-nx" => assert_eq!(data["rcode"], 3),
            "tcp-open" => assert!(data["connect_us"].as_u64().unwrap() > 0),
            _ => {}
        }
    }
    let all = |t: &str, o: &str| outcomes[t].iter().all(|x| x == o);
    assert!(all("loopback", "ok"), "{outcomes:?}");
    assert!(all("tcp-open", "ok"), "{outcomes:?}");
    assert!(all("tcp-closed", "refused"), "{outcomes:?}");
    assert!(all("web-ok", "ok"), "{outcomes:?}");
    assert!(all("web-404", "http_status"), "{outcomes:?}");
    assert!(all("dns-ok", "ok"), "{outcomes:?}");
    assert!(all("dns-nx", "dns_error"), "{outcomes:?}");

    // Sequences: one epoch, 1..=max with no gap (every result, heartbeats included).
    let (epochs, min, max, count): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT COUNT(DISTINCT epoch), MIN(seq), MAX(seq), COUNT(*) FROM result",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((epochs, min), (1, 1));
    assert_eq!(count, max, "stored sequences have a gap");
    let heartbeats: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM result WHERE kind = 'heartbeat'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(heartbeats >= 1);

    // /metrics agrees with the database.
    let m = collector.metrics();
    assert_eq!(
        metric(&m, "pantau_ingest_results_total", &[("opd", "diskominfo")]),
        Some(count as f64),
        "{m}"
    );
    for (t, want) in [
        ("loopback", 1.0),
        ("tcp-open", 1.0),
        ("tcp-closed", 0.0),
        ("web-404", 0.0),
        ("dns-nx", 0.0),
    ] {
        assert_eq!(
            metric(
                &m,
                "pantau_probe_success",
                &[("opd", "diskominfo"), ("agent", "kominfo-1"), ("target", t)]
            ),
            Some(want),
            "success of {t}"
        );
    }
    assert_eq!(
        metric(&m, "pantau_probe_loss_ratio", &[("target", "loopback")]),
        Some(0.0)
    );
    let rtt = metric(
        &m,
        "pantau_probe_duration_seconds",
        &[("target", "loopback"), ("kind", "icmp")],
    )
    .unwrap();
    let last_rtt: f64 = db
        .query_row(
            "SELECT value_ms FROM result WHERE target_id = 'loopback' ORDER BY observed_at_ms DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        (rtt - last_rtt / 1000.0).abs() < 1e-9,
        "metric {rtt} vs stored {last_rtt} ms"
    );
    let last_seen = metric(
        &m,
        "pantau_probe_last_seen_timestamp_seconds",
        &[("target", "tcp-closed")],
    )
    .unwrap();
    let stored_last: i64 = db
        .query_row(
            "SELECT MAX(observed_at_ms) FROM result WHERE target_id = 'tcp-closed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((last_seen - stored_last as f64 / 1000.0).abs() < 1e-6);
    assert_eq!(
        metric(&m, "pantau_agent_connected", &[("agent", "kominfo-1")]),
        Some(0.0),
        "agent stopped"
    );

    // The results API returns exactly the stored rows of the window.
    let (code, body) = collector
        .get("/api/v1/results?agent=kominfo-1&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = v["results"].as_array().unwrap();
    assert_eq!(items.len() as i64, count);
    assert_eq!(v["truncated"], false);
    let first = &items[0];
    for key in [
        "agent",
        "opd",
        "target",
        "kind",
        "epoch",
        "seq",
        "observed_at",
        "received_at",
        "outcome",
    ] {
        assert!(!first[key].is_null(), "missing {key} in {first}");
    }
    let closed_api = items.iter().filter(|r| r["target"] == "tcp-closed").count();
    assert_eq!(closed_api, outcomes["tcp-closed"].len());
    assert!(first["observed_at"].as_str().unwrap().ends_with('Z'));

    // Bad API input gets a clear 400.
    let (code, body) =
        collector.get("/api/v1/results?agent=kominfo-1&from=yesterday&to=2100-01-01T00:00:00Z");
    assert_eq!(code, 400);
    assert!(body.contains("`from` is not an RFC 3339 time"), "{body}");
    let (code, _) = collector
        .get("/api/v1/results?agent=ghost&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    assert_eq!(code, 404);

    // Targets API and the overview page show the latest state.
    let (_, body) = collector.get("/api/v1/targets");
    let ts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ts.as_array().unwrap().len(), targets.len());
    let (code, page) = collector.get("/");
    assert_eq!(code, 200);
    assert!(
        page.contains("GANGGUAN (refused)") && page.contains("NORMAL") && page.contains("WITA"),
        "{page}"
    );
    let (code, body) = collector.get("/healthz");
    assert_eq!((code, body.contains("\"ok\"")), (200, true));
}
