//! The gRPC listener: transport settings of the agents' port and the
//! services it carries (ingest and gRPC health).

use pantau_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::IngestService;

/// Serve the ingest and health services on `listener` until `shutdown`.
pub async fn serve(
    svc: IngestService,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
        .add_service(health)
        .add_service(
            IngestServer::new(svc)
                .max_decoding_message_size(pantau_proto::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(pantau_proto::MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await
}
