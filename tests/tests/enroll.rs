//! `pantau-agent enroll` against a real collector: the files it writes, the
//! agent started with them delivering results, and the refusals (wrong
//! token, collector unreachable, existing configuration without --force).
//! Also the collector's `[enrol]` section handing out the province's
//! standard targets.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::enrol::{CodeFrom, enroll_agent};
use common::*;
use pantau_agent::config::{AgentConfig, ProbeSpec, TokenSource};
use pantau_agent::model::{Group, ProbeKind};

fn enroll(collector: &str, token: &str, dir: &Path, extra: &[&str]) -> Output {
    // Trust the CA of the collector at that address, as an admin copies ca.crt.
    let ca: Vec<std::ffi::OsString> = collector
        .strip_prefix("https://")
        .and_then(ca_for)
        .map(|ca| vec!["--ca".into(), ca.into()])
        .unwrap_or_default();
    Command::new(bin("pantau-agent"))
        .args([
            "enroll",
            "--collector",
            collector,
            "--token",
            token,
            "--config",
        ])
        .arg(dir.join("etc/agent.toml"))
        .arg("--token-file")
        .arg(dir.join("etc/agent.token"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .args(ca)
        .args(extra)
        .output()
        .expect("run pantau-agent enroll")
}

/// The out-of-band path for a token enrolment under mutual TLS: `pantau-agent
/// csr` makes the key (0600) and `agent.csr` next to the configuration to be
/// written, `pantau-collector agent issue-cert` signs it into `agent.crt`.
fn out_of_band_cert(data: &Path, dir: &Path, id: &str) {
    let cfg = dir.join("etc/agent.toml");
    let out = Command::new(bin("pantau-agent"))
        .args(["csr", "--id", id, "--config"])
        .arg(&cfg)
        .output()
        .expect("run pantau-agent csr");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("agent issue-cert"), "{stderr}");
    let csr = dir.join("etc/agent.csr");
    assert_eq!(stdout.trim(), csr.display().to_string());
    let mode = std::fs::metadata(dir.join("etc/agent.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    collector_cmd(
        data,
        &[
            "agent",
            "issue-cert",
            id,
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            dir.join("etc/agent.crt").to_str().unwrap(),
        ],
    );
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn enroll_writes_a_working_configuration_and_the_agent_delivers() {
    let data = tempfile::tempdir().unwrap();
    let token = enrol(data.path(), "dinkes", "dinkes-1");
    let collector = Collector::start(data.path());
    let url = collector.agent_url();
    let dir = tempfile::tempdir().unwrap();

    // Mutual TLS: the token alone is refused with what to do, nothing written.
    let out = enroll(&url, &token, dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a token alone is not enough") && stderr.contains("pantau-agent csr"),
        "{stderr}"
    );
    assert!(!dir.path().join("etc/agent.toml").exists());
    out_of_band_cert(data.path(), dir.path(), "dinkes-1");

    let out = enroll(&url, &token, dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "enroll failed:\n{stdout}\n{stderr}");
    let written = std::fs::read_to_string(dir.path().join("etc/agent.toml")).unwrap();
    assert!(
        written.contains("agent.crt") && written.contains("agent.key"),
        "{written}"
    );
    // Indonesian first, then English.
    let id = stdout.find("Berhasil: agen `dinkes-1` terdaftar di OPD `dinkes` (OPD dinkes)");
    let en = stdout.find("Done: agent `dinkes-1` belongs to OPD `dinkes` (OPD dinkes)");
    assert!(id.is_some() && en.is_some() && id < en, "{stdout}");

    // The token: its own line, mode 0600.
    let token_path = dir.path().join("etc/agent.token");
    assert_eq!(
        std::fs::read_to_string(&token_path).unwrap(),
        format!("{token}\n")
    );
    let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");

    // The configuration loads with the agent's own loader, with the agent id
    // and the default targets from the collector: the collector itself, at
    // the address the agent used, by ICMP and TCP, group datacenter.
    let config = dir.path().join("etc/agent.toml");
    let cfg = AgentConfig::load(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.agent_id, "dinkes-1");
    assert_eq!(cfg.collector_url, url);
    assert_eq!(cfg.token, Some(TokenSource::File(token_path.clone())));
    assert_eq!(cfg.spool.dir, dir.path().join("spool"));
    assert_eq!(cfg.require_token().unwrap(), token);
    let targets: Vec<(&str, Group, ProbeKind, &str)> = cfg
        .targets
        .iter()
        .map(|t| (t.id.as_str(), t.group, t.kind(), t.address.as_str()))
        .collect();
    let tcp_address = collector.grpc.to_string();
    assert_eq!(
        targets,
        [
            (
                "pusat-data-pantau",
                Group::Datacenter,
                ProbeKind::Icmp,
                "127.0.0.1"
            ),
            (
                "pusat-data-pantau-tcp",
                Group::Datacenter,
                ProbeKind::Tcp,
                tcp_address.as_str()
            ),
        ]
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("# OPD: dinkes (OPD dinkes)."), "{written}");

    // Run the agent with exactly these files: its results reach the collector.
    let mut agent = start_agent(&config);
    for target in ["pusat-data-pantau", "pusat-data-pantau-tcp"] {
        let ok = wait_for(
            &format!("a result of {target} at the collector"),
            Duration::from_secs(90),
            || {
                metric(
                    &collector.metrics(),
                    "pantau_probe_success",
                    &[("opd", "dinkes"), ("agent", "dinkes-1"), ("target", target)],
                )
            },
        );
        assert_eq!(ok, 1.0, "{target} probed from the agent");
    }
    let received = metric(
        &collector.metrics(),
        "pantau_ingest_results_total",
        &[("opd", "dinkes")],
    )
    .unwrap_or(0.0);
    assert!(received >= 2.0, "results received: {received}");
    assert!(agent.terminate().success());

    // Enrolling again over the existing configuration is refused without
    // --force and leaves the files as they are.
    let before = std::fs::read_to_string(&config).unwrap();
    let again = enroll(&url, &token, dir.path(), &[]);
    let (_, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(73), "{stderr}");
    assert!(stderr.contains("sudah ada; tidak ditimpa"), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);

    // With --force it is replaced (and still loads).
    let forced = enroll(&url, &token, dir.path(), &["--force"]);
    assert!(forced.status.success(), "{:?}", text(&forced));
    AgentConfig::load(&config).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_wrong_token_or_an_unreachable_collector_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let _token = enrol(data.path(), "bappeda", "bappeda-1");
    let collector = Collector::start(data.path());
    let url = collector.agent_url();

    let dir = tempfile::tempdir().unwrap();
    let wrong = format!("pantau_{}", "0".repeat(64));
    let out = enroll(&url, &wrong, dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("Token ditolak oleh collector"), "{stderr}");
    assert!(
        stderr.contains("The collector rejected the token"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("etc").exists(),
        "nothing may be written for a wrong token"
    );

    let closed = format!("https://127.0.0.1:{}", closed_port());
    let out = enroll(&closed, &wrong, dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Tidak dapat menghubungi collector"),
        "{stderr}"
    );
    assert!(stderr.contains("Cannot reach the collector"), "{stderr}");
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn enrolling_against_the_http_port_names_the_grpc_port() {
    // The HTTP port over TLS (as on a non-loopback address) and in plaintext:
    // both answer, neither is the gRPC port; the agent says so instead of
    // "cannot reach" or "collector too old".
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("collector.toml");
    std::fs::write(&config, "[tls]\nhttps = true\n").unwrap();
    let collector = Collector::start_with(data.path(), "127.0.0.1:0", "127.0.0.1:0", Some(&config));
    let ca = data.path().join("tls/ca.crt");
    let dir = tempfile::tempdir().unwrap();
    let token = format!("pantau_{}", "0".repeat(64));
    let plain_data = tempfile::tempdir().unwrap();
    let plain = Collector::start(plain_data.path());
    for url in [
        format!("https://{}", collector.http),
        format!("https://{}", plain.http),
    ] {
        let out = enroll(&url, &token, dir.path(), &["--ca", ca.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {stdout}{stderr}");
        assert!(
            stderr.contains("bukan port gRPC collector"),
            "{url}: {stderr}"
        );
        assert!(
            stderr.contains("Agents use the gRPC port ([server] grpc_listen"),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains("too old"), "{url}: {stderr}");
        assert!(!dir.path().join("etc").exists());
    }
}

/// Start a collector with a configuration file; returns it and its gRPC address.
fn start_with_config(data: &Path, config: &Path) -> (Proc, String) {
    let mut child = Command::new(bin("pantau-collector"))
        .arg("--config")
        .arg(config)
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pantau-collector");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("no ready line: {line:?}"))
        .to_string();
    register_ca(&grpc, data);
    (
        Proc {
            child,
            name: "pantau-collector",
        },
        grpc,
    )
}

#[test]
fn the_collector_hands_out_the_provinces_standard_targets() {
    let data = tempfile::tempdir().unwrap();
    let token = enrol(data.path(), "dishub", "dishub-1");
    let conf = data.path().join("collector.toml");
    std::fs::write(
        &conf,
        r#"
[enrol]
[[enrol.targets]]
id = "jip-simpul"
group = "jip"
kind = "tcp"
address = "10.254.0.10:443"
label = "Simpul JIP"

[[enrol.targets]]
id = "internet-dns"
group = "internet"
kind = "dns"
address = "www.go.id"
server = "10.10.0.53"
interval = "1m"

[[enrol.targets]]
id = "portal"
group = "app"
kind = "http"
address = "https://portal.sulbarprov.go.id/"
expect_status = [200, 302]
"#,
    )
    .unwrap();
    let (_collector, grpc) = start_with_config(data.path(), &conf);
    let dir = tempfile::tempdir().unwrap();
    out_of_band_cert(data.path(), dir.path(), "dishub-1");
    let out = enroll(&format!("https://{grpc}"), &token, dir.path(), &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let cfg =
        AgentConfig::load(&dir.path().join("etc/agent.toml")).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, Group, ProbeKind, &str)> = cfg
        .targets
        .iter()
        .map(|t| (t.id.as_str(), t.group, t.kind(), t.address.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("jip-simpul", Group::Jip, ProbeKind::Tcp, "10.254.0.10:443"),
            ("internet-dns", Group::Internet, ProbeKind::Dns, "www.go.id"),
            (
                "portal",
                Group::App,
                ProbeKind::Http,
                "https://portal.sulbarprov.go.id/"
            ),
        ]
    );
    assert_eq!(cfg.targets[0].label, "Simpul JIP");
    assert_eq!(cfg.targets[1].interval, Duration::from_secs(60));
    let (ProbeSpec::Dns(dns), ProbeSpec::Http(http)) = (&cfg.targets[1].spec, &cfg.targets[2].spec)
    else {
        panic!("{:?}", cfg.targets)
    };
    assert_eq!(dns.server, Some("10.10.0.53:53".parse().unwrap()));
    assert_eq!(http.expect_status, [(200, 200), (302, 302)]);

    // A bad [enrol] target stops the collector at start-up, naming the key.
    std::fs::write(
        &conf,
        "[[enrol.targets]]\nid = \"x\"\ngroup = \"kantor\"\nkind = \"icmp\"\naddress = \"10.0.0.1\"\n",
    )
    .unwrap();
    let bad = Command::new(bin("pantau-collector"))
        .arg("--config")
        .arg(&conf)
        .args(["opd", "list", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&bad);
    assert_eq!(bad.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("enrol.targets[0].group"), "{stderr}");
}

/// `agent add` or `agent enrol-code`: the code (stdout) and the notes (stderr).
fn issue_code(data: &Path, args: &[&str]) -> (String, String) {
    let (code, out, err) = collector_cli(data, None, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    (out.trim().to_string(), err)
}

#[test]
fn a_one_time_code_and_the_pinned_ca_enrol_an_agent_that_streams_over_tls() {
    let data = tempfile::tempdir().unwrap();
    collector_cmd(data.path(), &["opd", "add", "dinkes", "--name", "Dinkes"]);
    let collector = Collector::start(data.path());
    let url = collector.agent_url();
    let (code, notes) = issue_code(
        data.path(),
        &["agent", "add", "dinkes-1", "--opd", "dinkes"],
    );
    assert!(
        code.starts_with("PE-"),
        "the code alone on stdout: {code:?}"
    );
    // The notes carry the CA fingerprint (as `ca show` prints it) and the command.
    let shown = collector_cmd(data.path(), &["ca", "show"]);
    let fingerprint = shown.lines().nth(1).unwrap().trim().to_string();
    assert!(
        notes.contains(&format!("CA fingerprint (SHA-256): {fingerprint}")),
        "{notes}"
    );
    assert!(
        notes.contains("pantau-agent enroll --collector https://"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("--ca-fingerprint {fingerprint}")),
        "{notes}"
    );
    assert!(!notes.contains(&code), "the code is shown once, on stdout");

    // A wrong fingerprint: refused before the code is presented, nothing written.
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = format!("{}:00", &fingerprint[..fingerprint.len() - 3]);
    let out = enroll_agent(&url, &wrong, wrong_dir.path(), CodeFrom::File(&code));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("Sidik jari CA tidak cocok"), "{stderr}");
    assert!(stderr.contains("CA fingerprint mismatch"), "{stderr}");
    assert!(
        stderr.contains(&fingerprint),
        "the presented CA is named: {stderr}"
    );
    assert!(!wrong_dir.path().join("etc").exists(), "nothing written");

    // The right fingerprint, the code from a file: a fresh token, the CA, a config.
    let dir = tempfile::tempdir().unwrap();
    let out = enroll_agent(&url, &fingerprint, dir.path(), CodeFrom::File(&code));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "enroll failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Berhasil: agen `dinkes-1`"), "{stdout}");
    let token = std::fs::read_to_string(dir.path().join("etc/agent.token")).unwrap();
    let token = token.trim();
    assert!(token.starts_with("pantau_") && token.len() == 71, "{token}");
    assert!(!token.contains(&code) && !code.contains(token));
    let mode = std::fs::metadata(dir.path().join("etc/agent.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let ca = dir.path().join("etc/ca.crt");
    assert_eq!(
        std::fs::read_to_string(&ca).unwrap().trim(),
        std::fs::read_to_string(collector.ca()).unwrap().trim(),
        "the pinned CA is written as ca.crt"
    );
    let config = dir.path().join("etc/agent.toml");
    let cfg = AgentConfig::load(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.agent_id, "dinkes-1");
    assert_eq!(cfg.collector_url, url);
    assert_eq!(cfg.collector_tls.ca.as_deref(), Some(ca.as_path()));
    assert!(!cfg.collector_tls.insecure);

    // The agent runs with these files and its results arrive over TLS.
    let mut agent = start_agent(&config);
    let ok = wait_for(
        "a result of the enrolled agent at the collector",
        Duration::from_secs(90),
        || {
            metric(
                &collector.metrics(),
                "pantau_probe_success",
                &[
                    ("opd", "dinkes"),
                    ("agent", "dinkes-1"),
                    ("target", "pusat-data-pantau-tcp"),
                ],
            )
        },
    );
    assert_eq!(ok, 1.0);
    assert!(agent.terminate().success());

    // The code works once.
    let again_dir = tempfile::tempdir().unwrap();
    let out = enroll_agent(&url, &fingerprint, again_dir.path(), CodeFrom::File(&code));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kode pendaftaran sudah dipakai"),
        "{stderr}"
    );
    assert!(stderr.contains("enrolment code already used"), "{stderr}");
    assert!(!again_dir.path().join("etc").exists(), "nothing written");
    // ...and did not take the enrolled agent's token away.
    let status = Command::new(bin("pantau-agent"))
        .args(["enroll", "--collector", &url, "--token", token, "--force"])
        .arg("--config")
        .arg(&config)
        .arg("--token-file")
        .arg(dir.path().join("etc/agent.token"))
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .arg("--ca")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(status.status.success(), "{:?}", text(&status));

    // A second agent: the code from standard input.
    let (code2, _) = issue_code(
        data.path(),
        &["agent", "add", "dinkes-2", "--opd", "dinkes"],
    );
    let dir2 = tempfile::tempdir().unwrap();
    let out = enroll_agent(&url, &fingerprint, dir2.path(), CodeFrom::Stdin(&code2));
    assert!(out.status.success(), "{:?}", text(&out));
    let token2 = std::fs::read_to_string(dir2.path().join("etc/agent.token")).unwrap();
    assert!(token2.starts_with("pantau_") && token2.trim() != token);
    assert!(!token2.contains(&code2));

    // An expired code is refused and writes nothing.
    let (short, notes) = issue_code(
        data.path(),
        &["agent", "enrol-code", "dinkes-2", "--expires", "1s"],
    );
    assert!(
        notes.contains("One-time enrolment code for `dinkes-2`"),
        "{notes}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let dir3 = tempfile::tempdir().unwrap();
    let out = enroll_agent(&url, &fingerprint, dir3.path(), CodeFrom::File(&short));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("kode pendaftaran kedaluwarsa"), "{stderr}");
    assert!(stderr.contains("enrolment code expired"), "{stderr}");
    assert!(!dir3.path().join("etc").exists(), "nothing written");

    // A fresh code voids the older unused one.
    let (old, _) = issue_code(data.path(), &["agent", "enrol-code", "dinkes-2"]);
    let (_new, _) = issue_code(data.path(), &["agent", "enrol-code", "dinkes-2"]);
    let dir4 = tempfile::tempdir().unwrap();
    let out = enroll_agent(&url, &fingerprint, dir4.path(), CodeFrom::File(&old));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown enrolment code"), "{stderr}");
    assert!(!dir4.path().join("etc").exists(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_enrolment_codes_get_statuses_and_the_collector_keeps_serving() {
    use pantau_proto::v1 as pb;
    use pantau_proto::v1::ingest_client::IngestClient;
    let data = tempfile::tempdir().unwrap();
    let token = tokio::task::block_in_place(|| enrol(data.path(), "dinkes", "dinkes-1"));
    let collector = tokio::task::block_in_place(|| Collector::start(data.path()));
    let mut client = IngestClient::new(grpc_channel(&collector.grpc.to_string()).await);
    let ask = |code: String| pb::EnrolRequest {
        enrol_code: code,
        ..Default::default()
    };
    for (code, want) in [
        ("x".repeat(1 << 20), tonic::Code::Unauthenticated),
        ("PE-AAAAA-AAAAA".to_string(), tonic::Code::Unauthenticated),
        ("\u{0}\u{ffff}".to_string(), tonic::Code::Unauthenticated),
        (String::new(), tonic::Code::Unauthenticated),
    ] {
        let s = client.enrol(ask(code)).await.unwrap_err();
        assert_eq!(s.code(), want, "{s:?}");
    }
    // The collector still serves, and a code never replaces a token it did not name:
    // the agent's token still works for a re-enrolment over the bearer (with
    // its client certificate: mutual TLS).
    let mut client =
        IngestClient::new(common::grpc::channel_as(&collector.grpc.to_string(), "dinkes-1").await);
    let mut req = tonic::Request::new(ask(String::new()));
    req.metadata_mut().insert(
        pantau_proto::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let info = client.enrol(req).await.unwrap().into_inner();
    assert_eq!(info.agent_id, "dinkes-1");
    assert!(info.token.is_empty(), "no new token without a code");
    assert!(
        info.ca_pem.contains("BEGIN CERTIFICATE"),
        "the CA comes along"
    );
    assert_eq!(
        info.ca_pem.trim(),
        std::fs::read_to_string(collector.ca()).unwrap().trim()
    );
}
