//! Shared helpers: build and start the real binaries, local fixtures.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod browser;
pub mod enrol;
pub mod grpc;

/// Directory holding the workspace's binaries, built once per test binary
/// with the same profile as the tests.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        // Cargo's per-crate variables set for this test process would look
        // like changed build-script inputs and force needless rebuilds.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
                || k.starts_with("RUSTC")
                || k == "OUT_DIR"
            {
                cmd.env_remove(&k);
            }
        }
        cmd.current_dir(repo("."));
        cmd.args([
            "build",
            "--locked",
            "--bins",
            "-p",
            "pantau-agent",
            "-p",
            "pantau-collector",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for the binaries");
        assert!(
            status.success(),
            "building pantau-agent and pantau-collector failed"
        );
        dir
    })
}

/// Path of a workspace binary.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Path of a file in the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Run a collector admin command and return its stdout.
pub fn collector_cmd(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run pantau-collector");
    assert!(
        out.status.success(),
        "pantau-collector {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Register an OPD and an agent; returns the agent's token.
pub fn enrol(data_dir: &Path, opd: &str, agent: &str) -> String {
    collector_cmd(
        data_dir,
        &["opd", "add", opd, "--name", &format!("OPD {opd}")],
    );
    let token = collector_cmd(
        data_dir,
        &["agent", "add", agent, "--opd", opd, "--print-token"],
    );
    token.trim().to_string()
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Send SIGTERM and wait for exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running collector with its addresses.
pub struct Collector {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    /// An admin API token made before start ([`admin_token`]); the helpers
    /// below send it to this collector's HTTP port.
    pub token: String,
}

/// Tokens the HTTP helpers send, by HTTP address (`ip:port`, or
/// `namespace/ip:port` inside a network namespace).
fn tokens() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static T: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        OnceLock::new();
    T.get_or_init(Default::default)
}

/// From now on, [`http_get`], [`http_request`] and [`http_get_bytes`] to
/// `addr` send `Authorization: Bearer token`.
pub fn remember_token(addr: &str, token: &str) {
    tokens()
        .lock()
        .unwrap()
        .insert(addr.to_string(), token.to_string());
}

/// The token remembered for `addr`.
pub fn token_for(addr: &str) -> Option<String> {
    tokens().lock().unwrap().get(addr).cloned()
}

/// Make a new admin API token in `data_dir` with `pantau-collector token add`
/// (each call a new name, so restarts on one directory work).
pub fn admin_token(data_dir: &Path) -> String {
    make_token(data_dir, "admin", &[])
}

/// Make an API token with `role` (and `opds` for the `opd` role).
pub fn make_token(data_dir: &Path, role: &str, opds: &[&str]) -> String {
    make_token_in(data_dir, None, role, opds)
}

/// [`make_token`] in the store a configuration file names (`[store] url`).
pub fn make_token_in(data_dir: &Path, config: Option<&Path>, role: &str, opds: &[&str]) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "tests-{role}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut args = vec!["token", "add", name.as_str(), "--role", role];
    for o in opds {
        args.extend(["--opd", o]);
    }
    let (code, out, err) = collector_cli(data_dir, config, &args);
    assert_eq!(code, 0, "pantau-collector {args:?} failed: {err}");
    out.trim().to_string()
}

impl Collector {
    /// Start `pantau-collector serve` on loopback port 0 and wait for its ready line.
    pub fn start(data_dir: &Path) -> Collector {
        Collector::start_at(data_dir, "127.0.0.1:0", "127.0.0.1:0")
    }

    /// Start on given addresses (to restart a collector where agents expect it).
    pub fn start_at(data_dir: &Path, grpc: &str, http: &str) -> Collector {
        Collector::start_with(data_dir, grpc, http, None)
    }

    /// Start on given addresses with a configuration file (flags still
    /// override its listen addresses and data directory).
    pub fn start_with(data_dir: &Path, grpc: &str, http: &str, config: Option<&Path>) -> Collector {
        let mut cmd = Command::new(bin("pantau-collector"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.args([
            "serve",
            "--grpc-listen",
            grpc,
            "--http-listen",
            http,
            "--data-dir",
        ])
        .arg(data_dir)
        .stderr(Stdio::inherit());
        Collector::launch(cmd, data_dir, config)
    }

    /// Start on loopback port 0 with the log written to `log` (no colour;
    /// JSON lines with `json`).
    pub fn start_logged(data_dir: &Path, log: &Path, json: bool) -> Collector {
        let mut cmd = Command::new(bin("pantau-collector"));
        if json {
            cmd.arg("--log-json");
        }
        cmd.args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(log).expect("create the collector log"));
        Collector::launch(cmd, data_dir, None)
    }

    /// [`Collector::start_logged`] (no colour) with a configuration file.
    pub fn start_logged_with(data_dir: &Path, log: &Path, config: &Path) -> Collector {
        let mut cmd = Command::new(bin("pantau-collector"));
        cmd.arg("--config").arg(config).args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ]);
        cmd.arg(data_dir)
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(log).expect("create the collector log"));
        Collector::launch(cmd, data_dir, Some(config))
    }

    /// Spawn `cmd` (a `serve`), read its ready line for the bound
    /// addresses and register its CA. The admin token goes into the
    /// store `config` names, if any (PostgreSQL), else the data directory's.
    fn launch(mut cmd: Command, data_dir: &Path, config: Option<&Path>) -> Collector {
        let token = make_token_in(data_dir, config, "admin", &[]);
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start pantau-collector");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ready line");
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in ready line {line:?}"))
                .parse()
                .expect("address")
        };
        let (grpc, http) = (addr("grpc="), addr("http="));
        register_ca(&grpc.to_string(), data_dir);
        remember_token(&http.to_string(), &token);
        Collector {
            proc: Proc {
                child,
                name: "pantau-collector",
            },
            grpc,
            http,
            data_dir: data_dir.to_path_buf(),
            token,
        }
    }

    /// The CA certificate agents trust (the built-in CA of its data directory).
    pub fn ca(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.crt")
    }

    /// The URL agents use: TLS, the default.
    pub fn agent_url(&self) -> String {
        format!("https://{}", self.grpc)
    }

    /// GET a path on the HTTP listener; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path)
    }

    /// The /metrics text.
    pub fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200);
        body
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Send SIGKILL (a crash or power cut for the process) and reap it.
pub fn kill9(p: &mut Proc) {
    p.child.kill().expect("kill -9");
    p.child.wait().expect("wait");
}

