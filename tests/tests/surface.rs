//! The collector's outward surface against the real binary: security headers
//! on every HTTP response, CSV output that no spreadsheet runs as a formula,
//! file modes that do not depend on the umask, and connection hygiene under
//! idle and slowloris sockets.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// One raw HTTP/1.1 request; returns (status, lower-cased head, body).
fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let (code, head, body) = http_request(addr, method, path, Duration::from_secs(30));
    (code, head.to_ascii_lowercase(), body)
}

/// Every route of the HTTP port (web::router and web::report::routes), with
/// the status it gives an empty collector: success and error answers alike
/// must carry the headers.
const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/", 200),
    ("GET", "/metrics", 200),
    ("GET", "/healthz", 200),
    ("GET", "/login", 200),
    // No CSRF token (and no form): refused.
    ("POST", "/login", 403),
    // An API token sends no forms: logging out a token is a no-op redirect.
    ("POST", "/logout", 303),
    ("GET", "/api/v1/opds", 200),
    ("GET", "/api/v1/agents", 200),
    ("GET", "/api/v1/targets", 200),
    ("GET", "/api/v1/results", 400),
    ("GET", "/api/v1/sessions", 400),
    ("GET", "/api/v1/paths", 200),
    ("GET", "/jalur", 200),
    ("GET", "/api/v1/bandwidth/download?bytes=1000", 401),
    ("POST", "/api/v1/bandwidth/upload?bytes=0", 401),
    ("GET", "/laporan", 200),
    ("GET", "/laporan/opd/tidak-ada", 404),
    ("GET", "/laporan/gangguan", 200),
    ("GET", "/api/v1/report?from=2026-13-01&to=2026-01-01", 400),
    ("GET", "/tidak/ada", 404),
];

#[test]
fn every_http_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(&dir.path().join("data"));
    // Anonymous callers' refusals carry them too.
    let anonymous = |method: &str, path: &str| {
        let (code, head, body) = http_send(
            collector.http,
            method,
            path,
            "",
            "",
            Duration::from_secs(30),
        );
        (code, head.to_ascii_lowercase(), body)
    };
    let refused = [("GET", "/", 302), ("GET", "/api/v1/opds", 401)];
    let all = ROUTES.iter().map(|&(m, p, w)| (m, p, w, true));
    for (method, path, want, signed_in) in all.chain(refused.map(|(m, p, w)| (m, p, w, false))) {
        let (code, head, body) = if signed_in {
            request(collector.http, method, path)
        } else {
            anonymous(method, path)
        };
        assert_eq!(code, want, "{method} {path}: {head}\n{body}");
        for (name, value) in [
            (
                "content-security-policy",
                "default-src 'self'; script-src 'none'; object-src 'none'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'",
            ),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "deny"),
            ("referrer-policy", "no-referrer"),
        ] {
            let line = format!("\r\n{name}: {}", value.to_ascii_lowercase());
            assert!(
                head.contains(&line),
                "{method} {path} lacks `{name}: {value}`:\n{head}"
            );
        }
    }
}

/// `pantau-collector serve` on loopback port 0 under `umask 000`, as an
/// admin's shell or a unit without `UMask=` would start it.
fn start_with_open_umask(data_dir: &std::path::Path, extra: &[&str]) -> Collector {
    use std::io::BufRead;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(bin("pantau-collector"))
        .args(extra)
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start pantau-collector");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .parse()
            .unwrap()
    };
    Collector {
        grpc: addr("grpc="),
        http: addr("http="),
        proc: Proc {
            child,
            name: "pantau-collector",
        },
        data_dir: data_dir.to_path_buf(),
        token: String::new(),
    }
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn data_dir_database_and_key_are_private_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv").join("data");
    let mut collector = start_with_open_umask(&data, &[]);
    let (code, body) = collector.get("/healthz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(mode(&data), 0o700, "data dir");
    for f in [
        "pantau.db",
        "pantau.db-wal",
        "pantau.db-shm",
        "report-signing.key",
        // Signs central target updates (docs/SECURITY.md).
        "config-signing.key",
        // The first admin's one-time password.
        "admin-password-once",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert!(collector.proc.terminate().success());
}

#[test]
fn example_config_binds_http_to_loopback() {
    let c = pantau_collector::config::CollectorConfig::load(&repo(
        "deploy/config/collector.example.toml",
    ))
    .expect("collector example is valid");
    assert!(c.http_listen.ip().is_loopback(), "{}", c.http_listen);
    // The gRPC port is the one agents reach.
    assert!(c.grpc_listen.ip().is_unspecified(), "{}", c.grpc_listen);
}

/// Let this test process hold `n` more sockets.
fn allow_open_files(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < n {
        assert!(
            hard >= n,
            "the hard limit of open files ({hard}) is under the {n} this test needs"
        );
        setrlimit(Resource::RLIMIT_NOFILE, n, hard).unwrap();
    }
}

/// `count` TCP connections to `to`, spread over the loopback sources
/// `127.0.<net>.1..=127.0.<net>.<sources>` (per-source caps see several
/// peers, not one).
fn connect_many(to: SocketAddr, count: usize, net: u8, sources: u8) -> Vec<std::net::TcpStream> {
    (0..count)
        .map(|i| {
            let src: std::net::IpAddr =
                std::net::Ipv4Addr::new(127, 0, net, 1 + (i % sources as usize) as u8).into();
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&SocketAddr::new(src, 0).into()).unwrap();
            s.connect_timeout(&to.into(), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connection {i} from {src}: {e}"));
            s.into()
        })
        .collect()
}

/// Wait until the server has closed every socket: a read gives end of file
/// or a reset. Returns how many there were.
fn all_closed(socks: &mut [std::net::TcpStream], what: &str, limit: Duration) -> usize {
    let deadline = std::time::Instant::now() + limit;
    for (i, s) in socks.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                // A 408 answer to a slow request, then the close.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{what} #{i} still open after {limit:?}: {e}"),
            }
        }
    }
    socks.len()
}

