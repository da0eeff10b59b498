//! The gRPC listener: transport settings of the agents' port and the
//! services it carries (ingest and gRPC health).
//!
//! Connection hygiene: TLS handshakes run per connection with a deadline
//! ([`HANDSHAKE_TIMEOUT`]), dead peers are found by HTTP/2 and TCP
//! keepalives, one connection carries a bounded number of streams, and
//! [`crate::net::Incoming`] caps connections per source and in total.

use std::time::Duration;

use pantau_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::IngestService;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams one connection may open at once (an agent uses one).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 32;
/// HTTP/2 flow-control window of one stream: how much an agent may send
/// that the collector has not read yet. While the writer is behind, a
/// stream stops reading and up to this much waits in memory per agent
/// (hyper's default, 1 MiB, is 5 GB for 5 000 agents). A larger batch still
/// arrives (the window reopens as it is read); 256 KiB per round trip is
/// 5 MB/s at 50 ms, ample for a backlog replay.
pub const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
/// The same for all streams of one connection together.
pub const CONNECTION_WINDOW_BYTES: u32 = 512 * 1024;
/// Request headers of one stream (hyper's default, stated here).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// The server's TLS: identity and client certificate checks (see
/// [`crate::mtls::server_config`]).
pub fn tls_config(config: tokio_rustls::rustls::ServerConfig) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// Serve the ingest and health services on `listener` until `shutdown`;
/// TLS when `tls` is given (handshakes by [`crate::mtls::incoming`], so a
/// refused client certificate is logged with its peer), plaintext otherwise.
pub async fn serve(
    svc: IngestService,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    listener: TcpListener,
    limits: crate::net::Limits,
    counters: crate::net::PortCounters,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .http2_adaptive_window(Some(false))
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .add_service(health)
        .add_service(
            IngestServer::new(svc)
                .max_decoding_message_size(pantau_proto::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(pantau_proto::MAX_MESSAGE_BYTES),
        );
    // Caps per source and in total, idle sockets closed: one office's
    // sockets cannot starve the others (`[limits]`, default `net::Limits::GRPC`).
    let conns = crate::net::Incoming::new(listener, limits).with_counters(counters);
    match tls {
        Some(acceptor) => {
            let tls = crate::mtls::incoming(conns, acceptor, HANDSHAKE_TIMEOUT, shutdown.clone());
            router
                .serve_with_incoming_shutdown(tls, shutdown.cancelled_owned())
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(conns, shutdown.cancelled_owned())
                .await
        }
    }
}
