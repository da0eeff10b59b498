//! Lose nothing: outages, crashes, power cuts, a full spool and an
//! unwritable store, with real agent and collector processes and real files.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;

struct Site {
    _dir: tempfile::TempDir,
    data: PathBuf,
    spool: PathBuf,
    cfg: PathBuf,
    grpc: String,
    http: String,
}

/// An OPD with one agent probing `targets` local TCP targets every second.
fn site(targets: usize, spool_extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spool = dir.path().join("spool");
    let token = enrol(&data, "dinsos", "dinsos-1");
    let (grpc, http) = (free_addr(), free_addr());
    let port = open_port();
    let mut t = String::new();
    for i in 0..targets {
        t.push_str(&format!(
            "[[targets]]\nid = \"svc-{i}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
    }
    let collector = format!(
        "{}{}",
        collector_toml_in(&grpc, &data),
        client_cert_toml(dir.path(), &grpc, "dinsos-1")
    );
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"dinsos-1\"\nheartbeat_interval = \"1s\"\n\
             [collector]\n{collector}\ntoken = \"{token}\"\n\
             [spool]\ndir = \"{}\"\nfsync_interval = \"200ms\"\n{spool_extra}\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{t}",
            spool.display()
        ),
    )
    .unwrap();
    Site {
        _dir: dir,
        data,
        spool,
        cfg,
        grpc,
        http,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("pantau.db")).unwrap()
}

fn count(data: &Path) -> i64 {
    db(data)
        .query_row("SELECT COUNT(*) FROM result", [], |r| r.get(0))
        .unwrap()
}

fn stored_seqs(data: &Path) -> Vec<u64> {
    let c = db(data);
    let mut st = c.prepare("SELECT seq FROM result ORDER BY seq").unwrap();
    st.query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|v| v.unwrap() as u64)
        .collect()
}

fn epochs(data: &Path) -> i64 {
    db(data)
        .query_row("SELECT COUNT(DISTINCT epoch) FROM result", [], |r| r.get(0))
        .unwrap()
}

