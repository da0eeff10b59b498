//! Alerting that does not forget (issue 10, defect 6) and one availability
//! number (defect 7), against a real collector: series seeded from the
//! database after a restart, one stream per agent identity, refused tokens
//! in the log, and the report's availability as a gauge.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use pantau_collector::model::Outcome;
use pantau_proto::v1 as pb;
use tonic::Code;

/// The JSON log lines whose message contains `msg`.
fn log_lines(log: &Path, msg: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(msg))
        })
        .collect()
}

fn hello(agent: &str) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            config_version: 0,
            config_sha256: String::new(),
            agent_id: agent.into(),
            agent_version: "test".into(),
            spool: Some(pb::SpoolState {
                epoch: 5,
                next_seq: 1,
                ..Default::default()
            }),
            agent_time: Some(pantau_proto::timestamp_from_millis(now_ms())),
            targets: vec![pb::TargetInfo {
                id: "core".into(),
                group: "intranet".into(),
                kind: pb::ProbeKind::Tcp as i32,
                address: "127.0.0.1:1".into(),
                interval_ms: 1000,
                timeout_ms: 500,
                label: String::new(),
            }],
            ..Default::default()
        })),
    }
}

fn batch(seq: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch {
            results: vec![pb::Result {
                epoch: 5,
                seq,
                target_id: "core".into(),
                kind: pb::ProbeKind::Tcp as i32,
                observed_at: Some(pantau_proto::timestamp_from_millis(now_ms())),
                outcome: pb::Outcome::Ok as i32,
                detail: String::new(),
                measurement: Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
                    connect_us: 250,
                })),
            }],
        })),
    }
}

use common::grpc::Conn;

/// Open a stream as `dinkes-1` (its client certificate) with `token`.
async fn open(grpc: std::net::SocketAddr, token: &str) -> Result<Conn, tonic::Status> {
    common::grpc::open_as(grpc, "dinkes-1", Some(token), hello("dinkes-1")).await
}

async fn next(c: &mut Conn) -> Result<pb::collector_message::Msg, tonic::Status> {
    c.next_within(Duration::from_secs(10)).await
}

async fn welcomed(c: &mut Conn) {
    match next(c).await {
        Ok(pb::collector_message::Msg::Welcome(_)) => {}
        other => panic!("expected Welcome, got {other:?}"),
    }
}

async fn acked(c: &mut Conn, seq: u64) {
    c.tx.send(batch(seq)).await.unwrap();
    match next(c).await {
        Ok(pb::collector_message::Msg::Ack(a)) => assert_eq!(a.up_to_seq, seq),
        other => panic!("expected Ack, got {other:?}"),
    }
}

fn connected(c: &Collector) -> Option<f64> {
    metric(
        &c.metrics(),
        "pantau_agent_connected",
        &[("agent", "dinkes-1")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_stream_wins_and_refused_tokens_are_logged_with_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("collector.log");
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    let c = tokio::task::block_in_place(|| Collector::start_logged(&data, &log, true));
    let block = |f: &dyn Fn() -> Option<f64>| tokio::task::block_in_place(f);

    let mut older = open(c.grpc, &token).await.unwrap();
    welcomed(&mut older).await;
    acked(&mut older, 1).await;
    assert_eq!(block(&|| connected(&c)), Some(1.0));

    // The same identity again (a cloned token, a second process).
    let mut newer = open(c.grpc, &token).await.unwrap();
    welcomed(&mut newer).await;
    let end = loop {
        match next(&mut older).await {
            Ok(pb::collector_message::Msg::Ack(_)) => continue,
            Ok(other) => panic!("expected the older stream to close, got {other:?}"),
            Err(s) => break s,
        }
    };
    assert_eq!(end.code(), Code::Aborted, "{end:?}");
    assert!(
        end.message()
            .starts_with("replaced by a newer connection from 127.0.0.1:"),
        "{end:?}"
    );
    // The older stream's end does not mark the live agent disconnected.
    tokio::task::block_in_place(|| {
        wait_for("the older stream's end", Duration::from_secs(10), || {
            log_lines(&log, "agent disconnected").first().cloned()
        })
    });
    assert_eq!(block(&|| connected(&c)), Some(1.0));
    acked(&mut newer, 2).await;
    assert_eq!(block(&|| connected(&c)), Some(1.0));

    // Both peers are in the log.
    let replaced = log_lines(&log, "the newer wins");
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(replaced[0]["level"], "WARN");
    let newer_peer = replaced[0]["fields"]["newer_peer"].as_str().unwrap();
    let closed = log_lines(&log, "closing agent stream");
    let older_peer = closed
        .first()
        .and_then(|l| l["fields"]["peer"].as_str())
        .unwrap_or_else(|| panic!("{}", std::fs::read_to_string(&log).unwrap()));
    assert!(older_peer.starts_with("127.0.0.1:"), "{closed:?}");
    assert!(newer_peer.starts_with("127.0.0.1:"), "{replaced:?}");
    assert_ne!(older_peer, newer_peer);
    assert!(end.message().contains(newer_peer), "{end:?}");

    // The last stream ends: disconnected.
    drop(newer);
    tokio::task::block_in_place(|| {
        wait_for("connected 0", Duration::from_secs(10), || {
            (connected(&c) == Some(0.0)).then_some(())
        })
    });

    // A refused token: WARN with the peer, never the token; counted.
    let wrong = format!("{}x", &token[..token.len() - 1]);
    let s = open(c.grpc, &wrong).await.err().expect("refused");
    assert_eq!(s.code(), Code::Unauthenticated);
    let refused = tokio::task::block_in_place(|| {
        wait_for("refusal logged", Duration::from_secs(10), || {
            log_lines(&log, "agent authentication refused")
                .first()
                .cloned()
        })
    });
    assert_eq!(refused["level"], "WARN");
    assert_eq!(refused["fields"]["reason"], "unknown", "{refused}");
    assert!(
        refused["fields"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{refused}"
    );
    // The same on the bandwidth endpoint (HTTP, same tokens); the right
    // token still gets its bytes.
    let download = |t: &str| {
        tokio::task::block_in_place(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(c.http).unwrap();
            write!(
                s,
                "GET /api/v1/bandwidth/download?bytes=1 HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {t}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            r.split_whitespace().nth(1).unwrap_or_default().to_string()
        })
    };
    assert_eq!(download(&token), "200");
    assert_eq!(download(&wrong), "401");
    let refused_http = tokio::task::block_in_place(|| {
        wait_for("HTTP refusal logged", Duration::from_secs(10), || {
            log_lines(&log, "on the bandwidth endpoint")
                .first()
                .cloned()
        })
    });
    assert_eq!(refused_http["level"], "WARN");
    assert!(
        refused_http["fields"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{refused_http}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&wrong) && !text.contains(&token[7..]));
    let m = tokio::task::block_in_place(|| c.metrics());
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "unauthenticated")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "replaced")]
        ),
        Some(1.0)
    );
}

