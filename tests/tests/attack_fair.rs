//! No OPD can hurt another (issue 12, fairness): a real collector serves a
//! real agent of one OPD while a hostile client holding another OPD's token
//! (and, last, a stolen copy of the real agent's token) tries the interval
//! bomb, 8,000 targets through repeated Hellos, and a forged seq of 10^12 on
//! a second stream. The real agent's results all arrive, complete by seq;
//! `/healthz` stays 200 throughout; the hostile client gets its statuses.
//! The worst delivery delay of the real agent is printed (a figure, not an
//! assertion).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use pantau_proto::v1 as pb;
use tonic::Code;

const FORGED: u64 = 1_000_000_000_000;

fn target(id: &str, port: u16) -> pb::TargetInfo {
    pb::TargetInfo {
        id: id.into(),
        group: "app".into(),
        kind: pb::ProbeKind::Tcp as i32,
        address: format!("127.0.0.1:{port}"),
        interval_ms: 1000,
        timeout_ms: 500,
        label: String::new(),
    }
}

fn hello(agent: &str, epoch: u64, next_seq: u64, targets: Vec<pb::TargetInfo>) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            config_version: 0,
            config_sha256: String::new(),
            agent_id: agent.into(),
            agent_version: "hostile".into(),
            spool: Some(pb::SpoolState {
                epoch,
                next_seq,
                ..Default::default()
            }),
            agent_time: Some(pantau_proto::timestamp_from_millis(now_ms())),
            targets,
            ..Default::default()
        })),
    }
}

