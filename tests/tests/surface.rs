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
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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
    (code, head.to_ascii_lowercase(), body.to_string())
}

/// Every route of the HTTP port (web::router and web::report::routes), with
/// the status it gives an empty collector: success and error answers alike
/// must carry the headers.
const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/", 200),
    ("GET", "/metrics", 200),
    ("GET", "/healthz", 200),
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
    for &(method, path, want) in ROUTES {
        let (code, head, body) = request(collector.http, method, path);
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
