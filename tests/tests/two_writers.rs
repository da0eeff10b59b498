//! Two writers on one agent identity (issue 10, defect 4): the spool lock
//! refuses a second `pantau-agent run` on one spool, and a cloned spool (a
//! cloned SD card, which no lock can stop) loses nothing silently: every
//! result either is stored or is kept aside as a conflicting duplicate,
//! counted in `pantau_ingest_conflicts_total`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pantau_agent::spool::{DiskSpool, Fsync, SpoolConfig};

/// An OPD with one agent probing two local TCP targets every second; the
/// spool is large, so its one segment keeps every result ever written.
fn config(dir: &Path, spool: &Path, grpc: &str, token: &str, port: u16) -> PathBuf {
    let cfg = dir.join(format!(
        "agent-{}.toml",
        spool.file_name().unwrap().to_str().unwrap()
    ));
    let mut t = String::new();
    for i in 0..2 {
        t.push_str(&format!(
            "[[targets]]\nid = \"svc-{i}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
    }
    let collector = format!(
        "{}{}",
        collector_toml_in(grpc, &dir.join("data")),
        client_cert_toml(dir, grpc, "dinsos-1")
    );
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"dinsos-1\"\nheartbeat_interval = \"1s\"\n\
             [collector]\n{collector}\ntoken = \"{token}\"\n\
             [spool]\ndir = \"{}\"\nmax_size = \"64MiB\"\nfsync_interval = \"200ms\"\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{t}",
            spool.display()
        ),
    )
    .unwrap();
    cfg
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("pantau.db")).unwrap()
}