fn meta(spool: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(spool.join("spool.meta")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .parse()
        .unwrap()
}

/// After the agent stopped: one epoch, sequences 1..=max with no gap, and
/// everything the agent saw acknowledged is in the database.
fn assert_complete(s: &Site) {
    assert_eq!(epochs(&s.data), 1);
    let seqs = stored_seqs(&s.data);
    let max = *seqs.last().unwrap();
    assert_eq!(
        seqs,
        (1..=max).collect::<Vec<_>>(),
        "stored sequences have gaps"
    );
    let acked = meta(&s.spool, "acked");
    assert!(
        acked <= max && acked > 0,
        "acked {acked}, stored up to {max}"
    );
}

fn per_target_in(data: &Path, from: i64, to: i64) -> Vec<i64> {
    let c = db(data);
    let mut st = c
        .prepare(
            "SELECT COUNT(*) FROM result WHERE kind = 'tcp' AND observed_at_ms > ?1 AND observed_at_ms < ?2
             GROUP BY target_id",
        )
        .unwrap();
    st.query_map([from, to], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn collector_outage_is_delivered_once_with_original_times() {
    let s = site(5, "");
    let mut c = Collector::start_at(&s.data, &s.grpc, &s.http);
    let mut agent = start_agent(&s.cfg);
    wait_for("first results", Duration::from_secs(20), || {
        (count(&s.data) >= 10).then_some(())
    });

    let t_stop = now_ms();
    assert!(c.proc.terminate().success());
    drop(c);
    // The outage itself: the agent keeps probing for twelve seconds.
    std::thread::sleep(Duration::from_secs(12));
    let t_back = now_ms();
    let c = Collector::start_at(&s.data, &s.grpc, &s.http);

    wait_for("outage results delivered", Duration::from_secs(40), || {
        let n = per_target_in(&s.data, t_stop + 500, t_back - 500);
        (n.len() == 5 && n.iter().all(|c| *c >= 10)).then_some(())
    });
    assert!(agent.terminate().success());
    assert_complete(&s);

    // Outage results kept their own time and are marked late when over 10 s old on arrival.
    let conn = db(&s.data);
    let mut st = conn
        .prepare("SELECT observed_at_ms, received_at_ms, late FROM result WHERE observed_at_ms > ?1 AND observed_at_ms < ?2")
        .unwrap();
    let rows: Vec<(i64, i64, bool)> = st
        .query_map([t_stop + 500, t_back - 500], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.len() >= 50);
    for (observed, received, late) in &rows {
        assert!(
            *received >= t_back,
            "received {received} before the collector was back at {t_back}"
        );
        assert_eq!(
            *late,
            received - observed > 10_000,
            "late flag of a result {} ms old",
            received - observed
        );
    }
    assert!(
        rows.iter().any(|r| r.2),
        "the oldest outage results are late"
    );

    // Sessions tell the outage apart from "down": two sessions with a gap.
    let (_, body) =
        c.get("/api/v1/sessions?agent=dinsos-1&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{body}");
    assert!(sessions[0]["disconnected_at"].is_string(), "{body}");
}

#[test]
fn kill_9_of_agent_and_collector_loses_and_duplicates_nothing() {
    let s = site(5, "");
    let mut c = Collector::start_at(&s.data, &s.grpc, &s.http);
    let mut agent = start_agent(&s.cfg);
    wait_for("first results", Duration::from_secs(20), || {
        (count(&s.data) >= 15).then_some(())
    });

    kill9(&mut agent);
    let before = count(&s.data);
    let mut agent = start_agent(&s.cfg);
    wait_for(
        "results after agent restart",
        Duration::from_secs(20),
        || (count(&s.data) >= before + 15).then_some(()),
    );
    assert_eq!(epochs(&s.data), 1, "a restarted agent keeps its epoch");

    kill9(&mut c.proc);
    drop(c);
    std::thread::sleep(Duration::from_secs(2));
    let before = count(&s.data);
    let c = Collector::start_at(&s.data, &s.grpc, &s.http);
    wait_for(
        "results after collector restart",
        Duration::from_secs(40),
        || (count(&s.data) >= before + 20).then_some(()),
    );
    assert!(agent.terminate().success());
    assert_complete(&s);
    let closed: i64 = db(&s.data)
        .query_row(
            "SELECT COUNT(*) FROM agent_session WHERE end_reason = 'collector stopped'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        closed >= 1,
        "the session cut by kill -9 is closed at the next start"
    );
    drop(c);
}

#[test]
fn power_cut_garbling_the_spool_tail_is_survived_and_reported() {
    let s = site(5, "");
    let c = Collector::start_at(&s.data, &s.grpc, &s.http);
    let mut agent = start_agent(&s.cfg);
    wait_for("first results", Duration::from_secs(20), || {
        (count(&s.data) >= 10).then_some(())
    });
    kill9(&mut agent);
    let old_max = *stored_seqs(&s.data).last().unwrap();

    let mut segs: Vec<PathBuf> = std::fs::read_dir(&s.spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    let last = segs.pop().expect("a spool segment");
    let mut bytes = std::fs::read(&last).unwrap();
    assert!(bytes.len() > 64);
    bytes.truncate(bytes.len() - 5);
    let n = bytes.len();
    bytes[n - 20] ^= 0xa5;
    std::fs::write(&last, &bytes).unwrap();

    let mut agent = start_agent(&s.cfg);
    let m = wait_for(
        "corruption reported and new results stored",
        Duration::from_secs(30),
        || {
            let m = c.metrics();
            let corrupt = metric(
                &m,
                "pantau_agent_spool_corrupt_bytes",
                &[("agent", "dinsos-1")],
            )
            .unwrap_or(0.0);
            let newest = stored_seqs(&s.data).last().copied().unwrap_or(0);
            (corrupt > 0.0 && newest > old_max + 10).then_some(m)
        },
    );
    assert!(metric(&m, "pantau_agent_seq_skipped", &[("agent", "dinsos-1")]).unwrap() > 0.0);
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent must keep running"
    );
    assert!(agent.terminate().success());
    assert_eq!(epochs(&s.data), 1);
}

#[test]
fn full_spool_drops_the_oldest_and_the_collector_shows_it() {
    let s = site(40, "max_size = \"16KiB\"");
    let mut agent = start_agent(&s.cfg);
    // No collector yet: the spool fills and starts dropping.
    wait_for("spool drops", Duration::from_secs(60), || {
        std::fs::read_to_string(s.spool.join("spool.meta"))
            .ok()
            .filter(|_| meta(&s.spool, "dropped") > 0)
            .map(|_| ())
    });
    let c = Collector::start_at(&s.data, &s.grpc, &s.http);
    wait_for(
        "drops visible at the collector",
        Duration::from_secs(30),
        || {
            let m = c.metrics();
            (metric(&m, "pantau_agent_dropped_results", &[("agent", "dinsos-1")]).unwrap_or(0.0)
                > 0.0)
                .then_some(())
        },
    );
    assert!(agent.terminate().success());
    let dropped = meta(&s.spool, "dropped");
    let seqs = stored_seqs(&s.data);
    let stored: BTreeSet<u64> = seqs.iter().copied().collect();
    let max = *seqs.last().unwrap();
    let missing: Vec<u64> = (1..=max).filter(|q| !stored.contains(q)).collect();
    // Exactly the oldest results are missing, and each is declared as dropped.
    assert_eq!(missing, (1..=missing.len() as u64).collect::<Vec<_>>());
    assert_eq!(missing.len() as u64, dropped, "undeclared gap");
    let disk: u64 = std::fs::read_dir(&s.spool)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(disk < 16 * 1024 + 8 * 1024, "spool uses {disk} bytes");
}

#[test]
fn unwritable_store_stops_acks_reports_not_serving_and_recovers() {
    let s = site(5, "");
    let c = Collector::start_at(&s.data, &s.grpc, &s.http);
    let mut agent = start_agent(&s.cfg);
    wait_for("first results", Duration::from_secs(20), || {
        (count(&s.data) >= 10).then_some(())
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let grpc = s.grpc.clone();
    let health = move || {
        rt.block_on(async {
            let ch = common::grpc_channel(&grpc.to_string()).await;
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
            let req = tonic_health::pb::HealthCheckRequest {
                service: "pantau.v1.Ingest".into(),
            };
            h.check(req).await.unwrap().into_inner().status
        })
    };
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(health(), serving);

    // Another process takes the database's write lock: every commit fails.
    let blocker = db(&s.data);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t_lock = now_ms();
    wait_for("NOT_SERVING", Duration::from_secs(30), || {
        (health() != serving).then_some(())
    });
    let (code, _) = c.get("/healthz");
    assert_eq!(code, 503);
    let frozen = db(&s.data)
        .query_row("SELECT COUNT(*) FROM result", [], |r| r.get::<_, i64>(0))
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let t_unlock = now_ms();
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    assert!(count(&s.data) == frozen, "nothing committed while locked");

    wait_for("SERVING again", Duration::from_secs(40), || {
        (health() == serving).then_some(())
    });
    wait_for(
        "results from the locked span",
        Duration::from_secs(40),
        || {
            let n = per_target_in(&s.data, t_lock + 500, t_unlock - 500);
            (n.len() == 5 && n.iter().all(|c| *c >= 3)).then_some(())
        },
    );
    assert!(agent.terminate().success());
    assert_complete(&s);
}
