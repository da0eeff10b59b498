//! `[limits]`: the connection caps of both ports come from the collector
//! configuration, and refused connections are counted in `/metrics`
//! (`pantau_connections_refused_total{port,reason}`), so an admin sees a
//! cap being hit instead of guessing from agents' reconnects.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&src.into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// Whether the collector closed `s` (read gives end of file or an error).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    !matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
}

#[test]
fn configured_caps_apply_and_refusals_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        "[limits]\nhttp_per_source = 3\nhttp_total = 100\ngrpc_per_source = 2\nidle_timeout = \"30s\"\n",
    )
    .unwrap();
    let c = Collector::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        "127.0.0.1:0",
        Some(&cfg),
    );
    let metric_of = |port: &str, reason: &str| {
        metric(
            &c.metrics(),
            "pantau_connections_refused_total",
            &[("port", port), ("reason", reason)],
        )
    };
    assert_eq!(metric_of("http", "per_source"), Some(0.0), "seeded at 0");
    assert_eq!(metric_of("grpc", "per_source"), Some(0.0), "seeded at 0");

    // Three quiet connections from one address are held; the fourth is
    // closed at once. Another address is still served.
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.2", c.http)).collect();
    let mut fourth = connect_from("127.0.0.2", c.http);
    assert!(
        closed(&mut fourth),
        "the fourth connection from one address is closed"
    );
    assert_eq!(metric_of("http", "per_source"), Some(1.0));
    let open = metric(&c.metrics(), "pantau_connections_open", &[("port", "http")]).unwrap();
    assert!(open >= 3.0, "open {open}");
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        assert!(
            matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a held connection stays open"
        );
    }

    // The gRPC port has its own cap.
    let _g: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.3", c.grpc)).collect();
    let mut third = connect_from("127.0.0.3", c.grpc);
    assert!(
        closed(&mut third),
        "the third gRPC connection from one address is closed"
    );
    wait_for("the gRPC refusal counted", Duration::from_secs(10), || {
        (metric_of("grpc", "per_source")? >= 1.0).then_some(())
    });
}

#[test]
fn a_bad_limit_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "[limits]\nhttp_per_source = 500\nhttp_total = 100\n").unwrap();
    let (code, _, err) = collector_cli(&dir.path().join("data"), Some(&cfg), &["serve"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("limits.http_per_source"), "{err}");
    assert!(err.contains("collector.toml"), "{err}");
}