fn count(data: &Path, sql: &str) -> i64 {
    db(data).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A spool.meta value; 0 before the agent wrote the file.
fn meta(spool: &Path, key: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(spool.join("spool.meta")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .parse()
        .unwrap()
}

#[test]
fn a_second_run_on_one_spool_is_refused_and_a_killed_agent_leaves_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spool = dir.path().join("spool");
    let token = enrol(&data, "dinsos", "dinsos-1");
    let (grpc, http) = (free_addr(), free_addr());
    let cfg = config(dir.path(), &spool, &grpc, &token, open_port());
    let _c = Collector::start_at(&data, &grpc, &http);
    let mut first = start_agent(&cfg);
    let stored = |n: i64| {
        wait_for("results stored", Duration::from_secs(30), || {
            (count(&data, "SELECT COUNT(*) FROM result") >= n).then_some(())
        })
    };
    stored(3);

    let started = Instant::now();
    let second = Command::new(bin("pantau-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "{err}");
    for part in [
        spool.display().to_string().as_str(),
        "sedang dipakai proses pantau-agent lain",
        "is in use by another pantau-agent process",
        "systemctl stop pantau-agent",
    ] {
        assert!(err.contains(part), "missing {part:?} in:\n{err}");
    }
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first agent keeps running"
    );
    // `check` does not write the spool: it works beside the running agent.
    let check = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check beside a running agent: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let before = count(&data, "SELECT COUNT(*) FROM result");
    stored(before + 3);

    // A crash leaves no stale lock: the kernel drops it with the process.
    kill9(&mut first);
    let epoch = meta(&spool, "epoch");
    let max_before = count(&data, "SELECT MAX(seq) FROM result");
    let mut again = start_agent(&cfg);
    wait_for(
        "results of the restarted agent",
        Duration::from_secs(30),
        || (count(&data, "SELECT MAX(seq) FROM result") > max_before + 2).then_some(()),
    );
    assert!(again.child.try_wait().unwrap().is_none());
    assert_eq!(meta(&spool, "epoch"), epoch, "same spool, same epoch");
    assert_eq!(
        count(&data, "SELECT COUNT(*) FROM result_conflict"),
        0,
        "one writer at a time never conflicts"
    );
    assert!(again.terminate().success());
}

/// Every result a spool ever held (its one segment is never deleted),
/// keyed by seq: (observed_at_ms, target).
fn spool_results(spool: &Path) -> BTreeMap<u64, (i64, String)> {
    let (s, _) = DiskSpool::open(SpoolConfig {
        dir: spool.to_path_buf(),
        max_bytes: 64 << 20,
        max_age: Duration::from_secs(86400 * 30),
        fsync: Fsync::Never,
    })
    .unwrap();
    let mut out = BTreeMap::new();
    loop {
        let after = out.keys().next_back().copied().unwrap_or(0);
        let batch = s.after(after, 1000);
        if batch.is_empty() {
            return out;
        }
        for r in batch {
            let at = pantau_proto::millis_from_timestamp(r.observed_at.as_ref().unwrap()).unwrap();
            out.insert(r.seq, (at, r.target_id));
        }
    }
}

#[test]
fn a_cloned_spool_loses_nothing_silently_and_every_conflict_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (spool_a, spool_b) = (dir.path().join("a"), dir.path().join("b"));
    let token = enrol(&data, "dinsos", "dinsos-1");
    let (grpc, http) = (free_addr(), free_addr());
    let port = open_port();
    let cfg_a = config(dir.path(), &spool_a, &grpc, &token, port);
    let cfg_b = config(dir.path(), &spool_b, &grpc, &token, port);
    let mut c = Collector::start_at(&data, &grpc, &http);
    assert_eq!(
        metric(
            &c.metrics(),
            "pantau_ingest_conflicts_total",
            &[("opd", "dinsos")]
        ),
        Some(0.0),
        "known OPDs start at 0"
    );

    // The agent runs a while; then its SD card is cloned into a second box.
    let mut a = start_agent(&cfg_a);
    wait_for("first results", Duration::from_secs(30), || {
        (meta(&spool_a, "acked") >= 4).then_some(())
    });
    assert!(a.terminate().success());
    let status = Command::new("cp")
        .arg("-a")
        .arg(&spool_a)
        .arg(&spool_b)
        .status()
        .unwrap();
    assert!(status.success());

    // Both boxes probe while the collector is down (a network outage), so
    // both number their new results from the same point.
    assert!(c.proc.terminate().success());
    // The clone starts more than one probe interval later: both follow the
    // same schedule, so with less than a slot between them the same seq could
    // be the same probe at the same instant (a true duplicate, not a conflict).
    let mut a = start_agent(&cfg_a);
    std::thread::sleep(Duration::from_millis(1_500));
    let mut b = start_agent(&cfg_b);
    std::thread::sleep(Duration::from_secs(4));
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let backlog_a = spool_results(&spool_a);
    let backlog_b = spool_results(&spool_b);
    let acked_before = meta(&spool_a, "acked");
    assert_eq!(acked_before, meta(&spool_b, "acked"));
    let overlap: Vec<u64> = backlog_a
        .keys()
        .filter(|s| **s > acked_before && backlog_b.contains_key(s))
        .copied()
        .collect();
    assert!(overlap.len() >= 6, "both numbered new results: {overlap:?}");
    // Both follow one schedule, so a seq can be the same probe at the same
    // instant in both (a true duplicate); most overlapping seqs differ.
    let differing: Vec<u64> = overlap
        .iter()
        .filter(|s| backlog_a[*s] != backlog_b[*s])
        .copied()
        .collect();
    let differ = differing.len();
    assert!(
        differ >= 3,
        "the clones' results differ at {differ} of {overlap:?}"
    );

    // The link comes back: the first box delivers its backlog, then the clone.
    let c = Collector::start_at(&data, &grpc, &http);
    let deliver = |cfg: &Path, spool: &Path, backlog: &BTreeMap<u64, (i64, String)>| {
        let last = *backlog.keys().next_back().unwrap();
        let mut p = start_agent(cfg);
        wait_for("backlog acknowledged", Duration::from_secs(60), || {
            (meta(spool, "acked") >= last).then_some(())
        });
        assert!(p.terminate().success());
    };
    deliver(&cfg_a, &spool_a, &backlog_a);
    deliver(&cfg_b, &spool_b, &backlog_b);

    // What each box held (everything it ever wrote) and what it had acknowledged.
    let all_a = spool_results(&spool_a);
    let all_b = spool_results(&spool_b);
    let (acked_a, acked_b) = (meta(&spool_a, "acked"), meta(&spool_b, "acked"));
    let stored: BTreeMap<u64, (i64, String)> = {
        let conn = db(&data);
        let mut st = conn
            .prepare("SELECT seq, observed_at_ms, target_id FROM result")
            .unwrap();
        st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, (r.get(1)?, r.get(2)?)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let conflicts: Vec<(u64, (i64, String), Option<String>)> = {
        let conn = db(&data);
        let mut st = conn
            .prepare("SELECT seq, content, peer, agent_id, opd_id FROM result_conflict ORDER BY id")
            .unwrap();
        st.query_map([], |r| {
            let content: String = r.get(1)?;
            let v: serde_json::Value = serde_json::from_str(&content).unwrap();
            assert_eq!(r.get::<_, String>(3)?, "dinsos-1");
            assert_eq!(r.get::<_, String>(4)?, "dinsos");
            Ok((
                r.get::<_, i64>(0)? as u64,
                (
                    v["observed_at_ms"].as_i64().unwrap(),
                    v["target"].as_str().unwrap().to_string(),
                ),
                r.get(2)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };

    // Nothing invented: every stored or kept-aside result is one a box wrote.
    let wrote = |s: u64, v: &(i64, String)| all_a.get(&s) == Some(v) || all_b.get(&s) == Some(v);
    for (s, v) in &stored {
        assert!(
            wrote(*s, v),
            "stored seq {s} {v:?} was written by neither box"
        );
    }
    let mut seen = BTreeSet::new();
    for (s, v, peer) in &conflicts {
        assert!(
            wrote(*s, v),
            "conflict seq {s} {v:?} was written by neither box"
        );
        assert_ne!(
            stored.get(s),
            Some(v),
            "seq {s}: a conflict differs from the stored result"
        );
        assert!(seen.insert((*s, v.clone())), "seq {s} kept aside twice");
        assert!(
            peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:")),
            "peer address kept: {peer:?}"
        );
    }
    // Nothing lost: every result a box had acknowledged is stored or kept aside.
    let mut expected_conflicts = 0;
    for (all, acked) in [(&all_a, acked_a), (&all_b, acked_b)] {
        for (s, v) in all.range(..=acked) {
            let kept = stored.get(s) == Some(v) || seen.contains(&(*s, v.clone()));
            assert!(kept, "acknowledged seq {s} {v:?} vanished");
        }
    }
    // Exactly the clone's different results are conflicts: the first box
    // delivered first, so at every seq both boxes wrote, the clone's is aside.
    for s in all_b.range(..=acked_b).map(|(s, _)| *s) {
        if stored.get(&s).is_some_and(|v| *v != all_b[&s]) {
            expected_conflicts += 1;
        }
    }
    // Every seq where the clones wrote different results has the clone's
    // aside. (Not every overlapping seq: one the first box had written but
    // not yet had acknowledged when its card was copied is in both spools
    // unchanged, a true duplicate.)
    for s in &differing {
        assert!(
            seen.contains(&(*s, all_b[s].clone())),
            "seq {s}: the clone's different result is kept aside"
        );
    }
    assert!(
        expected_conflicts >= differ,
        "{expected_conflicts} < {differ}"
    );
    assert_eq!(conflicts.len(), expected_conflicts, "conflicts kept aside");
    let text = c.metrics();
    assert_eq!(
        metric(&text, "pantau_ingest_conflicts_total", &[("opd", "dinsos")]),
        Some(expected_conflicts as f64),
        "the metric counts every conflict once"
    );
    // The admin sees them where agents are listed.
    let (code, body) = c.get("/api/v1/agents");
    assert_eq!(code, 200);
    let agents: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(agents[0]["conflicts"], expected_conflicts as i64, "{body}");
    let list = collector_cmd(&data, &["agent", "list"]);
    assert!(
        list.contains(&format!("konflik/conflicts={expected_conflicts}")),
        "{list}"
    );
}
