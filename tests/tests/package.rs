//! Debian packages: built with cargo-deb from the binaries the suite already
//! built (debug profile, stripped: seconds instead of a release build with
//! LTO), installed with dpkg on this machine, units checked with
//! `systemd-analyze verify`, files and users checked, then purged.
//!
//! Needs root (dpkg) and cargo-deb; tests/run.sh installs cargo-deb.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// `cargo deb` for one package, from the existing binaries; returns the .deb.
fn build_deb(package: &str, out_dir: &Path) -> PathBuf {
    // Make sure the binaries exist (same profile as this test), and generate
    // the completions and man pages the packages ship from them.
    let bins = bin_dir();
    run_ok(Command::new(repo("deploy/debian/gen-assets.sh")).arg(bins));
    let mut cmd = Command::new(env!("CARGO"));
    // Cargo's per-crate variables of this test process are not cargo-deb's.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            || k.starts_with("RUSTC")
            || k == "OUT_DIR"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.current_dir(repo("."))
        .args([
            "deb",
            "--locked",
            "--no-build",
            "--fast",
            "-p",
            package,
            "-o",
        ])
        .arg(out_dir);
    if !bins.ends_with("release") {
        // cargo-deb warns that the dev profile is for testing only; that is
        // what this is. Release packages: `cargo deb -p PACKAGE`.
        cmd.args(["--profile", "dev"]);
    }
    let out = output(&mut cmd);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "cargo deb -p {package} failed (is cargo-deb installed? tests/run.sh installs it):\n{text}"
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let deb = PathBuf::from(deb.lines().last().unwrap_or_default());
    assert!(
        deb.is_file(),
        "no .deb reported by cargo deb: {deb:?}\n{text}"
    );
    deb
}

fn status(package: &str) -> String {
    let out = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn purge(package: &str) -> String {
    run_ok(Command::new("dpkg").args(["--purge", package]))
}

/// Purges the package if the test stops half-way.
struct Installed(&'static str);

impl Drop for Installed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("dpkg").args(["--purge", self.0]).status();
        }
    }
}

/// A system account: (uid, home, shell).
fn account(user: &str) -> Option<(u32, String, String)> {
    let out = output(Command::new("getent").args(["passwd", user]));
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[5].to_string(), f[6].to_string()))
}

fn verify_unit(unit: &Path) {
    let out = output(Command::new("systemd-analyze").arg("verify").arg(unit));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify {unit:?}:\n{text}"
    );
    // Any remark about our own unit (unknown key, bad value) is a failure too.
    let name = unit.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        !text.contains(&name),
        "systemd-analyze has remarks on {name}:\n{text}"
    );
}

/// Files of one package and what must hold for them.
struct Pkg {
    name: &'static str,
    user: &'static str,
    binary: &'static str,
    unit: &'static str,
    unit_source: &'static str,
    conf: &'static str,
    conf_source: &'static str,
}

const AGENT: Pkg = Pkg {
    name: "pantau-agent",
    user: "pantau-agent",
    binary: "/usr/bin/pantau-agent",
    unit: "/lib/systemd/system/pantau-agent.service",
    unit_source: "deploy/systemd/pantau-agent.service",
    conf: "/etc/pantau/agent.toml",
    conf_source: "deploy/config/agent.example.toml",
};

const COLLECTOR: Pkg = Pkg {
    name: "pantau-collector",
    user: "pantau-collector",
    binary: "/usr/bin/pantau-collector",
    unit: "/lib/systemd/system/pantau-collector.service",
    unit_source: "deploy/systemd/pantau-collector.service",
    conf: "/etc/pantau/collector.toml",
    conf_source: "deploy/config/collector.example.toml",
};

/// The shell completions and man pages of a package: installed where the
/// shells and man look, generated from the binary itself (they name its
/// subcommands), and parseable.
fn check_docs(p: &Pkg, subcommands: &[&str]) {
    let bash = format!("/usr/share/bash-completion/completions/{}", p.name);
    let zsh = format!("/usr/share/zsh/vendor-completions/_{}", p.name);
    let fish = format!("/usr/share/fish/vendor_completions.d/{}.fish", p.name);
    for f in [&bash, &zsh, &fish] {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        for sub in subcommands {
            assert!(text.contains(sub), "{f} does not complete `{sub}`");
        }
    }
    run_ok(Command::new("bash").arg("-n").arg(&bash));
    let page = format!("/usr/share/man/man1/{}.1.gz", p.name);
    assert!(Path::new(&page).is_file(), "{page} not installed");
    for sub in subcommands {
        let sub_page = format!("/usr/share/man/man1/{}-{sub}.1.gz", p.name);
        assert!(Path::new(&sub_page).is_file(), "{sub_page} not installed");
    }
    let out = output(
        Command::new("man")
            .args(["-l", "--warnings=all"])
            .arg(&page)
            .env("MANWIDTH", "100"),
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    let warnings = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "man -l {page}: {warnings}");
    assert!(
        warnings.trim().is_empty(),
        "man -l {page} warns:\n{warnings}"
    );
    assert!(shown.contains("SUBCOMMANDS"), "{shown}");
    for sub in subcommands {
        assert!(
            shown.contains(&format!("{}-{sub}(1)", p.name)),
            "{sub} not in {page}:\n{shown}"
        );
    }
    assert!(shown.contains("EXIT STATUS"), "{shown}");
    if p.name == "pantau-agent" {
        let toml5 = "/usr/share/man/man5/pantau-agent.toml.5.gz";
        assert!(Path::new(toml5).is_file(), "{toml5} not installed");
    }
}

