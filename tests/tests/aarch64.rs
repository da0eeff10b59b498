//! The aarch64 (Raspberry Pi class) build of the agent, cross-built by
//! deploy/cross/build-aarch64.sh, run under qemu-user on this x86_64 machine:
//! it is really an AArch64 executable, it probes loopback targets with
//! `check`, its results reach a real x86_64 collector, and its .deb says
//! Architecture: arm64.
//!
//! No ICMP target here: qemu-user 7.2 does not emulate SO_TIMESTAMPNS, so the
//! ICMP probe fails under qemu with ENOPROTOOPT (a qemu limit, not the
//! binary's; on a real arm64 kernel the option exists).
//!
//! tests/run.sh runs the cross build first. Without the binary (or qemu) the
//! tests say so and pass on a developer machine, and fail when CI is set.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const TRIPLE: &str = "aarch64-unknown-linux-gnu";
/// qemu-aarch64 loads the arm64 libc6 that dpkg multiarch installed
/// (/lib/ld-linux-aarch64.so.1 and /lib/aarch64-linux-gnu/), as on a Pi.
/// Not /usr/aarch64-linux-gnu: that loader (libc6-arm64-cross) would pick up
/// the multiarch libc.so.6 of another glibc build and hang in pthread_create.
const SYSROOT: &str = "/";

fn cross_dir() -> PathBuf {
    repo("target/cross")
}

/// The cross-built agent, or None (after saying why) outside CI.
fn cross_agent() -> Option<PathBuf> {
    let exe = cross_dir().join(TRIPLE).join("release/pantau-agent");
    let qemu = Command::new("qemu-aarch64").arg("--version").output();
    let problem = if !exe.is_file() {
        Some(format!("{} is missing", exe.display()))
    } else if !qemu.as_ref().is_ok_and(|o| o.status.success()) {
        Some("qemu-aarch64 cannot run (apt-get install qemu-user)".to_string())
    } else if !Path::new(SYSROOT)
        .join("lib/ld-linux-aarch64.so.1")
        .exists()
    {
        Some("no arm64 loader /lib/ld-linux-aarch64.so.1 (apt-get install libc6:arm64)".to_string())
    } else {
        None
    };
    match problem {
        None => Some(exe),
        Some(p) => {
            let msg = format!("aarch64 agent cannot run: {p}; run deploy/cross/build-aarch64.sh");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("SKIP (CI not set): {msg}");
            None
        }
    }
}