/// A minimal blocking HTTP/1.1 GET, enough for the collector's own endpoints.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (code, _, body) = http_request(addr, "GET", path, Duration::from_secs(10));
    (code, body)
}

/// One blocking HTTP/1.1 request without a body: (status, head, body),
/// a chunked body joined.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    read_timeout: Duration,
) -> (u16, String, String) {
    let auth = token_for(&addr.to_string())
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_send(addr, method, path, &auth, "", read_timeout)
}

/// One blocking HTTP/1.1 request with exactly the given extra header lines
/// (each ending in `\r\n`; no remembered token) and body: (status, head,
/// body), a chunked body joined.
pub fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
    read_timeout: Duration,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(read_timeout)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (code, head.to_string(), body)
}

/// GET with the raw body bytes (a signed archive is binary); the response
/// must carry a length, not chunks.
pub fn http_get_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token_for(&addr.to_string())
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (code, raw[split + 4..].to_vec())
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Start `pantau-agent run` with a config file.
pub fn start_agent(config: &Path) -> Proc {
    let child = Command::new(bin("pantau-agent"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pantau-agent");
    Proc {
        child,
        name: "pantau-agent",
    }
}

/// Start `pantau-agent run` with a config file, its log written to `log`.
pub fn start_agent_logged(config: &Path, log: &Path) -> Proc {
    let child = Command::new(bin("pantau-agent"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the agent log"))
        .spawn()
        .expect("start pantau-agent");
    Proc {
        child,
        name: "pantau-agent",
    }
}

/// Poll `f` every 100 ms until it returns `Some`, or panic after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A TCP listener that accepts and drops connections, on a background thread.
pub fn open_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    port
}

/// A tiny DNS responder: `pantau.test` has one A record (10.255.0.1 is only
/// data here, never contacted), every other name is NXDOMAIN.
pub fn dns_responder() -> SocketAddr {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind dns");
    let addr = sock.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let q = &buf[..n];
            // Question name ends at the first zero label after the header.
            let Some(end) = q[12..].iter().position(|b| *b == 0).map(|p| 12 + p + 5) else {
                continue;
            };
            let name = &q[12..end - 5];
            let found = name == b"\x06pantau\x04test";
            let mut r = q[..end].to_vec();
            r[2] = 0x81; // response, RD
            r[3] = if found { 0x80 } else { 0x83 }; // RA, NOERROR / NXDOMAIN
            r[6..8].copy_from_slice(&(u16::from(found)).to_be_bytes());
            r[8..12].fill(0);
            if found {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 255, 0, 1]);
            }
            let _ = sock.send_to(&r, peer);
        }
    });
    addr
}

