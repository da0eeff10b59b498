//! The audit log (issue 13, item 4) through the real `pantau-collector`
//! binary: admin commands leave entries with who, from where, before and
//! after; `verify-audit` names the first removed, edited or reordered seq
//! (in the database and in an exported file); `[audit] syslog` and `audit
//! export --syslog` reach a real UDP socket as RFC 5424; a report bundle
//! carries the entries touching its period and `verify` checks them.

mod common;

use std::path::Path;
use std::process::Command;

use common::enrol::{CodeFrom, enroll_agent};
use common::*;
use serde_json::Value;

fn run_ok(data: &Path, args: &[&str]) -> (String, String) {
    let (code, out, err) = collector_cli(data, None, args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    (out, err)
}

fn entries(data: &Path) -> Vec<Value> {
    let (out, _) = run_ok(data, &["audit", "list", "--json"]);
    out.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// Five `opd add` entries.
fn five_entries(data: &Path) {
    for i in 1..=5 {
        let id = format!("opd{i}");
        run_ok(data, &["opd", "add", &id, "--name", &format!("OPD {i}")]);
    }
}

#[test]
fn admin_commands_are_listed_with_actor_source_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    run_ok(&data, &["opd", "contract", "dinkes", "--mbps", "20"]);
    // Refused commands change nothing and leave no entry.
    for refused in [
        &["opd", "add", "dinkes", "--name", "lagi"][..],
        &["opd", "contract", "nope", "--mbps", "5"],
        &["agent", "disable", "nope"],
        &["agent", "enrol-code", "nope"],
    ] {
        let (code, _, _) = collector_cli(&data, None, refused);
        assert_eq!(code, 1, "{refused:?}");
    }
    let (token, _) = run_ok(
        &data,
        &["agent", "add", "a1", "--opd", "dinkes", "--print-token"],
    );
    let (code, _) = run_ok(&data, &["agent", "enrol-code", "a1"]);
    run_ok(&data, &["agent", "disable", "a1"]);
    run_ok(&data, &["agent", "enable", "a1"]);
    let (rotated, _) = run_ok(&data, &["agent", "rotate", "a1", "--expires", "90d"]);
    run_ok(&data, &["agent", "revoke", "a1"]);
    let now = now_ms();
    run_ok(
        &data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--from",
            &rfc3339(now - 3_600_000),
            "--to",
            &rfc3339(now),
            "--reason",
            "ganti router",
            "--by",
            "budi",
        ],
    );
    run_ok(
        &data,
        &[
            "incident-note",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--start",
            &rfc3339(now - 1_800_000),
            "--note",
            "kabel putus",
            "--by",
            "budi",
        ],
    );
    run_ok(&data, &["ca", "init", "--name", "pantau.example.invalid"]);
    // `key rotate` needs a key: the first report makes it.
    let day = local_date(now, 8);
    day_report(&data, &day, &dir.path().join("r"), "json", &[]);
    run_ok(&data, &["key", "rotate"]);

    let log = entries(&data);
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "opd.add",
            "opd.contract",
            "agent.add",
            "enrol.code",
            "agent.disable",
            "agent.enable",
            "agent.rotate",
            "agent.revoke",
            "maintenance.create",
            "incident.note",
            "ca.init",
            "report.sign",
            "key.rotate",
        ]
    );
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = text.trim();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e["seq"].as_i64(), Some(i as i64 + 1), "{e}");
        assert_eq!(e["actor_kind"], "cli-user", "{e}");
        assert!(!e["actor_name"].as_str().unwrap().is_empty(), "{e}");
        let source = e["source"].as_str().unwrap();
        assert!(
            source.starts_with("cli:") && source.ends_with(&format!("@{host}")),
            "{e}"
        );
        assert_eq!(e["hash"].as_str().unwrap().len(), 64, "{e}");
    }
    assert_eq!(log[0]["object"], "dinkes");
    assert_eq!(log[0]["after"]["name"], "Dinas Kesehatan");
    assert_eq!(log[1]["before"]["mbps"], Value::Null);
    assert_eq!(log[1]["after"]["mbps"], 20.0);
    assert_eq!(log[2]["after"]["opd"], "dinkes");
    assert_eq!(log[3]["object"], "a1");
    assert!(log[3]["after"]["expires_at_ms"].as_i64().unwrap() > now);
    assert_eq!(log[4]["before"]["disabled"], false);
    assert_eq!(log[4]["after"]["disabled"], true);
    assert_eq!(log[5]["before"]["disabled"], true);
    assert_eq!(log[5]["after"]["disabled"], false);
    assert_eq!(log[6]["before"]["expires_at_ms"], Value::Null);
    assert!(log[6]["after"]["expires_at_ms"].as_i64().unwrap() > now);
    assert_eq!(log[7]["before"]["revoked"], false);
    assert_eq!(log[7]["after"]["revoked"], true);
    assert_eq!(log[8]["after"]["reason"], "ganti router");
    assert_eq!(log[8]["after"]["opd"], "dinkes");
    assert_eq!(log[9]["after"]["note"], "kabel putus");
    assert!(log[10]["after"]["fingerprint"].as_str().is_some());
    let d = day.replace('-', "");
    assert_eq!(
        log[11]["object"],
        format!("PANTAU/provinsi/{d}-{d}"),
        "{}",
        log[11]
    );
    assert_eq!(log[11]["after"]["issued_given"], false);
    assert_eq!(
        log[11]["after"]["manifest_sha256"].as_str().unwrap().len(),
        64
    );
    let (old, new) = (
        &log[12]["before"]["public_key"],
        &log[12]["after"]["public_key"],
    );
    assert!(
        old.is_string() && new.is_string() && old != new,
        "{}",
        log[12]
    );
    assert_eq!(log[11]["after"]["public_key"], *old);
    // Secrets never reach the log: not the tokens, not the enrolment code.
    let all = serde_json::to_string(&log).unwrap();
    for secret in [token.trim(), code.trim(), rotated.trim()] {
        assert!(
            !secret.is_empty() && !all.contains(secret),
            "{secret} in the log"
        );
    }
    // The human listing shows the same entries.
    let (list, _) = run_ok(&data, &["audit", "list"]);
    assert!(list.contains("agent.disable\ta1\t"), "{list}");
    assert!(list.contains("13 entri / entries"), "{list}");
    let (ok, _) = run_ok(&data, &["verify-audit"]);
    assert!(ok.starts_with("OK: 13 entri audit utuh"), "{ok}");
    // --since drops older entries.
    let (later, _) = run_ok(&data, &["audit", "list", "--json", "--since", "2999-01-01"]);
    assert!(later.is_empty(), "{later}");
}