fn check_installed(p: &Pkg) {
    assert_eq!(status(p.name), "install ok installed");
    let version = run_ok(Command::new(p.binary).arg("--version"));
    assert!(version.contains(p.name), "{version}");
    assert_eq!(
        std::fs::read_to_string(p.unit).unwrap(),
        std::fs::read_to_string(repo(p.unit_source)).unwrap(),
        "installed unit differs from {}",
        p.unit_source
    );
    assert_eq!(
        std::fs::read_to_string(p.conf).unwrap(),
        std::fs::read_to_string(repo(p.conf_source)).unwrap()
    );
    let conffiles = run_ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", p.name]));
    assert!(
        conffiles.contains(p.conf),
        "{} is not a conffile: {conffiles}",
        p.conf
    );
    let (uid, home, shell) = account(p.user).unwrap_or_else(|| panic!("no user {}", p.user));
    assert!(uid < 1000, "{} is not a system user (uid {uid})", p.user);
    assert_eq!(home, format!("/var/lib/{}", p.name));
    assert_eq!(shell, "/usr/sbin/nologin");
    let unit = std::fs::read_to_string(p.unit).unwrap();
    for line in [
        format!("User={}", p.user),
        format!("StateDirectory={}", p.name),
        "NoNewPrivileges=yes".to_string(),
        "ProtectSystem=strict".to_string(),
        "ProtectHome=yes".to_string(),
        "PrivateTmp=yes".to_string(),
    ] {
        assert!(unit.lines().any(|l| l == line), "{} lacks {line}", p.unit);
    }
    verify_unit(Path::new(p.unit));
}

fn check_removed(p: &Pkg) {
    let s = status(p.name);
    assert!(
        s.is_empty() || s.contains("not-installed"),
        "{} still known to dpkg: {s}",
        p.name
    );
    for f in [p.binary, p.unit, p.conf] {
        assert!(!Path::new(f).exists(), "{f} left after purge");
    }
    assert!(
        !Path::new(&format!(
            "/etc/systemd/system/multi-user.target.wants/{}.service",
            p.name
        ))
        .exists()
    );
    // The system user stays (Debian practice), so a reinstall keeps ownership.
    assert!(account(p.user).is_some(), "{} removed", p.user);
}

