//! Remote write against a real Prometheus (Debian package, remote-write
//! receiver on, out-of-order window 30 days): results a gRPC client sends
//! with observation times in the past land in Prometheus at exactly those
//! times with exactly their values; results that arrive while Prometheus is
//! down stay queued in the collector's store, survive a collector restart
//! and are delivered when Prometheus is back, older than what it already
//! holds (out of order), and an untrusted (future) timestamp is not sent.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_client::IngestClient;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const MINUTE: i64 = 60_000;

/// The Debian package's binary. Missing is a failure, not a skip.
fn prometheus_bin() -> PathBuf {
    let p = PathBuf::from("/usr/bin/prometheus");
    assert!(
        p.is_file(),
        "/usr/bin/prometheus not found: install the Debian package `prometheus` (bash tests/run.sh does)"
    );
    p
}

/// Start Prometheus on `addr`, storing in `dir`, with the shipped receiver
/// example (deploy/prometheus/receiver.yml and its rules) scraping
/// `collector` every second.
fn start_prometheus(dir: &Path, addr: SocketAddr, collector: &str, log_name: &str) -> Proc {
    let mut text = std::fs::read_to_string(repo("deploy/prometheus/receiver.yml")).unwrap();
    for (from, to) in [
        ("scrape_interval: 30s", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("\"127.0.0.1:7471\"", &format!("\"{collector}\"")),
    ] {
        assert!(
            text.contains(from),
            "receiver.yml no longer contains {from}"
        );
        text = text.replace(from, to);
    }
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, text).unwrap();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for f in std::fs::read_dir(repo("deploy/prometheus/rules")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, rules.join(f.file_name().unwrap())).unwrap();
    }
    let log = dir.join(log_name);
    let child = Command::new(prometheus_bin())
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start prometheus");
    let p = Proc {
        child,
        name: "prometheus",
    };
    wait_for("Prometheus ready", Duration::from_secs(60), || {
        std::net::TcpStream::connect(addr).ok()?;
        (http_get(addr, "/-/ready").0 == 200).then_some(())
    });
    p
}

/// Raw samples of the series matching `selector` in (at - range, at]:
/// labels -> [(timestamp ms, value)].
fn raw_samples(
    prom: SocketAddr,
    selector: &str,
    range: &str,
    at_ms: i64,
) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(&format!("{selector}[{range}]")),
        at_ms / 1000,
        at_ms % 1000
    );
    let (code, body) = http_get(prom, &path);
    assert_eq!(code, 200, "GET {path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix", "{body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let values = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (ts, p[1].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (labels, values)
        })
        .collect()
}

/// One minute's results for both targets: `gw` (ICMP, loss and RTT vary
/// with `i`) and `web` (TCP, refused every fourth minute).
fn minute(epoch: u64, seq: u64, i: i64, at_ms: i64) -> [pb::Result; 2] {
    let received = 4 - (i % 3) as u32;
    let avg = 1000 + 137 * i as u64;
    let ping = pb::Result {
        epoch,
        seq,
        target_id: "gw".into(),
        kind: pb::ProbeKind::Icmp as i32,
        observed_at: Some(pantau_proto::timestamp_from_millis(at_ms)),
        outcome: pb::Outcome::Ok as i32,
        detail: String::new(),
        measurement: Some(pb::result::Measurement::Ping(pb::PingMeasurement {
            sent: 4,
            received,
            rtt_min_us: avg,
            rtt_avg_us: avg,
            rtt_max_us: avg,
            rtt_stddev_us: 0,
            samples_us: vec![avg; received as usize],
        })),
    };
    let up = i % 4 != 0;
    let tcp = pb::Result {
        epoch,
        seq: seq + 1,
        target_id: "web".into(),
        kind: pb::ProbeKind::Tcp as i32,
        observed_at: Some(pantau_proto::timestamp_from_millis(at_ms + 7)),
        outcome: if up {
            pb::Outcome::Ok as i32
        } else {
            pb::Outcome::Refused as i32
        },
        detail: if up { String::new() } else { "refused".into() },
        measurement: Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
            connect_us: if up { 300 + 11 * i as u64 } else { 0 },
        })),
    };
    [ping, tcp]
}