/// Run `sql` with the append-only triggers dropped (as an attacker with the
/// file would), then `verify-audit`: exit code and stderr.
fn tamper(data: &Path, sql: &str) -> (i32, String) {
    let c = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    c.execute_batch(&format!(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {sql}"
    ))
    .unwrap();
    drop(c);
    let (code, _, err) = collector_cli(data, None, &["verify-audit"]);
    (code, err)
}

#[test]
fn verify_audit_names_the_first_edited_removed_or_reordered_seq() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "edit",
            "UPDATE audit_log SET after = '{\"id\":\"opd3\",\"name\":\"Palsu\"}' WHERE seq = 3",
            3,
        ),
        ("delete", "DELETE FROM audit_log WHERE seq = 2", 2),
        (
            "swap",
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = -1",
            2,
        ),
    ];
    for (name, sql, seq) in cases {
        let data = dir.path().join(name);
        five_entries(&data);
        run_ok(&data, &["verify-audit"]);
        // The triggers refuse a plain edit.
        let c = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
        let e = c
            .execute("DELETE FROM audit_log WHERE seq = 5", [])
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        drop(c);
        let (code, err) = tamper(&data, sql);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains(&format!("audit chain broken at seq {seq}:")),
            "{name}: {err}"
        );
    }
    // An exported file is checked the same way, by anyone.
    let data = dir.path().join("export");
    five_entries(&data);
    let (jsonl, _) = run_ok(&data, &["audit", "export"]);
    let file = dir.path().join("audit.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let (ok, _) = run_ok(&data, &["verify-audit", "--file", file.to_str().unwrap()]);
    assert!(ok.starts_with("OK: 5 entri audit utuh"), "{ok}");
    std::fs::write(&file, jsonl.replacen("OPD 4", "OPD X", 1)).unwrap();
    let (code, _, err) = collector_cli(
        &data,
        None,
        &["verify-audit", "--file", file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("audit chain broken at seq 4:"), "{err}");
    let lines: Vec<&str> = jsonl.lines().collect();
    let dropped = [&lines[..2], &lines[3..]].concat().join("\n");
    std::fs::write(&file, dropped).unwrap();
    let (code, _, err) = collector_cli(
        &data,
        None,
        &["verify-audit", "--file", file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("audit chain broken at seq 3:"), "{err}");
}

fn receive(sock: &std::net::UdpSocket) -> String {
    let mut buf = [0u8; 65_536];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("a syslog datagram within the socket's read timeout");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn entries_reach_syslog_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!("[audit]\nsyslog = \"udp://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    // Forwarded as each command records it.
    let (code, out, err) = collector_cli(
        &data,
        Some(&cfg),
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let msg = receive(&sock);
    assert!(msg.starts_with("<85>1 "), "{msg}");
    assert!(
        msg.contains(" pantau-collector - audit [pantau@32473 seq=\"1\" action=\"opd.add\""),
        "{msg}"
    );
    let json = &msg[msg.find("] {").unwrap() + 2..];
    let e: Value = serde_json::from_str(json).unwrap();
    assert_eq!(e["after"]["name"], "Dinas Kesehatan");
    run_ok(&data, &["opd", "add", "bappeda", "--name", "Bappeda"]);
    // `audit export --syslog` sends the whole log again.
    let (out, _) = run_ok(
        &data,
        &[
            "audit",
            "export",
            "--syslog",
            &format!("udp://127.0.0.1:{port}"),
        ],
    );
    assert!(out.contains("2 entri dikirim"), "{out}");
    let a = receive(&sock);
    let b = receive(&sock);
    assert!(
        a.contains("seq=\"1\"") && b.contains("seq=\"2\""),
        "{a}\n{b}"
    );
    assert!(b.contains("object=\"bappeda\""), "{b}");
    // A bad address is named with its key and file.
    std::fs::write(&cfg, "[audit]\nsyslog = \"tcp://x\"\n").unwrap();
    let (code, _, err) = collector_cli(&data, Some(&cfg), &["audit", "list"]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("audit.syslog") && err.contains("collector.toml"),
        "{err}"
    );
}

#[test]
fn a_bundle_carries_the_audit_entries_of_its_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    // Yesterday (WITA) and a window in it; another window a month earlier.
    let day = local_date(now_ms() - 86_400_000, 8);
    let d = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap();
    let day0 = d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - 8 * 3_600_000;
    let window = |from: i64, reason: &str| {
        run_ok(
            &data,
            &[
                "maintenance",
                "--opd",
                "dinkes",
                "--from",
                &rfc3339(from),
                "--to",
                &rfc3339(from + 3_600_000),
                "--reason",
                reason,
                "--by",
                "budi",
            ],
        );
    };
    window(day0 + 600 * 60_000, "ganti router");
    window(day0 - 30 * 86_400_000, "bulan lalu");
    let out = dir.path().join("bundle");
    day_report(&data, &day, &out, "json", &[]);
    let text = std::fs::read_to_string(out.join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["action"], "maintenance.create");
    assert_eq!(lines[0]["after"]["reason"], "ganti router");
    assert_eq!(lines[0]["seq"], 2);
    // The entry is the one in the collector's log, hashes included.
    assert_eq!(lines[0], entries(&data)[1]);
    let manifest = std::fs::read_to_string(out.join("MANIFEST.txt")).unwrap();
    assert!(manifest.contains("audit.jsonl"), "{manifest}");
    let (code, stdout, err) = collector_cli(&data, None, &["verify", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("1 entri, rantai utuh"), "{stdout}");
    // The independent script checks the chain segment too.
    let script = out.join("pantau-recompute.py");
    let run = |bundle: &Path| {
        let o = Command::new("python3")
            .arg(&script)
            .arg(bundle)
            .output()
            .expect("python3 is installed");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, text_ok) = run(&out);
    assert_eq!(code, 0, "{text_ok}");
    assert!(text_ok.contains("audit log: 1 entri"), "{text_ok}");
    // The archive from the HTTP API carries the same entry, checked by verify.
    let mut c = Collector::start(&data);
    let (code, body) = http_get_bytes(
        c.http,
        &format!("/api/v1/report?opd=dinkes&from={day}&to={day}&format=json&bundle=1"),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    c.proc.terminate();
    let tar = dir.path().join("bundel.tar");
    std::fs::write(&tar, &body).unwrap();
    let (code, stdout, err) = collector_cli(&data, None, &["verify", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("1 entri, rantai utuh"), "{stdout}");
    // An edited audit.jsonl: verify fails, and so does the script.
    let copy = dir.path().join("edited");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(&out).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
    }
    std::fs::write(
        copy.join("audit.jsonl"),
        text.replace("ganti router", "ganti ruter"),
    )
    .unwrap();
    let (code, _, err) = collector_cli(&data, None, &["verify", copy.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("audit.jsonl"), "{err}");
    let (code, text_bad) = run(&copy);
    assert_eq!(code, 1, "{text_bad}");
    assert!(text_bad.contains("audit seq 2"), "{text_bad}");
}

#[test]
fn a_redeemed_enrolment_code_is_recorded_with_the_agent_and_its_peer() {
    let data = tempfile::tempdir().unwrap();
    run_ok(data.path(), &["opd", "add", "dinkes", "--name", "Dinkes"]);
    let collector = Collector::start(data.path());
    let (code, _) = run_ok(
        data.path(),
        &["agent", "add", "dinkes-1", "--opd", "dinkes"],
    );
    let (shown, _) = run_ok(data.path(), &["ca", "show"]);
    let fingerprint = shown.lines().nth(1).unwrap().trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = enroll_agent(
        &collector.agent_url(),
        &fingerprint,
        dir.path(),
        CodeFrom::File(code.trim()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = entries(data.path());
    let e = log
        .iter()
        .find(|e| e["action"] == "enrol.redeem")
        .unwrap_or_else(|| panic!("no enrol.redeem entry: {log:?}"));
    assert_eq!(e["actor_kind"], "agent");
    assert_eq!(e["actor_name"], "dinkes-1");
    assert_eq!(e["after"]["opd"], "dinkes");
    assert!(
        e["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{e}"
    );
    let token = std::fs::read_to_string(dir.path().join("etc/agent.token")).unwrap();
    assert!(!serde_json::to_string(&log).unwrap().contains(token.trim()));
    run_ok(data.path(), &["verify-audit"]);
}
