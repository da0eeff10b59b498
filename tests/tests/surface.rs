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
