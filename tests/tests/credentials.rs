//! The credential life cycle against a real collector: `agent disable`,
//! `enable`, `rotate` (with an expiry) and `revoke` close an open stream
//! within seconds and refuse later attempts with the reason; no result is
//! lost across them; failed attempts are logged and counted with peer and
//! reason, and too many from one source address are limited while other
//! addresses keep working.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::*;
use pantau_proto::v1 as pb;
use tonic::Code;
use tonic::transport::Channel;

fn hello(agent: &str, next_seq: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            config_version: 0,
            config_sha256: String::new(),
            agent_id: agent.into(),
            agent_version: "test".into(),
            spool: Some(pb::SpoolState {
                epoch: 1,
                next_seq,
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

fn batch(seqs: std::ops::RangeInclusive<u64>) -> pb::AgentMessage {
    let results = seqs
        .map(|seq| pb::Result {
            epoch: 1,
            seq,
            target_id: "core".into(),
            kind: pb::ProbeKind::Tcp as i32,
            observed_at: Some(pantau_proto::timestamp_from_millis(
                now_ms() - 60_000 + seq as i64,
            )),
            outcome: pb::Outcome::Ok as i32,
            detail: String::new(),
            measurement: Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
                connect_us: 250,
            })),
        })
        .collect();
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch { results })),
    }
}

/// A TLS channel to `grpc` from source address `from`.
/// A channel presenting agent `a1`'s client certificate from `from`.
async fn channel_from(grpc: SocketAddr, from: IpAddr) -> Channel {
    common::grpc::channel(&grpc.to_string(), Some("a1"), Some(from)).await
}

use common::grpc::Conn;

/// Open a stream as `agent` with `token`: the connection after its Welcome
/// (with the committed seq), or the refusal.
async fn open(ch: &Channel, agent: &str, token: &str) -> Result<(Conn, u64), tonic::Status> {
    let mut c = common::grpc::open_on(ch, Some(token), hello(agent, 100)).await?;
    match c.next_within(Duration::from_secs(20)).await? {
        pb::collector_message::Msg::Welcome(w) => Ok((c, w.committed_seq)),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

async fn next(
    rx: &mut tonic::Streaming<pb::CollectorMessage>,
) -> Result<pb::collector_message::Msg, tonic::Status> {
    let m = tokio::time::timeout(Duration::from_secs(20), rx.message())
        .await
        .expect("collector answers in time")?;
    Ok(m.and_then(|m| m.msg).expect("a message"))
}

/// Send `seqs` and wait for their acknowledgement.
async fn deliver(c: &mut Conn, seqs: std::ops::RangeInclusive<u64>) {
    let last = *seqs.end();
    c.tx.send(batch(seqs)).await.unwrap();
    loop {
        match next(&mut c.rx).await.expect("stream stays open") {
            pb::collector_message::Msg::Ack(a) if a.up_to_seq >= last => return,
            _ => continue,
        }
    }
}

/// The status that ends an open stream (the test waits, with a deadline).
async fn closed(c: &mut Conn) -> tonic::Status {
    loop {
        match next(&mut c.rx).await {
            Ok(_) => continue,
            Err(s) => return s,
        }
    }
}

fn refused_with(r: Result<(Conn, u64), tonic::Status>, code: Code, reason: &str) {
    match r {
        Ok(_) => panic!("expected a refusal ({reason}), the stream opened"),
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(s.message().contains(reason), "{reason} in {s:?}");
        }
    }
}

/// Run an admin command off the runtime; (exit code, stdout, stderr).
async fn admin(data: &Path, args: &[&str]) -> (i32, String, String) {
    let data = data.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        collector_cli(&data, None, &a)
    })
    .await
    .unwrap()
}

