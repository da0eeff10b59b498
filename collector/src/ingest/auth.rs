//! Who an agent is: the bearer token check on every RPC.

use tonic::{Request, Status};
use tracing::warn;

use super::{IngestService, peer_text};
use crate::auth;
use crate::metrics::Metrics;
use crate::model::AgentIdentity;

/// Whether the request arrived over TLS.
fn over_tls<T>(req: &Request<T>) -> bool {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    req.extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .is_some()
}

impl IngestService {
    /// The identity behind a request's credential, or UNAUTHENTICATED.
    pub(super) async fn authenticate<T>(&self, req: &Request<T>) -> Result<AgentIdentity, Status> {
        let peer = req.remote_addr();
        let deny = |m: &Metrics| {
            m.reject("unauthenticated");
            // Never the token: only where the attempt came from.
            warn!(peer = %peer_text(peer), "agent token refused (missing or unknown)");
            Status::unauthenticated(
                "missing or unknown agent token; enrol the agent with `pantau-collector agent add`",
            )
        };
        let Some(token) = req
            .metadata()
            .get(pantau_proto::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .map(str::to_string)
        else {
            return Err(deny(&self.metrics));
        };
        let digest = auth::digest(&token);
        let found = self
            .store
            .with(move |s| s.agent_by_token(&digest))
            .await
            .map_err(|e| Status::unavailable(format!("cannot check token: {e}")))?;
        match found {
            Some((who, stored)) if auth::matches(&token, &stored) => {
                if !over_tls(req) {
                    warn!(peer = %peer_text(peer), agent = %who.agent_id,
                        "TIDAK AMAN / INSECURE: agent connected over plaintext gRPC; its token and results cross the network readable");
                }
                Ok(who)
            }
            _ => Err(deny(&self.metrics)),
        }
    }
}
