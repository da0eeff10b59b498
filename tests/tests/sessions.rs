//! Sessions keep the address each agent stream came from, and a spool
//! restored from an old copy (or a second machine with the same identity)
//! is noticed by the collector: logged, counted in /metrics, data kept.

mod common;

use std::time::Duration;

use common::*;

/// Results the collector holds for `agent`, from `/api/v1/results`.
fn stored(c: &Collector, agent: &str) -> usize {
    let (code, body) = c.get(&format!(
        "/api/v1/results?agent={agent}&from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=10000"
    ));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["results"].as_array().expect("results array").len()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn sessions_record_the_peer_and_a_restored_spool_is_flagged_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "dinsos", "dinsos-1");
    let log = dir.path().join("collector.log");
    let collector = Collector::start_logged(&data, &log, false);
    let port = open_port();
    let targets: String = (0..10)
        .map(|i| {
            format!(
                "[[targets]]\nid = \"svc-{i}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
            )
        })
        .collect();
    let cfg = agent_config(
        dir.path(),
        "dinsos-1",
        &collector.grpc.to_string(),
        &token,
        "heartbeat_interval = \"1s\"",
        &format!("[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{targets}"),
    );
    let spool = dir.path().join("spool");

    let mut agent = start_agent(&cfg);
    wait_for("30 results stored", Duration::from_secs(60), || {
        (stored(&collector, "dinsos-1") >= 30).then_some(())
    });
    assert!(agent.terminate().success());
    let copy = dir.path().join("spool-copy");
    copy_dir(&spool, &copy);
    let at_copy = stored(&collector, "dinsos-1");

    let mut agent = start_agent(&cfg);
    wait_for("60 more results stored", Duration::from_secs(60), || {
        (stored(&collector, "dinsos-1") >= at_copy + 60).then_some(())
    });
    assert!(agent.terminate().success());
    let before_restore = stored(&collector, "dinsos-1");

    // The office restores the spool from the old copy: its next_seq is now
    // below what the collector committed for the same epoch.
    std::fs::remove_dir_all(&spool).unwrap();
    copy_dir(&copy, &spool);
    let metric = |c: &Collector| {
        metric(
            &c.metrics(),
            "pantau_agent_seq_beyond_spool_total",
            &[("agent", "dinsos-1"), ("opd", "dinsos")],
        )
    };
    assert_eq!(
        metric(&collector),
        Some(0.0),
        "seeded at 0 before it happens"
    );
    let mut agent = start_agent(&cfg);
    wait_for(
        "the collector flags the restored spool",
        Duration::from_secs(60),
        || (metric(&collector)? >= 1.0).then_some(()),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("beyond this agent's spool"))
        .unwrap_or_else(|| panic!("no warning in the collector log:\n{text}"));
    assert!(
        line.contains("dinsos-1") && line.contains("declared_next"),
        "{line}"
    );
    assert!(agent.terminate().success());
    // Nothing stored was dropped or replaced because of it.
    assert!(stored(&collector, "dinsos-1") >= before_restore);

    // Every session names the loopback peer it came from.
    let (code, body) = collector
        .get("/api/v1/sessions?agent=dinsos-1&from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{body}");
    for s in sessions {
        let peer = s["peer"]
            .as_str()
            .unwrap_or_else(|| panic!("no peer in {s}"));
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    }
}