#[test]
fn idle_and_slowloris_sockets_neither_starve_healthz_nor_agents_and_get_closed() {
    allow_open_files(16_384);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "diskominfo", "kominfo-1");
    let collector = Collector::start(&data);
    let open = open_port();
    let cfg = agent_config(
        dir.path(),
        "kominfo-1",
        &collector.grpc.to_string(),
        &token,
        "heartbeat_interval = \"1s\"",
        &format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\n\
             [[targets]]\nid = \"tcp-open\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n\n\
             [[targets]]\nid = \"web\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"http://{}/healthz\"\n",
            collector.http
        ),
    );
    let mut agent = start_agent(&cfg);
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let delivered = |since: i64| -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM result WHERE target_id IN ('tcp-open', 'web') AND received_at_ms > ?1",
            [since],
            |r| r.get(0),
        )
        .unwrap()
    };
    wait_for("the agent delivers", Duration::from_secs(40), || {
        (delivered(0) > 0).then_some(())
    });

    // 5,000 idle sockets from ten sources, 500 slowloris clients from five.
    let mut idle = connect_many(collector.http, 5_000, 1, 10);
    let mut slow = connect_many(collector.http, 500, 2, 5);
    for s in &mut slow {
        // Headers that never end.
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: pantau\r\nX-Slow: 1\r\n");
    }
    let flooded_at = now_ms();

    // /healthz answers, the agent's HTTP probe of it succeeds and its
    // results keep arriving over gRPC.
    for _ in 0..5 {
        let (code, body) = collector.get("/healthz");
        assert_eq!(code, 200, "{body}");
    }
    wait_for(
        "agent results stored during the flood",
        Duration::from_secs(40),
        || (delivered(flooded_at) >= 4).then_some(()),
    );
    let web_ok: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM result WHERE target_id = 'web' AND outcome = 'ok' AND received_at_ms > ?1",
            [flooded_at],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        web_ok > 0,
        "the agent's /healthz probe failed during the flood"
    );

    // Every idle and slow socket is closed by the collector (header-read
    // timeout for the held ones, at once for those over a cap).
    assert_eq!(
        all_closed(&mut slow, "slowloris socket", Duration::from_secs(60)),
        500
    );
    assert_eq!(
        all_closed(&mut idle, "idle socket", Duration::from_secs(60)),
        5_000
    );
    let (code, _) = collector.get("/healthz");
    assert_eq!(code, 200);
    assert!(agent.terminate().success());
}

#[test]
fn idle_and_preface_only_sockets_on_a_limited_grpc_port_get_closed_and_health_answers() {
    use pantau_collector::net::{Incoming, Limits};
    use tonic_health::pb::health_check_response::ServingStatus;
    allow_open_files(16_384);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, limiter) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = Incoming::new(
            listener,
            Limits {
                per_source: 64,
                total: 1_024,
                idle: Some(Duration::from_secs(3)),
            },
        );
        let limiter = incoming.limiter().clone();
        let (reporter, svc) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        tokio::spawn(async move {
            let _keep = reporter;
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(60)))
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        (addr, limiter)
    });
    let mut idle = connect_many(addr, 5_000, 3, 10);
    let mut preface = connect_many(addr, 200, 4, 4);
    for s in &mut preface {
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    }
    let check = || {
        rt.block_on(async {
            let ch = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
            h.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        })
    };
    assert_eq!(check(), ServingStatus::Serving as i32);
    // Never more open than the caps allow: ten sources of 64, four of 64.
    assert!(limiter.open() <= 10 * 64 + 4 * 64 + 1, "{}", limiter.open());
    assert_eq!(
        all_closed(&mut preface, "preface-only socket", Duration::from_secs(60)),
        200
    );
    assert_eq!(
        all_closed(&mut idle, "idle gRPC socket", Duration::from_secs(60)),
        5_000
    );
    assert!(limiter.refused() > 0);
    assert_eq!(check(), ServingStatus::Serving as i32);
}