/// Value of one exposition line `name{labels} value`, matching every label given.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        if n != name {
            return None;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// A target as an agent's Hello declares it, at a placeholder address.
pub fn decl(
    id: &str,
    group: &str,
    kind: &str,
    interval_ms: u64,
) -> pantau_collector::model::TargetDecl {
    pantau_collector::model::TargetDecl {
        id: id.into(),
        group: pantau_collector::model::Group::parse(group).expect("a group name"),
        kind: pantau_collector::model::ProbeKind::parse(kind).expect("a probe kind name"),
        address: format!("{id}.example.invalid"),
        label: id.into(),
        interval_ms,
        timeout_ms: 5_000,
    }
}

fn identity(opd: &str, agent: &str) -> pantau_collector::model::AgentIdentity {
    pantau_collector::model::AgentIdentity {
        agent_id: agent.into(),
        opd_id: opd.into(),
    }
}

/// Record the Hello of `agent` (enrolled in `opd`) declaring `targets`, as
/// the ingest does when the agent connects.
pub fn declare(
    data: &Path,
    opd: &str,
    agent: &str,
    targets: Vec<pantau_collector::model::TargetDecl>,
) {
    let mut conn = pantau_collector::store::open(data).expect("open store");
    let hello = pantau_collector::model::HelloInfo {
        version: "test".into(),
        config_hash: "x".into(),
        hostname: "h".into(),
        epoch: 1,
        agent_time_ms: None,
        targets,
    };
    pantau_collector::store::record_hello(&mut conn, &identity(opd, agent), &hello, None)
        .expect("record hello");
}

/// Store results of `agent` received at `received_ms` as the writer does:
/// one transaction that also marks their rollup hours dirty.
pub fn store_rows(
    data: &Path,
    opd: &str,
    agent: &str,
    rows: &[pantau_collector::model::ResultRow],
    received_ms: i64,
) {
    let mut conn = pantau_collector::store::open(data).expect("open store");
    let tx = conn.transaction().expect("begin");
    pantau_collector::store::insert_results(&tx, &identity(opd, agent), rows, received_ms)
        .expect("insert results");
    pantau_collector::store::sqlite::rollup::mark_dirty(&tx, opd, rows).expect("mark dirty");
    tx.commit().expect("commit");
}

/// Run `pantau-collector [--config CONFIG] --data-dir DATA ARGS`: exit code,
/// stdout, stderr.
pub fn collector_cli(data: &Path, config: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(bin("pantau-collector"));
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    let out = c
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run pantau-collector");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// [`collector_cli`] without a config file, success as a flag.
pub fn collector_run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = collector_cli(data, None, args);
    (code == 0, out, err)
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The local date (YYYY-MM-DD) of `ms` at a fixed UTC offset in hours.
pub fn local_date(ms: i64, offset_hours: i32) -> String {
    let zone = chrono::FixedOffset::east_opt(offset_hours * 3600).expect("offset");
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time in range")
        .with_timezone(&zone)
        .format("%Y-%m-%d")
        .to_string()
}

/// Percent-encode a query parameter value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of a PDF, laid out (`pdftotext -layout`, poppler-utils).
pub fn pdftotext(p: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(p)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by tests/run.sh");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 text")
}