#[test]
fn debian_packages_install_verify_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    // A leftover from an interrupted run would make every check meaningless.
    for p in [&AGENT, &COLLECTOR] {
        if status(p.name).contains(" installed") {
            purge(p.name);
        }
    }
    let agent_deb = build_deb(AGENT.name, tmp.path());
    let collector_deb = build_deb(COLLECTOR.name, tmp.path());
    let contents = run_ok(Command::new("dpkg-deb").arg("-c").arg(&collector_deb));
    for f in [
        "./usr/share/pantau-collector/prometheus/rules/alerts.yml",
        "./usr/share/pantau-collector/prometheus/rules/recording.yml",
        "./usr/share/pantau-collector/alertmanager/alertmanager.yml",
        "./usr/share/pantau-collector/alertmanager/templates/pantau.tmpl",
        "./usr/share/pantau-collector/grafana/dashboards/pantau-provinsi.json",
        "./usr/share/pantau-collector/grafana/provisioning/datasources/pantau.yml",
        "./usr/share/doc/pantau-collector/INSTALL.md",
    ] {
        assert!(contents.contains(f), "{f} not in the collector package");
    }

    // --- agent --------------------------------------------------------------
    let _guard = Installed(AGENT.name);
    run_ok(Command::new("dpkg").arg("-i").arg(&agent_deb));
    check_installed(&AGENT);
    check_docs(&AGENT, &["run", "check", "enroll", "completions", "man"]);

    // Install the .deb, enrol, done: enroll replaces the packaged example
    // configuration without --force, pins the collector's CA by the
    // fingerprint `agent add` printed, and leaves a token (not the one-time
    // code) the service user can read.
    let data = tempfile::tempdir().unwrap();
    collector_cmd(data.path(), &["opd", "add", "dinkes", "--name", "Dinkes"]);
    let collector = Collector::start(data.path());
    let (ok, code, _) = collector_run(
        data.path(),
        &["agent", "add", "dinkes-kantor-1", "--opd", "dinkes"],
    );
    assert!(ok, "agent add failed");
    let code = code.trim().to_string();
    let fingerprint = collector_cmd(data.path(), &["ca", "show"])
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let code_file = data.path().join("pantau.code");
    std::fs::write(&code_file, format!("{code}\n")).unwrap();
    let enrolled = run_ok(Command::new(AGENT.binary).args([
        "enroll",
        "--collector",
        &collector.agent_url(),
        "--ca-fingerprint",
        &fingerprint,
        "--code-file",
        &code_file.display().to_string(),
    ]));
    assert!(
        enrolled.contains("Berhasil: agen `dinkes-kantor-1`"),
        "{enrolled}"
    );
    let cfg = pantau_agent::config::AgentConfig::load(Path::new(AGENT.conf))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.agent_id, "dinkes-kantor-1");
    assert_eq!(
        cfg.collector_tls.ca.as_deref(),
        Some(Path::new("/etc/pantau/ca.crt"))
    );
    assert_eq!(
        cfg.spool.dir,
        Path::new("/var/lib/pantau-agent/spool"),
        "the spool of the systemd unit's StateDirectory="
    );
    let meta = run_ok(Command::new("stat").args(["-c", "%U %a", "/etc/pantau/agent.token"]));
    assert_eq!(meta.trim(), "pantau-agent 600");
    let read = run_ok(Command::new("setpriv").args([
        "--reuid=pantau-agent",
        "--regid=pantau-agent",
        "--init-groups",
        "--",
        "cat",
        "/etc/pantau/agent.token",
    ]));
    assert!(read.trim().starts_with("pantau_"), "{read}");
    assert!(!read.contains(&code), "the code is not the token");
    // The mutual-TLS key made at enrolment: private, and readable by the
    // service user that presents it.
    let meta = run_ok(Command::new("stat").args(["-c", "%U %a", "/etc/pantau/agent.key"]));
    assert_eq!(meta.trim(), "pantau-agent 600");
    assert!(Path::new("/etc/pantau/agent.crt").is_file());
    drop(collector);
    let unit = std::fs::read_to_string(AGENT.unit).unwrap();
    for line in [
        "AmbientCapabilities=CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_RAW",
    ] {
        assert!(unit.lines().any(|l| l == line), "agent unit lacks {line}");
    }
    // Reinstalling over a present token tightens it to root:pantau-agent 0640.
    std::fs::write("/etc/pantau/agent.token", "pantau_test_token\n").unwrap();
    run_ok(Command::new("dpkg").arg("-i").arg(&agent_deb));
    let meta = run_ok(Command::new("stat").args(["-c", "%U:%G %a", "/etc/pantau/agent.token"]));
    assert_eq!(meta.trim(), "root:pantau-agent 640");
    // What systemd's StateDirectory= would create; purge removes it.
    std::fs::create_dir_all("/var/lib/pantau-agent/spool").unwrap();
    std::fs::write("/var/lib/pantau-agent/spool/seg", b"x").unwrap();
    purge(AGENT.name);
    check_removed(&AGENT);
    assert!(
        !Path::new("/var/lib/pantau-agent").exists(),
        "spool left after purge"
    );
    assert!(
        !Path::new("/etc/pantau/agent.token").exists(),
        "token left after purge"
    );
    assert!(
        !Path::new("/etc/pantau/ca.crt").exists(),
        "pinned CA left after purge"
    );
    for f in ["/etc/pantau/agent.key", "/etc/pantau/agent.crt"] {
        assert!(!Path::new(f).exists(), "{f} left after purge");
    }

    // --- collector ----------------------------------------------------------
    let _guard = Installed(COLLECTOR.name);
    run_ok(Command::new("dpkg").arg("-i").arg(&collector_deb));
    check_installed(&COLLECTOR);
    check_docs(
        &COLLECTOR,
        &[
            "serve",
            "agent",
            "opd",
            "report",
            "verify",
            "completions",
            "man",
        ],
    );
    assert!(
        !std::fs::read_to_string(COLLECTOR.unit)
            .unwrap()
            .contains("CAP_NET_RAW")
    );
    // The installed binary, config and user work together: an admin command
    // run as the service user creates the database in the state directory.
    std::fs::create_dir_all("/var/lib/pantau-collector").unwrap();
    run_ok(Command::new("chown").args([
        "pantau-collector:pantau-collector",
        "/var/lib/pantau-collector",
    ]));
    run_ok(Command::new("setpriv").args([
        "--reuid=pantau-collector",
        "--regid=pantau-collector",
        "--init-groups",
        "--",
        "/usr/bin/pantau-collector",
        "--config",
        "/etc/pantau/collector.toml",
        "opd",
        "add",
        "dinkes",
        "--name",
        "Dinas Kesehatan",
    ]));
    assert!(Path::new("/var/lib/pantau-collector/pantau.db").is_file());
    let out = purge(COLLECTOR.name);
    check_removed(&COLLECTOR);
    // The evidence database survives a purge, and dpkg says so.
    assert!(
        Path::new("/var/lib/pantau-collector/pantau.db").is_file(),
        "purge deleted the database"
    );
    assert!(out.contains("/var/lib/pantau-collector"), "{out}");
    std::fs::remove_dir_all("/var/lib/pantau-collector").unwrap();
    assert!(
        !Path::new("/etc/pantau").exists(),
        "/etc/pantau left after purge"
    );
}