/// `report --opd all` for one day with `config`; the bundle folder.
fn signed_report(data: &std::path::Path, config: &std::path::Path, out: &std::path::Path) {
    let day = local_date(now_ms(), 8);
    let (code, stdout, stderr) = collector_cli(
        data,
        Some(config),
        &[
            "report",
            "--opd",
            "all",
            "--from",
            &day,
            "--to",
            &day,
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn signing_key_outside_the_data_dir_rotates_and_verify_knows_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir
        .path()
        .join("etc")
        .join("kunci")
        .join("report-signing.key");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!("[report]\nsigning_key = \"{}\"\n", key.display()),
    )
    .unwrap();
    // A target label (agent-supplied) that a spreadsheet would run, with a
    // row break inside.
    let token = enrol(&data, "dinkes", "dinkes-1");
    assert!(!token.is_empty());
    let mut evil = decl("web", "app", "http", 60_000);
    evil.label = "=HYPERLINK(\"http://x\")\r\n=cmd|' /C calc'!A0".into();
    declare(&data, "dinkes", "dinkes-1", vec![evil]);
    let first = dir.path().join("b1");
    signed_report(&data, &config, &first);
    assert!(key.exists(), "key written at [report] signing_key");
    assert!(
        !data.join("report-signing.key").exists(),
        "no key in the data dir"
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);

    // The signed catalogue: every field quoted, the formula neutralised,
    // the line break kept inside its field (no injected row).
    let text = std::fs::read_to_string(first.join("katalog-target.csv")).unwrap();
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x\"\")\r\n=cmd|' /C calc'!A0\""),
        "{text}"
    );
    // A spreadsheet-grade reader (Python's csv) sees the header and one
    // record, and no cell that starts a formula.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import csv,sys\n\
rows=list(csv.reader(open(sys.argv[1],newline='')))\n\
bad=[c for r in rows for c in r if c[:1] in ('=','+','-','@','\\t','\\r')]\n\
print(len(rows),len(bad))",
        )
        .arg(first.join("katalog-target.csv"))
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 0",
        "{}{text}",
        String::from_utf8_lossy(&out.stderr)
    );

    let verify = |args: &[&str]| -> (i32, String) {
        let mut a = vec!["verify"];
        a.extend(args);
        let (code, out, err) = collector_cli(&data, Some(&config), &a);
        (code, format!("{out}{err}"))
    };
    let (code, out) = verify(&[first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the expected collector key"), "{out}");
    let old_public = out
        .lines()
        .find_map(|l| l.strip_prefix("signed by Ed25519 key "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    // Rotate: the old public key goes to keys/, a new key signs.
    let (code, out, err) = collector_cli(&data, Some(&config), &["key", "rotate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&old_public), "{out}");
    let retired = key
        .parent()
        .unwrap()
        .join("keys")
        .join(format!("{old_public}.pub"));
    assert!(retired.exists(), "{}", retired.display());
    let second = dir.path().join("b2");
    signed_report(&data, &config, &second);
    let (code, out) = verify(&[second.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(&old_public),
        "new bundle signed by the new key: {out}"
    );
    // The old bundle still verifies, as signed by a retired key.
    let (code, out) = verify(&[first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a retired key of this collector"), "{out}");
    let (code, out, _) = collector_cli(&data, Some(&config), &["key", "show"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("retired: {old_public}")), "{out}");

    // A rotation after a leak: bundles of the leaked key are refused.
    let (code, out, err) = collector_cli(&data, Some(&config), &["key", "rotate", "--compromised"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out) = verify(&[second.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("compromised"), "{out}");
    let (code, out) = verify(&[first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    // A stranger's bundle (another data dir and key) is refused.
    let other = dir.path().join("other");
    collector_cmd(&other, &["opd", "add", "dinkes", "--name", "Dinkes"]);
    let third = dir.path().join("b3");
    let day = local_date(now_ms(), 8);
    let (code, _, err) = collector_cli(
        &other,
        None,
        &[
            "report",
            "--opd",
            "all",
            "--from",
            &day,
            "--to",
            &day,
            "--format",
            "csv",
            "--out",
            third.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out) = verify(&[third.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not by the collector's key"), "{out}");
}