/// What Prometheus must hold for minutes `is` starting at `base_ms`:
/// series name and target -> samples.
fn expected(
    base_ms: i64,
    is: std::ops::Range<i64>,
) -> BTreeMap<(&'static str, &'static str), Vec<(i64, f64)>> {
    let mut m: BTreeMap<(&str, &str), Vec<(i64, f64)>> = BTreeMap::new();
    for i in is {
        let at = base_ms + i * MINUTE;
        let received = 4 - (i % 3);
        let avg = 1000 + 137 * i as u64;
        let mut add = |k, ts, v| m.entry(k).or_default().push((ts, v));
        add(("pantau_probe_success", "gw"), at, 1.0);
        // The collector stores ms; /metrics and remote write show seconds.
        add(
            ("pantau_probe_duration_seconds", "gw"),
            at,
            avg as f64 / 1000.0 / 1000.0,
        );
        add(
            ("pantau_probe_loss_ratio", "gw"),
            at,
            (4 - received) as f64 / 4.0,
        );
        let up = i % 4 != 0;
        add(
            ("pantau_probe_success", "web"),
            at + 7,
            f64::from(u8::from(up)),
        );
        if up {
            add(
                ("pantau_probe_duration_seconds", "web"),
                at + 7,
                (300 + 11 * i as u64) as f64 / 1000.0 / 1000.0,
            );
        }
    }
    for v in m.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    m
}

fn count(m: &BTreeMap<(&'static str, &'static str), Vec<(i64, f64)>>) -> usize {
    m.values().map(Vec::len).sum()
}

struct Stream {
    tx: mpsc::Sender<pb::AgentMessage>,
    rx: tonic::Streaming<pb::CollectorMessage>,
}

async fn connect(grpc: SocketAddr, token: &str, epoch: u64, now_ms: i64) -> Stream {
    // Mutual TLS: the client shows dinkes-1's certificate.
    let channel = common::grpc::channel_as(&grpc.to_string(), "dinkes-1").await;
    let mut client = IngestClient::new(channel);
    let (tx, rx) = mpsc::channel(16);
    let target = |id: &str, group: &str, kind: pb::ProbeKind| pb::TargetInfo {
        id: id.into(),
        group: group.into(),
        kind: kind as i32,
        address: "127.0.0.1:1".into(),
        interval_ms: 60_000,
        timeout_ms: 1000,
        label: String::new(),
    };
    tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            config_version: 0,
            config_sha256: String::new(),
            agent_id: "dinkes-1".into(),
            agent_version: "test".into(),
            spool: Some(pb::SpoolState {
                epoch,
                next_seq: 1,
                ..Default::default()
            }),
            agent_time: Some(pantau_proto::timestamp_from_millis(now_ms)),
            targets: vec![
                target("gw", "intranet", pb::ProbeKind::Icmp),
                target("web", "app", pb::ProbeKind::Tcp),
            ],
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut rx = client.stream(req).await.unwrap().into_inner();
    match rx.message().await.unwrap().and_then(|m| m.msg) {
        Some(pb::collector_message::Msg::Welcome(_)) => {}
        other => panic!("expected Welcome, got {other:?}"),
    }
    Stream { tx, rx }
}

/// Send one batch and wait for its acknowledgement (committed to SQLite).
async fn deliver(s: &mut Stream, results: Vec<pb::Result>) {
    let last = results.iter().map(|r| r.seq).max().unwrap();
    s.tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch { results })),
    })
    .await
    .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(30), s.rx.message())
        .await
        .expect("ack in time")
        .unwrap();
    match m.and_then(|m| m.msg) {
        Some(pb::collector_message::Msg::Ack(a)) => assert_eq!(a.up_to_seq, last),
        other => panic!("expected Ack, got {other:?}"),
    }
}

