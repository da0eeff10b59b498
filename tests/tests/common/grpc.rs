//! The one gRPC client of the tests that speak the ingest protocol
//! themselves (hostile traffic, forged results, credential changes): a TLS
//! channel trusting the collector's CA that presents the client certificate
//! of a given agent (issued with `agent issue-cert`, as an operator would),
//! and an open `Stream` with its sender and receiver.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The client certificate and key of `agent` from the collector at `grpc`:
/// the same one its real agent shows ([`super::shared_client_cert`]).
pub async fn agent_cert(grpc: &str, agent: &str) -> (PathBuf, PathBuf) {
    let data = super::data_dir_for(grpc).unwrap_or_else(|| panic!("no collector at {grpc}"));
    let agent = agent.to_string();
    tokio::task::spawn_blocking(move || super::shared_client_cert(&data, &agent))
        .await
        .expect("issue a client certificate")
        .unwrap_or_else(|| panic!("the collector issues no certificate for that agent"))
}

/// A TLS channel to the collector at `grpc` trusting its CA, presenting
/// the client certificate of `agent` when given, from the local address
/// `from` when given.
pub async fn channel(grpc: &str, agent: Option<&str>, from: Option<IpAddr>) -> Channel {
    let ca = super::ca_for(grpc).unwrap_or_else(|| panic!("no collector started at {grpc}"));
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
        std::fs::read(&ca).expect("read collector CA"),
    ));
    if let Some(agent) = agent {
        let (cert, key) = agent_cert(grpc, agent).await;
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).expect("read client certificate"),
            std::fs::read(key).expect("read client key"),
        ));
    }
    Channel::from_shared(format!("https://{grpc}"))
        .expect("uri")
        .local_address(from)
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS")
}

/// [`channel`] as `agent` from the default address.
pub async fn channel_as(grpc: &str, agent: &str) -> Channel {
    channel(grpc, Some(agent), None).await
}

/// An open ingest stream.
pub struct Conn {
    pub tx: mpsc::Sender<pb::AgentMessage>,
    pub rx: tonic::Streaming<pb::CollectorMessage>,
}

/// Open a stream on `ch` with `token` (none: no authorization header),
/// sending `first`; the stream or the status refusing it.
pub async fn open_on(
    ch: &Channel,
    token: Option<&str>,
    first: pb::AgentMessage,
) -> Result<Conn, tonic::Status> {
    let mut client = IngestClient::new(ch.clone()).max_encoding_message_size(64 * 1024 * 1024);
    let (tx, rx) = mpsc::channel(16);
    tx.send(first).await.expect("queue the first message");
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    let rx = client.stream(req).await?.into_inner();
    Ok(Conn { tx, rx })
}

/// [`open_on`] over a new channel presenting `agent`'s certificate.
pub async fn open_as(
    grpc: std::net::SocketAddr,
    agent: &str,
    token: Option<&str>,
    first: pb::AgentMessage,
) -> Result<Conn, tonic::Status> {
    let ch = channel_as(&grpc.to_string(), agent).await;
    open_on(&ch, token, first).await
}

impl Conn {
    /// The next message, or the status ending the stream; panics when none
    /// comes within `limit`.
    pub async fn next_within(
        &mut self,
        limit: Duration,
    ) -> Result<pb::collector_message::Msg, tonic::Status> {
        let m = tokio::time::timeout(limit, self.rx.message())
            .await
            .expect("collector answers in time")?;
        Ok(m.and_then(|m| m.msg).expect("a message"))
    }
}