/// `pantau-collector report --opd all --from DAY --to DAY --format F --out
/// OUT EXTRA...`; the path of the report file it wrote.
pub fn day_report(data: &Path, day: &str, out: &Path, format: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "report",
        "--opd",
        "all",
        "--from",
        day,
        "--to",
        day,
        "--format",
        format,
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend(extra);
    let (ok, stdout, stderr) = collector_run(data, &args);
    assert!(ok, "report failed: {stderr}");
    let p = PathBuf::from(stdout.lines().next().unwrap_or_default());
    assert!(p.exists(), "{p:?} missing; stdout {stdout}");
    p
}

/// Which collector (by its gRPC address) trusts which CA: the built-in CA
/// in the data directory it was started with.
static CAS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// Remember that the collector at `grpc` serves the built-in CA of `data_dir`.
pub fn register_ca(grpc: &str, data_dir: &Path) {
    let mut cas = CAS.lock().unwrap_or_else(|e| e.into_inner());
    cas.retain(|(g, _)| g != grpc);
    cas.push((grpc.to_string(), data_dir.join("tls").join("ca.crt")));
}

/// The CA certificate of the collector started at `grpc`, if one was.
pub fn ca_for(grpc: &str) -> Option<PathBuf> {
    let cas = CAS.lock().unwrap_or_else(|e| e.into_inner());
    cas.iter().find(|(g, _)| g == grpc).map(|(_, p)| p.clone())
}

/// `[collector]` lines for an agent of the collector at `grpc`: https and
/// its CA (without a known CA the web roots apply and the handshake fails;
/// never plaintext).
pub fn collector_toml(grpc: &str) -> String {
    match ca_for(grpc) {
        Some(ca) => format!("url = \"https://{grpc}\"\nca = \"{}\"", ca.display()),
        None => format!("url = \"https://{grpc}\""),
    }
}

/// [`collector_toml`] for a collector that will serve from `data_dir` at
/// `grpc` (for configurations written before it starts).
pub fn collector_toml_in(grpc: &str, data_dir: &Path) -> String {
    register_ca(grpc, data_dir);
    collector_toml(grpc)
}

/// A gRPC channel to the collector at `grpc` over TLS, trusting its CA.
pub async fn grpc_channel(grpc: &str) -> tonic::transport::Channel {
    let ca = ca_for(grpc).unwrap_or_else(|| panic!("no collector started at {grpc}"));
    let pem = std::fs::read(&ca).expect("read collector CA");
    tonic::transport::Channel::from_shared(format!("https://{grpc}"))
        .expect("uri")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        )
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS")
}

/// Write `<dir>/agent.toml` for agent `id` sending to `grpc` with the
/// token in `<dir>/token` and its spool in `<dir>/spool`; `agent_extra` is
/// added to the `[agent]` table (TOML lines, may be empty) and `rest`
/// appended verbatim (e.g. `[defaults]` and `[[targets]]`). Returns the path.
pub fn agent_config(
    dir: &std::path::Path,
    id: &str,
    grpc: &str,
    token: &str,
    agent_extra: &str,
    rest: &str,
) -> std::path::PathBuf {
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("write token");
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"{id}\"\n{agent_extra}\n\n[collector]\n{}{}\ntoken_file = \"{}\"\n\n\
             [spool]\ndir = \"{}\"\n\n{rest}",
            collector_toml(grpc),
            client_cert_toml(dir, grpc, id),
            dir.join("token").display(),
            dir.join("spool").display(),
        ),
    )
    .expect("write agent config");
    cfg
}

/// The data directory of the collector registered at `grpc` (its CA is
/// `<data_dir>/tls/ca.crt`).
pub fn data_dir_for(grpc: &str) -> Option<PathBuf> {
    Some(ca_for(grpc)?.parent()?.parent()?.to_path_buf())
}

