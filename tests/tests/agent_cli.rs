//! `pantau-agent check` as an OPD IT officer uses it, and ICMP without
//! permission: a plain-words fix, and the other probes keep running.

mod common;

use std::process::Command;

use common::*;

fn write_cfg(dir: &std::path::Path, targets: &str) -> std::path::PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(
        &p,
        format!("[agent]\nid = \"cek\"\n[defaults]\ntimeout = \"2s\"\n{targets}"),
    )
    .unwrap();
    p
}

#[test]
fn check_prints_a_table_and_fails_when_a_probe_fails() {
    let dir = tempfile::tempdir().unwrap();
    let open = open_port();
    let closed = closed_port();
    let ok_only = write_cfg(
        dir.path(),
        &format!(
            "[[targets]]\nid = \"lo\"\ngroup = \"intranet\"\nkind = \"icmp\"\naddress = \"127.0.0.1\"\n\
             [[targets]]\nid = \"svc\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n"
        ),
    );
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&ok_only)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(table.contains("5/5 replies, loss 0%"), "{table}");
    assert!(table.contains("2 of 2 probes OK"), "{table}");
    assert!(
        table.contains("kolektor / collector: https://127.0.0.1:7470\n"),
        "check names the collector: {table}"
    );

    let with_failure = write_cfg(
        dir.path(),
        &format!(
            "[[targets]]\nid = \"svc\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n\
             [[targets]]\nid = \"down\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{closed}\"\n"
        ),
    );
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&with_failure)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let down = table
        .lines()
        .find(|l| l.contains("down"))
        .expect("row for the failing target");
    assert!(
        down.contains("GAGAL/refused") && down.contains("Connection refused"),
        "{down}"
    );
    assert!(table.contains("1 of 2 probes OK"), "{table}");
}

/// In a fresh network namespace (ping sockets not allowed: ping_group_range
/// defaults to "1 0") and as user nobody without capabilities, ICMP cannot
/// work. The agent must say how to fix it and still run the other probes.
#[test]
fn icmp_without_permission_explains_the_fix_and_other_probes_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_cfg(
        dir.path(),
        "[[targets]]\nid = \"lo\"\ngroup = \"intranet\"\nkind = \"icmp\"\naddress = \"127.0.0.1\"\n\
         [[targets]]\nid = \"svc\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    );
    // nobody must be able to read the config.
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let script = format!(
        "ip link set lo up && exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
         --bounding-set=-all {} check --config {}",
        bin("pantau-agent").display(),
        cfg.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let table = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{table}\nstderr:\n{err}"
    );
    let icmp = table
        .lines()
        .find(|l| l.contains(" lo "))
        .expect("icmp row");
    assert!(icmp.contains("GAGAL"), "{icmp}");
    for hint in [
        "setcap cap_net_raw+ep",
        "AmbientCapabilities=CAP_NET_RAW",
        "ping_group_range",
    ] {
        assert!(icmp.contains(hint), "missing {hint} in {icmp}");
    }
    // The TCP probe still ran: port 9 in an empty namespace refuses.
    let tcp = table
        .lines()
        .find(|l| l.contains(" svc "))
        .expect("tcp row");
    assert!(tcp.contains("GAGAL/refused"), "{tcp}");
}