fn queued(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM remote_write_queue", [], |r| r.get(0))
        .unwrap()
}

/// Compare Prometheus' raw samples with `want`, including every label.
fn assert_holds(
    prom: SocketAddr,
    at_ms: i64,
    want: &BTreeMap<(&'static str, &'static str), Vec<(i64, f64)>>,
) {
    for name in [
        "pantau_probe_success",
        "pantau_probe_duration_seconds",
        "pantau_probe_loss_ratio",
    ] {
        let got = raw_samples(prom, name, "6h", at_ms);
        let mut got_by_target = BTreeMap::new();
        for (labels, values) in got {
            let target = labels["target"].clone();
            let (group, kind) = if target == "gw" {
                ("intranet", "icmp")
            } else {
                ("app", "tcp")
            };
            let want_labels: BTreeMap<String, String> = [
                ("__name__", name),
                ("opd", "dinkes"),
                ("agent", "dinkes-1"),
                ("target", target.as_str()),
                ("group", group),
                ("kind", kind),
                ("source", "pantau-rw"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            assert_eq!(labels, want_labels);
            got_by_target.insert(target, values);
        }
        let want_by_target: BTreeMap<String, Vec<(i64, f64)>> = want
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|((_, t), v)| (t.to_string(), v.clone()))
            .collect();
        assert_eq!(got_by_target, want_by_target, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_results_land_in_prometheus_at_their_observed_time_and_survive_outages() {
    prometheus_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    // receiver.yml's credentials_file: the collector's /metrics needs a token.
    let scrape = tokio::task::block_in_place(|| make_token(&data, "scrape", &[]));
    std::fs::write(prom_dir.join("pantau-scrape.token"), scrape).unwrap();
    let prom: SocketAddr = free_addr().parse().unwrap();
    let (grpc, http) = (free_addr(), free_addr());
    let mut prometheus = tokio::task::block_in_place(|| {
        start_prometheus(&prom_dir, prom, &http, "prometheus-1.log")
    });

    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ingest]\nmax_result_age = \"60days\"\n\
             [remote_write]\nenabled = true\nurl = \"http://{prom}/api/v1/write\"\n\
             interval = \"1s\"\nmax_samples_per_request = 100\n\
             [remote_write.external_labels]\nsource = \"pantau-rw\"\n"
        ),
    )
    .unwrap();
    let mut collector =
        tokio::task::block_in_place(|| Collector::start_with(&data, &grpc, &http, Some(&cfg)));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two hours ago, with a millisecond part so precision shows.
    let base = (now - 120 * MINUTE) / 1000 * 1000 + 123;

    // Phase 1: minutes 20..40 arrive (late: an hour and more old), plus
    // one result stamped an hour in the future (untrusted clock).
    let mut s = connect(collector.grpc, &token, 1, now).await;
    let mut seq = 1;
    let mut batch = Vec::new();
    for i in 20..40 {
        batch.extend(minute(1, seq, i, base + i * MINUTE));
        seq += 2;
    }
    let mut future = minute(1, seq, 1, now + 60 * MINUTE)[0].clone();
    future.seq = seq;
    seq += 1;
    batch.push(future);
    deliver(&mut s, batch).await;
    let first = expected(base, 20..40);
    let c = &collector;
    tokio::task::block_in_place(|| {
        wait_for("phase 1 exported", Duration::from_secs(60), || {
            let m = c.metrics();
            (metric(&m, "pantau_remote_write_samples_total", &[]) == Some(count(&first) as f64)
                && queued(&data) == 0)
                .then_some(())
        })
    });
    let m = collector.metrics();
    assert_eq!(
        metric(
            &m,
            "pantau_remote_write_results_skipped_total",
            &[("reason", "untrusted_time")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "pantau_remote_write_pending_results", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "pantau_remote_write_samples_rejected_total", &[]),
        Some(0.0)
    );
    // Prometheus also scrapes the collector (the receiver example keeps the
    // scrape for the collector's own health): once a scrape is stored, the
    // exact label sets below also show the scrape did not duplicate a series.
    tokio::task::block_in_place(|| {
        wait_for("a scrape of the collector", Duration::from_secs(60), || {
            let scraped = raw_samples(
                prom,
                r#"pantau_remote_write_samples_total{job="pantau-collector"}"#,
                "1h",
                now + 60_000,
            );
            (!scraped.is_empty()).then_some(())
        })
    });
    // Query two hours ahead so the future result would show if it were sent.
    tokio::task::block_in_place(|| assert_holds(prom, now + 120 * MINUTE, &first));

    // Phase 2: Prometheus goes down; minutes 0..20 (older than everything
    // Prometheus holds) arrive meanwhile and must wait in the queue, with
    // one result from 40 days ago in the middle: the collector accepts it
    // (max_result_age is 60 days here) but it is older than Prometheus'
    // out-of-order window, so Prometheus refuses the request holding it.
    assert!(prometheus.terminate().success(), "prometheus exit");
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend(minute(1, seq, i, base + i * MINUTE));
        seq += 2;
        if i == 9 {
            let mut old = minute(1, seq, i, now - 40 * 24 * 60 * MINUTE)[0].clone();
            old.seq = seq;
            seq += 1;
            batch.push(old);
        }
    }
    deliver(&mut s, batch).await;
    drop(s);
    let second = expected(base, 0..20);
    tokio::task::block_in_place(|| {
        wait_for(
            "failed attempts while Prometheus is down",
            Duration::from_secs(60),
            || {
                let m = c.metrics();
                (metric(&m, "pantau_remote_write_retries_total", &[]).unwrap_or(0.0) >= 2.0
                    && metric(&m, "pantau_remote_write_pending_results", &[]) == Some(41.0))
                .then_some(())
            },
        )
    });
    let m = collector.metrics();
    assert_eq!(
        metric(&m, "pantau_remote_write_samples_total", &[]),
        Some(count(&first) as f64),
        "nothing counted as sent while the receiver is down"
    );
    assert_eq!(queued(&data), 41);

    // The collector restarts too before Prometheus is back: the queue is in SQLite.
    assert!(collector.proc.terminate().success(), "collector exit");
    assert_eq!(queued(&data), 41);
    prometheus = tokio::task::block_in_place(|| {
        start_prometheus(&prom_dir, prom, &http, "prometheus-2.log")
    });
    collector =
        tokio::task::block_in_place(|| Collector::start_with(&data, &grpc, &http, Some(&cfg)));
    let c = &collector;
    tokio::task::block_in_place(|| {
        wait_for(
            "phase 2 exported after the outage",
            Duration::from_secs(90),
            || {
                let m = c.metrics();
                (metric(&m, "pantau_remote_write_samples_total", &[])
                    == Some(count(&second) as f64)
                    && metric(&m, "pantau_remote_write_samples_rejected_total", &[]) == Some(3.0)
                    && queued(&data) == 0)
                    .then_some(())
            },
        )
    });
    let mut all = first.clone();
    for (k, v) in second {
        all.entry(k).or_default().extend(v);
    }
    for v in all.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    tokio::task::block_in_place(|| assert_holds(prom, now + 120 * MINUTE, &all));
    // Only the old result's three samples (success, duration, loss) were
    // refused; the requests were split until the rest went through.
    let m = collector.metrics();
    assert_eq!(
        metric(&m, "pantau_remote_write_samples_rejected_total", &[]),
        Some(3.0)
    );

    assert!(collector.proc.terminate().success());
    assert!(prometheus.terminate().success());
}