/// Make a key and CSR in `dir` and have the collector in `data_dir` issue
/// agent `id` a client certificate (`agent issue-cert`, the out-of-band
/// path); returns `(cert, key)`.
pub fn issue_client_cert(data_dir: &Path, dir: &Path, id: &str) -> (PathBuf, PathBuf) {
    let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr(id).expect("key and CSR");
    let (key, csr, cert) = (
        dir.join(format!("{id}.key")),
        dir.join(format!("{id}.csr")),
        dir.join(format!("{id}.crt")),
    );
    pantau_agent::identity::write_atomic(&key, &key_pem, 0o600).expect("write key");
    std::fs::write(&csr, csr_pem).expect("write CSR");
    collector_cmd(
        data_dir,
        &[
            "agent",
            "issue-cert",
            id,
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            cert.to_str().unwrap(),
        ],
    );
    (cert, key)
}

/// The one client certificate and key of agent `id` of the collector
/// with data in `data_dir`, issued on first use into
/// `<data_dir>.client-certs/`: the real agent and a test's own gRPC client
/// (a stolen copy, say) show the same one (a second issued certificate
/// would supersede the first at its first use). `None` when the collector
/// refuses to issue one (an agent it does not know: tests of refusals).
pub fn shared_client_cert(data_dir: &Path, id: &str) -> Option<(PathBuf, PathBuf)> {
    let dir = data_dir.with_extension("client-certs");
    std::fs::create_dir_all(&dir).expect("create the client certificate directory");
    let (cert, key) = (dir.join(format!("{id}.crt")), dir.join(format!("{id}.key")));
    if cert.exists() {
        return Some((cert, key));
    }
    let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr(id).expect("key and CSR");
    let csr = dir.join(format!("{id}.csr"));
    pantau_agent::identity::write_atomic(&key, &key_pem, 0o600).expect("write key");
    std::fs::write(&csr, csr_pem).expect("write CSR");
    let ok = Command::new(bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["agent", "issue-cert", id, "--csr"])
        .arg(&csr)
        .arg("--out")
        .arg(&cert)
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some((cert, key))
}

/// `cert`/`key` lines for agent `id` of the collector at `grpc`: a
/// certificate a test put at `<dir>/<id>.crt`, else the shared one
/// ([`shared_client_cert`]); empty when the collector has no known CA or
/// issues none.
pub fn client_cert_toml(dir: &Path, grpc: &str, id: &str) -> String {
    let Some(data_dir) = data_dir_for(grpc) else {
        return String::new();
    };
    let (mut cert, mut key) = (dir.join(format!("{id}.crt")), dir.join(format!("{id}.key")));
    if !cert.exists() {
        let Some(shared) = shared_client_cert(&data_dir, id) else {
            return String::new();
        };
        (cert, key) = shared;
    }
    format!(
        "\ncert = \"{}\"\nkey = \"{}\"",
        cert.display(),
        key.display()
    )
}

/// A Pantau CSV read back as plain comma-joined lines: checks that every
/// field is quoted (the writer's rule), unquotes, and drops the one `'` the
/// writer puts before a text that could run as a formula. Fields holding a
/// comma or line break are not expected in the lines a test compares.
pub fn csv_plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                out.push('\n');
                at_field_start = true;
            }
            ',' => {
                out.push(',');
                at_field_start = true;
            }
            '"' if at_field_start => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(x) => field.push(x),
                        None => panic!("unterminated quoted field in {text:?}"),
                    }
                }
                out.push_str(field.strip_prefix('\'').unwrap_or(&field));
                at_field_start = false;
            }
            other => panic!("unquoted CSV field starting with {other:?} in {text:?}"),
        }
    }
    out
}

/// A TCP proxy on loopback that forwards to `to` and records every byte
/// in both directions.
pub fn recording_proxy(to: SocketAddr) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = into.shutdown(std::net::Shutdown::Write);
                                return;
                            }
                            Ok(n) => {
                                log.lock().unwrap().extend_from_slice(&buf[..n]);
                                if into.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    });
    (addr, seen)
}

/// Whether `needle` occurs in the recorded bytes `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}