fn stored_seqs(data: &Path, agent: &str) -> Vec<u64> {
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let mut st = db
        .prepare("SELECT seq FROM result WHERE agent_id = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([agent], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|s| s.unwrap() as u64)
        .collect()
}

fn auth_metric(http: SocketAddr, result: &str, reason: &str) -> f64 {
    let (code, body) = http_get(http, "/metrics");
    assert_eq!(code, 200);
    metric(
        &body,
        "pantau_auth_total",
        &[("result", result), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// A log line holding every one of `parts`.
fn logged(log: &Path, parts: &[&str]) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

// Long: one story through every credential change on a single collector,
// each step depending on the state the previous one left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_changes_close_streams_refuse_attempts_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("collector.log");
    let token = enrol(&data, "dinkes", "a1");
    let collector = Collector::start_logged(&data, &log, false);
    let (grpc, http) = (collector.grpc, collector.http);
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let ch = channel_from(grpc, local).await;

    // Disable: the open stream ends within seconds, later attempts are refused.
    let (mut c, committed) = open(&ch, "a1", &token).await.expect("enrolled agent");
    assert_eq!(committed, 0);
    deliver(&mut c, 1..=3).await;
    let (code, out, _) = admin(&data, &["agent", "disable", "a1"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("disabled"), "{out}");
    let s = closed(&mut c).await;
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert!(s.message().contains("disabled"), "{s:?}");
    refused_with(
        open(&ch, "a1", &token).await,
        Code::Unauthenticated,
        "disabled",
    );
    assert!(logged(
        &log,
        &[
            "agent authentication refused",
            "127.0.0.1",
            "a1",
            "disabled"
        ]
    ));
    assert!(logged(
        &log,
        &["closing the agent's open stream", "a1", "disabled"]
    ));

    // Enable: it delivers again from where it was, nothing lost.
    assert_eq!(admin(&data, &["agent", "enable", "a1"]).await.0, 0);
    let (mut c, committed) = open(&ch, "a1", &token).await.expect("enabled again");
    assert_eq!(committed, 3);
    deliver(&mut c, 4..=6).await;
    assert_eq!(stored_seqs(&data, "a1"), (1..=6).collect::<Vec<_>>());

    // Rotate: the old token stops at once (open stream too), the new works.
    let (code, new_token, note) = admin(&data, &["agent", "rotate", "a1"]).await;
    assert_eq!(code, 0, "{note}");
    let new_token = new_token.trim().to_string();
    assert_ne!(new_token, token);
    let s = closed(&mut c).await;
    assert!(s.message().contains("rotated"), "{s:?}");
    refused_with(
        open(&ch, "a1", &token).await,
        Code::Unauthenticated,
        "rotated",
    );
    let (mut c, committed) = open(&ch, "a1", &new_token).await.expect("new token");
    assert_eq!(committed, 6);
    deliver(&mut c, 7..=8).await;

    // Expiry: a token given 2 s stops working after them, open stream too.
    let (code, short, note) = admin(&data, &["agent", "rotate", "a1", "--expires", "2s"]).await;
    assert_eq!(code, 0, "{note}");
    let short = short.trim().to_string();
    assert!(closed(&mut c).await.message().contains("rotated"));
    let s = match open(&ch, "a1", &short).await {
        Ok((mut c, _)) => closed(&mut c).await,
        Err(s) => s,
    };
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert!(s.message().contains("expired"), "{s:?}");
    refused_with(
        open(&ch, "a1", &short).await,
        Code::Unauthenticated,
        "expired",
    );
    let (_, list, _) = admin(&data, &["agent", "list"]).await;
    assert!(!list.contains("kedaluwarsa/expires=-"), "{list}");

    // Revoke: refused for good, the agent cannot be enabled or rotated back.
    let (_, last, _) = admin(&data, &["agent", "rotate", "a1"]).await;
    let last = last.trim().to_string();
    let (mut c, _) = open(&ch, "a1", &last).await.expect("rotated token");
    assert_eq!(admin(&data, &["agent", "revoke", "a1"]).await.0, 0);
    assert!(closed(&mut c).await.message().contains("revoked"));
    refused_with(
        open(&ch, "a1", &last).await,
        Code::Unauthenticated,
        "revoked",
    );
    for cmd in ["enable", "rotate"] {
        let (code, _, err) = admin(&data, &["agent", cmd, "a1"]).await;
        assert_eq!(code, 1, "{cmd}: {err}");
        assert!(err.contains("revoked"), "{err}");
    }
    let (code, _, err) = admin(&data, &["agent", "disable", "nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("agent `nope` does not exist"), "{err}");

    // Nothing was lost; the state, last peer and counts are visible.
    assert_eq!(stored_seqs(&data, "a1"), (1..=8).collect::<Vec<_>>());
    let (_, list, _) = admin(&data, &["agent", "list"]).await;
    assert!(list.contains("status=dicabut/revoked"), "{list}");
    assert!(list.contains("peer=127.0.0.1:"), "{list}");
    for (result, reason) in [
        ("ok", "ok"),
        ("refused", "disabled"),
        ("refused", "rotated"),
        ("refused", "expired"),
        ("refused", "revoked"),
        ("closed", "disabled"),
        ("closed", "rotated"),
        ("closed", "expired"),
        ("closed", "revoked"),
    ] {
        assert!(
            auth_metric(http, result, reason) >= 1.0,
            "{result} {reason}"
        );
    }
    assert!(logged(&log, &["agent authenticated", "127.0.0.1", "a1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_from_one_address_are_limited_others_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("collector.log");
    let good = enrol(&data, "dinkes", "a1");
    let collector = Collector::start_logged(&data, &log, false);
    let (grpc, http) = (collector.grpc, collector.http);
    let attacker = channel_from(grpc, "127.0.0.2".parse().unwrap()).await;
    for i in 0..10 {
        refused_with(
            open(&attacker, "a1", &format!("pantau_guess{i}")).await,
            Code::Unauthenticated,
            "unknown",
        );
    }
    // The 11th, even with a good token, is refused without a look-up.
    refused_with(
        open(&attacker, "a1", "pantau_guess10").await,
        Code::ResourceExhausted,
        "too many failed authentications",
    );
    refused_with(
        open(&attacker, "a1", &good).await,
        Code::ResourceExhausted,
        "too many failed authentications",
    );
    assert!(auth_metric(http, "refused", "unknown") >= 10.0);
    assert!(auth_metric(http, "refused", "limited") >= 2.0);
    assert!(logged(
        &log,
        &["agent authentication refused", "127.0.0.2", "unknown"]
    ));
    assert!(logged(&log, &["too many failures", "127.0.0.2"]));

    let ok = channel_from(grpc, "127.0.0.1".parse().unwrap()).await;
    let (mut c, _) = open(&ok, "a1", &good)
        .await
        .expect("another address still works");
    deliver(&mut c, 1..=2).await;
    assert_eq!(stored_seqs(&data, "a1"), [1, 2]);
}

/// The real agent across `agent disable`: its stream is closed, it does not
/// retry in a tight loop, it keeps probing into its spool, and once enabled
/// (restarted here, instead of waiting out its ~2 min backoff) it delivers
/// every result, none missing.
#[test]
fn a_disabled_real_agent_keeps_its_results_and_delivers_them_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "dinkes", "a1");
    let collector = Collector::start(&data);
    let grpc = collector.grpc.to_string();
    let port = open_port();
    let rest = format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\n[[targets]]\nid = \"tcp-open\"\n\
         group = \"datacenter\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
    );
    let cfg = agent_config(dir.path(), "a1", &grpc, &token, "", &rest);
    let mut agent = start_agent(&cfg);
    let count = |m: &str, labels: &[(&str, &str)]| metric(&collector.metrics(), m, labels);
    wait_for("first results stored", Duration::from_secs(30), || {
        (stored_seqs(&data, "a1").len() >= 2).then_some(())
    });

    collector_cmd(&data, &["agent", "disable", "a1"]);
    wait_for("the open stream closed", Duration::from_secs(30), || {
        (count(
            "pantau_auth_total",
            &[("result", "closed"), ("reason", "disabled")],
        )? >= 1.0)
            .then_some(())
    });
    let before = stored_seqs(&data, "a1");
    // The agent probes on while refused; its refusals stay few (backoff).
    std::thread::sleep(Duration::from_secs(4));
    let refused = count(
        "pantau_auth_total",
        &[("result", "refused"), ("reason", "disabled")],
    );
    assert!(
        refused.unwrap_or(0.0) <= 1.0,
        "a tight retry loop: {refused:?}"
    );
    assert_eq!(
        stored_seqs(&data, "a1"),
        before,
        "nothing stored while disabled"
    );

    collector_cmd(&data, &["agent", "enable", "a1"]);
    agent.terminate();
    let _agent = start_agent(&cfg);
    let want = before.last().copied().unwrap_or(0) + 3;
    let seqs = wait_for(
        "the spooled results delivered",
        Duration::from_secs(30),
        || {
            let s = stored_seqs(&data, "a1");
            (s.last().copied().unwrap_or(0) >= want).then_some(s)
        },
    );
    let max = *seqs.last().unwrap();
    assert_eq!(seqs, (1..=max).collect::<Vec<_>>(), "no result missing");
    let (code, body) = collector.get("/api/v1/agents");
    assert_eq!(code, 200);
    let agents: serde_json::Value = serde_json::from_str(&body).unwrap();
    let peer = agents[0]["last_peer"].as_str().unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "{body}");
}