fn batch(epoch: u64, seq: u64, target: &str) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch {
            results: vec![pb::Result {
                epoch,
                seq,
                target_id: target.into(),
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

/// Open a stream with `token` presenting the client certificate of the
/// agent `first` (a Hello) names: the hostile client holds its own
/// agent's, and last a stolen copy of the real agent's key and token.
async fn open(
    grpc: std::net::SocketAddr,
    token: &str,
    first: pb::AgentMessage,
) -> Result<Conn, tonic::Status> {
    let agent = match &first.msg {
        Some(pb::agent_message::Msg::Hello(h)) => h.agent_id.clone(),
        other => panic!("the first message is a Hello here, not {other:?}"),
    };
    common::grpc::open_as(grpc, &agent, Some(token), first).await
}

async fn next(c: &mut Conn) -> Result<pb::collector_message::Msg, tonic::Status> {
    c.next_within(Duration::from_secs(30)).await
}

async fn welcome(c: &mut Conn) -> pb::Welcome {
    match next(c).await.unwrap() {
        pb::collector_message::Msg::Welcome(w) => w,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// The next Ack (skipping Backoff hints) or the status ending the stream.
async fn ack(c: &mut Conn) -> Result<u64, tonic::Status> {
    loop {
        match next(c).await? {
            pb::collector_message::Msg::Ack(a) => return Ok(a.up_to_seq),
            pb::collector_message::Msg::Backoff(_) => continue,
            other => panic!("expected Ack, got {other:?}"),
        }
    }
}

fn query(data: &std::path::Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    db.busy_timeout(Duration::from_secs(30)).unwrap();
    db.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(0)
}

/// (count, min, max) of the real agent's results of `epoch` below the forged seq.
fn legit(data: &std::path::Path, epoch: i64) -> (i64, i64, i64) {
    let w =
        format!("FROM result WHERE agent_id = 'dinkes-1' AND epoch = {epoch} AND seq < {FORGED}");
    (
        query(data, &format!("SELECT COUNT(*) {w}")),
        query(data, &format!("SELECT MIN(seq) {w}")),
        query(data, &format!("SELECT MAX(seq) {w}")),
    )
}

// Long: one scenario, attack by attack, each followed by its checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_opd_cannot_hurt_another() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (token, hostile) = tokio::task::block_in_place(|| {
        let t = enrol(&data, "dinkes", "dinkes-1");
        let h = enrol(&data, "bappeda", "bappeda-1");
        (t, h)
    });
    let port = open_port();
    let collector = tokio::task::block_in_place(|| Collector::start(&data));
    let g = collector.grpc;
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let mut targets = String::new();
    for i in 0..2 {
        targets.push_str(&format!(
            "[[targets]]\nid = \"svc-{i}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
    }
    let cfg = agent_config(
        &agent_dir,
        "dinkes-1",
        &g.to_string(),
        &token,
        "heartbeat_interval = \"1s\"",
        &format!("[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{targets}"),
    );
    let mut agent = start_agent(&cfg);
    let epoch = tokio::task::block_in_place(|| {
        wait_for("the real agent's results", Duration::from_secs(60), || {
            (query(
                &data,
                "SELECT COUNT(*) FROM result WHERE agent_id = 'dinkes-1'",
            ) >= 5)
                .then(|| {
                    query(
                        &data,
                        "SELECT MAX(epoch) FROM result WHERE agent_id = 'dinkes-1'",
                    )
                })
        })
    });
    let attack_from = now_ms();

    // /healthz is polled throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (polls, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let poller = {
        let (stop, polls, bad, http) = (stop.clone(), polls.clone(), bad.clone(), collector.http);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let code = std::panic::catch_unwind(|| http_get(http, "/healthz").0).unwrap_or(0);
                polls.fetch_add(1, Ordering::Relaxed);
                if code != 200 {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // (a) The interval bomb: refused, naming the field.
    let mut bomb = target("bomb", port);
    bomb.interval_ms = 1 << 52;
    let s = open(g, &hostile, hello("bappeda-1", 9, 1, vec![bomb]))
        .await
        .err()
        .expect("the interval bomb is refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message()
            .contains("targets[0].interval_ms 4503599627370496"),
        "{s:?}"
    );

    // (b) 8,000 targets through 16 Hellos of 500 new ids, one result each.
    for round in 0..16u64 {
        let ts = (0..500)
            .map(|i| target(&format!("t{round}-{i}"), port))
            .collect();
        let mut c = open(g, &hostile, hello("bappeda-1", 9, round + 1, ts))
            .await
            .unwrap();
        welcome(&mut c).await;
        c.tx.send(batch(9, round + 1, &format!("t{round}-0")))
            .await
            .unwrap();
        assert_eq!(ack(&mut c).await.unwrap(), round + 1);
    }
    let over = (0..513).map(|i| target(&format!("x{i}"), port)).collect();
    let s = open(g, &hostile, hello("bappeda-1", 9, 17, over))
        .await
        .err()
        .expect("more targets than the cap are refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_eq!(s.message(), "Hello: 513 targets declared; at most 512");
    assert_eq!(
        query(
            &data,
            "SELECT COUNT(*) FROM target WHERE agent_id = 'bappeda-1'"
        ),
        8000,
        "declarations are kept (history), not deleted"
    );
    // A rollup cycle goes through the 8,000 declarations: only the latest
    // Hello's 500 and the retired ones with results in the hour count.
    tokio::task::block_in_place(|| {
        wait_for("a rollup of bappeda", Duration::from_secs(90), || {
            (query(
                &data,
                "SELECT COUNT(*) FROM rollup_dirty WHERE opd_id = 'bappeda'",
            ) == 0
                && query(
                    &data,
                    "SELECT COUNT(*) FROM rollup_target_hour WHERE opd_id = 'bappeda'",
                ) > 0)
                .then_some(())
        })
    });
    let counted = query(
        &data,
        "SELECT COUNT(*) FROM rollup_target_hour WHERE opd_id = 'bappeda'
           AND hour_ms = (SELECT MAX(hour_ms) FROM rollup_target_hour WHERE opd_id = 'bappeda')",
    );
    assert!(
        (500..=516).contains(&counted),
        "{counted} targets rolled up"
    );

    // (c) A stolen token: a seq far above the declared next_seq is refused;
    // declared that high, it is stored, but the Welcome the real agent gets
    // on reconnecting is its contiguous committed seq, and it keeps sending.
    let stolen_from = now_ms();
    let svc = vec![target("svc-0", port), target("svc-1", port)];
    let mut c = open(g, &token, hello("dinkes-1", epoch as u64, 10, svc.clone()))
        .await
        .unwrap();
    welcome(&mut c).await;
    c.tx.send(batch(epoch as u64, FORGED, "svc-0"))
        .await
        .unwrap();
    let s = ack(&mut c).await.expect_err("the forged seq is refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("far above the next_seq 10"), "{s:?}");
    let mut c = open(g, &token, hello("dinkes-1", epoch as u64, FORGED + 1, svc))
        .await
        .unwrap();
    let w = welcome(&mut c).await;
    assert!(w.committed_seq < FORGED);
    c.tx.send(batch(epoch as u64, FORGED, "svc-0"))
        .await
        .unwrap();
    assert_eq!(
        ack(&mut c).await.unwrap(),
        FORGED,
        "declared that high, it is stored"
    );
    drop(c);
    let (n_forged, _, max_forged) = tokio::task::block_in_place(|| legit(&data, epoch));

    // The real agent reconnects and delivers on: well past the attack, and
    // complete by seq (no hole from its first seq to its last).
    let (n, min, max) = tokio::task::block_in_place(|| {
        wait_for(
            "the real agent delivering after the attack",
            Duration::from_secs(90),
            || {
                let (n, min, max) = legit(&data, epoch);
                (max >= max_forged + 10 && n == max - min + 1).then_some((n, min, max))
            },
        )
    });
    assert_eq!(min, 1, "from the first seq");
    assert!(n > n_forged);
    let progress = query(
        &data,
        &format!(
            "SELECT contiguous FROM seq_progress WHERE agent_id = 'dinkes-1' AND epoch = {epoch}"
        ),
    );
    assert!(
        progress >= min && progress < FORGED as i64,
        "the Welcome is the contiguous seq, not the forged one: {progress}"
    );
    agent.terminate();
    let after = tokio::task::block_in_place(|| legit(&data, epoch));
    assert_eq!(
        after.0,
        after.2 - after.1 + 1,
        "complete by seq after stopping: {after:?}"
    );

    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let (polls, bad) = (polls.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert!(polls > 10);
    assert_eq!(bad, 0, "/healthz answered non-200 {bad} of {polls} times");
    let worst = |from: i64, to: i64| {
        query(
            &data,
            &format!(
                "SELECT MAX(received_at_ms - observed_at_ms) FROM result
                 WHERE agent_id = 'dinkes-1' AND seq < {FORGED}
                   AND observed_at_ms >= {from} AND observed_at_ms < {to}"
            ),
        )
    };
    let (before, bombs, stolen) = (
        worst(0, attack_from),
        worst(attack_from, stolen_from),
        worst(stolen_from, i64::MAX),
    );
    let m = tokio::task::block_in_place(|| collector.metrics());
    assert_eq!(
        metric(&m, "pantau_ingest_rejected_total", &[("reason", "invalid")]),
        Some(3.0)
    );
    println!(
        "attack_fair: real agent {n} results (seq {min}..={max}) complete; worst delivery delay: \
         {before} ms before the attacks, {bombs} ms during (a)+(b) and the rollup of 8,000 \
         declarations, {stolen} ms during (c) (its stream taken over twice by the stolen token); \
         /healthz {polls} polls, all 200"
    );
}