/// A promtool unit test of PantauAgentSilent on `series` exactly as the
/// collector exported it (`name{labels} value`), at its own Unix times:
/// samples at 0, T/2 and T where T is 10 minutes after the last-seen value.
fn promtool_silent_fires(dir: &Path, series_line: &str, opd: &str, agent: &str) -> String {
    let (series, value) = series_line.rsplit_once(' ').unwrap();
    let seen_ms = (value.parse::<f64>().unwrap() * 1000.0).round() as i64;
    let t_ms = (seen_ms + 600_000 + 1) / 2 * 2;
    let half = t_ms / 2;
    let test = format!(
        r#"rule_files:
  - {rules}
evaluation_interval: {half}ms
tests:
  - interval: {half}ms
    input_series:
      - series: '{series}'
        values: '{value} {value} {value}'
    alert_rule_test:
      - eval_time: {half}ms
        alertname: PantauAgentSilent
        exp_alerts: []
      - eval_time: {t_ms}ms
        alertname: PantauAgentSilent
        exp_alerts:
          - exp_labels: {{severity: warning, opd: {opd}, agent: {agent}}}
            exp_annotations:
              summary: "Agen {agent} (OPD {opd}) tidak melapor / agent {agent} (OPD {opd}) is silent"
              description: "Kolektor tidak menerima data dari agen {agent} selama 10m 0s. Data OPD ini TIDAK DIKETAHUI (bukan gangguan): periksa listrik, mesin agen (systemctl status pantau-agent) dan jalur ke kolektor. / The collector has stored nothing from agent {agent} for 10m 0s. This OPD's data is UNKNOWN (not down): check power, the agent host (systemctl status pantau-agent) and its path to the collector."
"#,
        rules = repo("deploy/prometheus/rules/alerts.yml").display(),
    );
    let path: PathBuf = dir.join("silent_test.yml");
    std::fs::write(&path, test).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_silent_across_a_restart_keeps_its_series_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    tokio::task::block_in_place(|| {
        collector_cmd(&data, &["opd", "add", "dishub", "--name", "Dishub"]);
    });
    let mut c = tokio::task::block_in_place(|| Collector::start(&data));
    let mut s = open(c.grpc, &token).await.unwrap();
    welcomed(&mut s).await;
    acked(&mut s, 1).await;
    let before = tokio::task::block_in_place(|| c.metrics());
    let seen = metric(
        &before,
        "pantau_agent_last_seen_timestamp_seconds",
        &[("agent", "dinkes-1")],
    )
    .expect("last seen before the restart");
    let offset = metric(
        &before,
        "pantau_agent_clock_offset_seconds",
        &[("agent", "dinkes-1")],
    )
    .expect("clock offset");
    // The agent dies while the collector restarts and never comes back.
    drop(s);
    tokio::task::block_in_place(|| c.proc.terminate());
    let c = tokio::task::block_in_place(|| Collector::start(&data));
    let after = tokio::task::block_in_place(|| c.metrics());
    let line = |name: &str| {
        after
            .lines()
            .find(|l| l.starts_with(name) && l.contains(r#"agent="dinkes-1""#))
            .unwrap_or_else(|| panic!("no {name} for dinkes-1 after the restart:\n{after}"))
            .to_string()
    };
    let seen_line = line("pantau_agent_last_seen_timestamp_seconds{");
    assert_eq!(
        metric(
            &after,
            "pantau_agent_last_seen_timestamp_seconds",
            &[("agent", "dinkes-1"), ("opd", "dinkes")]
        ),
        Some(seen)
    );
    assert!(line("pantau_agent_connected{").ends_with(" 0"));
    assert_eq!(
        metric(
            &after,
            "pantau_agent_clock_offset_seconds",
            &[("agent", "dinkes-1")]
        ),
        Some(offset)
    );
    // Known label values exist at 0 before anything happened.
    for (name, labels) in [
        ("pantau_store_errors_total", vec![("op", "batch")]),
        ("pantau_store_errors_total", vec![("op", "hello")]),
        (
            "pantau_ingest_rejected_total",
            vec![("reason", "unauthenticated")],
        ),
        ("pantau_ingest_results_total", vec![("opd", "dishub")]),
        (
            "pantau_ingest_clock_flagged_results_total",
            vec![("opd", "dishub"), ("flag", "past")],
        ),
    ] {
        assert_eq!(
            metric(&after, name, &labels),
            Some(0.0),
            "{name} {labels:?}"
        );
    }
    // PantauAgentSilent fires on exactly this series, 10 minutes later.
    let out = tokio::task::block_in_place(|| {
        promtool_silent_fires(dir.path(), &seen_line, "dinkes", "dinkes-1")
    });
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn availability_gauge_equals_the_reports_availability() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    enrol(&data, "dinkes", "dinkes-1");
    declare(
        &data,
        "dinkes",
        "dinkes-1",
        vec![
            decl("core", "intranet", "tcp", 60_000),
            decl("web", "internet", "tcp", 60_000),
        ],
    );
    // The last 90 minutes, one result a minute per target: intranet down for
    // the 20 minutes of 60..40 minutes ago, internet always up.
    let now = now_ms();
    let start = (now - 90 * 60_000).div_euclid(60_000) * 60_000;
    let mut rows = Vec::new();
    for i in 0..88i64 {
        let at = start + i * 60_000 + 5_000;
        for (target, group) in [("core", "intranet"), ("web", "internet")] {
            let down = group == "intranet" && (30..50).contains(&i);
            rows.push(pantau_collector::model::ResultRow {
                epoch: 1,
                seq: rows.len() as u64 + 1,
                target_id: target.into(),
                group: group.into(),
                kind: pantau_collector::model::ProbeKind::Tcp.into(),
                observed_at_ms: at,
                outcome: if down { Outcome::Refused } else { Outcome::Ok },
                detail: String::new(),
                value_ms: (!down).then_some(1.0),
                sent: None,
                received: None,
                data: serde_json::json!({}),
                late: false,
                clock_flag: None,
                agent_time_ms: at,
                clock_correction_ms: None,
            });
        }
    }
    store_rows(&data, "dinkes", "dinkes-1", &rows, now);
    let c = Collector::start(&data);
    // The background task refreshes the rollups every 15 s, then publishes.
    let text = wait_for("availability gauges", Duration::from_secs(60), || {
        let t = c.metrics();
        t.contains("pantau_availability_ratio{").then_some(t)
    });
    // The report of the local days spanning the data (WITA = UTC+8).
    let from = local_date(start, 8);
    let to = local_date(now, 8);
    let out = dir.path().join("report");
    let (ok, stdout, err) = collector_run(
        &data,
        &[
            "report",
            "--opd",
            "dinkes",
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let path = stdout.lines().next().unwrap_or_default();
    let json = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let groups = report["opds"][0]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    for g in groups {
        let name = g["group"].as_str().unwrap();
        let pct = g["availability_pct"].as_f64().unwrap();
        for window in ["1d", "30d"] {
            let v = metric(
                &text,
                "pantau_availability_ratio",
                &[("opd", "dinkes"), ("group", name), ("window", window)],
            )
            .unwrap_or_else(|| panic!("no {name} {window}:\n{text}"));
            assert!(
                (v * 100.0 - pct).abs() < 1e-9,
                "{name} {window}: gauge {v}, report {pct} %"
            );
        }
    }
    // The data are not trivial: intranet lost 20 of 88 measured minutes.
    let intranet = metric(
        &text,
        "pantau_availability_ratio",
        &[("group", "intranet"), ("window", "1d")],
    )
    .unwrap();
    assert!((intranet - 68.0 / 88.0).abs() < 0.03, "{intranet}");
    // Open incidents per group, as the report counts them.
    let open_in_report = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["open"] == true && i["group"] == "intranet")
        .count();
    assert_eq!(
        metric(
            &text,
            "pantau_incidents_open",
            &[("opd", "dinkes"), ("group", "intranet")]
        ),
        Some(open_in_report as f64)
    );
    assert_eq!(
        metric(
            &text,
            "pantau_incidents_open",
            &[("opd", "dinkes"), ("group", "internet")]
        ),
        Some(0.0)
    );
}