/// `qemu-aarch64 -L SYSROOT EXE` as a Command.
fn qemu(exe: &Path) -> Command {
    let mut c = Command::new("qemu-aarch64");
    c.arg("-L").arg(SYSROOT).arg(exe);
    c
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// ELF class and machine of a file: (2, 183) is 64-bit AArch64, (2, 62) x86-64.
fn elf_class_machine(path: &Path) -> (u8, u16) {
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(&head[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(head[5], 1, "little-endian");
    (head[4], u16::from_le_bytes([head[18], head[19]]))
}

/// A loopback HTTP server answering every request with 200 and a short body.
fn http_ok() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

#[test]
fn aarch64_binary_is_arm64_and_reports_the_same_version() {
    let Some(exe) = cross_agent() else { return };
    assert_eq!(elf_class_machine(&exe), (2, 183), "64-bit AArch64 ELF");
    assert_eq!(
        elf_class_machine(&bin("pantau-agent")),
        (2, 62),
        "the host build is x86-64"
    );
    let cross = qemu(&exe).arg("--version").output().expect("run qemu");
    let (out, err) = text(&cross);
    assert!(cross.status.success(), "{out}{err}");
    let host = Command::new(bin("pantau-agent"))
        .arg("--version")
        .output()
        .expect("run host agent");
    assert_eq!(out, text(&host).0);
    assert!(
        out.starts_with(&format!("pantau-agent {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
}

#[test]
fn aarch64_agent_check_probes_loopback_targets_under_qemu() {
    let Some(exe) = cross_agent() else { return };
    let dir = tempfile::tempdir().unwrap();
    let open = open_port();
    let closed = closed_port();
    let web = http_ok();
    let dns = dns_responder();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"rpi\"\n[defaults]\ntimeout = \"5s\"\n\
             [[targets]]\nid = \"svc\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n\
             [[targets]]\nid = \"down\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{closed}\"\n\
             [[targets]]\nid = \"web\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"http://127.0.0.1:{web}/\"\n\
             [[targets]]\nid = \"dns-ok\"\ngroup = \"intranet\"\nkind = \"dns\"\naddress = \"pantau.test\"\nserver = \"{dns}\"\n\
             [[targets]]\nid = \"dns-nx\"\ngroup = \"intranet\"\nkind = \"dns\"\naddress = \"missing.pantau.test\"\nserver = \"{dns}\"\n"
        ),
    )
    .unwrap();
    let out = qemu(&exe)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run qemu");
    let (table, err) = text(&out);
    // Two targets fail on purpose (refused port, NXDOMAIN): exit status 1.
    assert_eq!(out.status.code(), Some(1), "{table}\n{err}");
    assert!(table.starts_with("GROUP"), "{table}");
    let row = |id: &str| -> String {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row for {id} in\n{table}"))
            .to_string()
    };
    for ok in ["svc", "web", "dns-ok"] {
        let r = row(ok);
        assert!(r.contains(" OK"), "{r}");
        assert!(!r.contains("GAGAL"), "{r}");
    }
    let down = row("down");
    assert!(
        down.contains("GAGAL/refused") && down.contains("Connection refused"),
        "{down}"
    );
    let nx = row("dns-nx");
    assert!(nx.contains("GAGAL/dns_error"), "{nx}");
    assert!(table.contains("3 of 5 probes OK"), "{table}");
}

#[test]
fn aarch64_agent_results_arrive_at_an_x86_64_collector() {
    let Some(exe) = cross_agent() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "kantor-kecil", "rpi-1");
    let collector = Collector::start(&data);
    let open = open_port();
    let closed = closed_port();
    let dns = dns_responder();
    let cfg = agent_config(
        dir.path(),
        "rpi-1",
        &collector.grpc.to_string(),
        &token,
        "heartbeat_interval = \"1s\"",
        &format!(
            r#"[defaults]
interval = "1s"
timeout = "900ms"

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
id = "dns-ok"
group = "intranet"
kind = "dns"
address = "pantau.test"
server = "{dns}"
"#,
            http = collector.http,
        ),
    );
    let child = qemu(&exe)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the aarch64 agent under qemu");
    let mut agent = Proc {
        child,
        name: "pantau-agent (aarch64, qemu)",
    };

    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let targets = ["tcp-open", "tcp-closed", "web-ok", "dns-ok"];
    wait_for("three results per target", Duration::from_secs(90), || {
        if let Some(st) = agent.child.try_wait().expect("wait") {
            panic!("the aarch64 agent exited early: {st:?}");
        }
        let n: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM (SELECT target_id FROM result WHERE kind != 'heartbeat'
                 AND agent_id = 'rpi-1' GROUP BY target_id HAVING COUNT(*) >= 3)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (n == targets.len() as i64).then_some(())
    });
    // qemu-user hands SIGTERM to the agent, which stops cleanly.
    let status = agent.terminate();
    assert!(status.success(), "agent exit status {status:?}");

    let mut st = db
        .prepare(
            "SELECT target_id, outcome, data, opd_id FROM result
             WHERE kind != 'heartbeat' AND agent_id = 'rpi-1'",
        )
        .unwrap();
    let rows: Vec<(String, String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(rows.len() >= 12, "{} rows", rows.len());
    for (target, outcome, data, opd) in &rows {
        assert_eq!(opd, "kantor-kecil", "OPD comes from the token");
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        let want = match target.as_str() {
            "tcp-open" => {
                assert!(data["connect_us"].as_u64().unwrap() > 0, "{data}");
                "ok"
            }
            "tcp-closed" => "refused",
            "web-ok" => {
                assert_eq!(data["status"], 200, "{data}");
                "ok"
            }
            "dns-ok" => {
                assert_eq!(data["answers"], 1, "{data}");
                "ok"
            }
            other => panic!("unexpected target {other}"),
        };
        assert_eq!(outcome, want, "outcome of {target}");
    }
    // Sequences from the aarch64 spool: one epoch, 1..=max, no gap.
    let (epochs, min, max, count): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT COUNT(DISTINCT epoch), MIN(seq), MAX(seq), COUNT(*) FROM result
             WHERE agent_id = 'rpi-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((epochs, min), (1, 1));
    assert_eq!(count, max, "stored sequences have a gap");
    let m = collector.metrics();
    assert_eq!(
        metric(
            &m,
            "pantau_probe_success",
            &[("agent", "rpi-1"), ("target", "tcp-open")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn aarch64_deb_says_arm64_and_ships_the_arm64_binary() {
    if cross_agent().is_none() {
        return;
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(cross_dir().join("debian"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("pantau-agent_") && n.ends_with("_arm64.deb")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let [deb] = debs.as_slice() else {
        panic!(
            "want one pantau-agent_*_arm64.deb in target/cross/debian (deploy/cross/build-aarch64.sh), found {debs:?}"
        );
    };
    let field = |name: &str| -> String {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg(name)
            .output()
            .expect("run dpkg-deb");
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0.trim().to_string()
    };
    assert_eq!(field("Architecture"), "arm64");
    assert_eq!(field("Package"), "pantau-agent");
    assert_eq!(
        field("Version"),
        env!("CARGO_PKG_VERSION").to_string() + "-1"
    );
    let tree = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(tree.path())
        .output()
        .expect("run dpkg-deb -x");
    assert!(out.status.success(), "{}", text(&out).1);
    let shipped = tree.path().join("usr/bin/pantau-agent");
    assert_eq!(elf_class_machine(&shipped), (2, 183), "packaged binary");
    // Completions and man page, generated by running the aarch64 binary.
    for f in [
        "usr/share/bash-completion/completions/pantau-agent",
        "usr/share/man/man1/pantau-agent.1.gz",
    ] {
        let p = tree.path().join(f);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{f} not in the .deb: {e}"))
            .len();
        assert!(len > 0, "{f} is empty");
    }
}
