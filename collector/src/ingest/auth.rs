//! Who an agent is: the bearer token check on every RPC, and the Enrol RPC
//! that hands a newly installed agent its identity and starting targets.

use pantau_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

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

    /// The Enrol RPC: the agent's identity and its starting configuration.
    pub(super) async fn enrol_info(
        &self,
        req: Request<pb::EnrolRequest>,
    ) -> Result<Response<pb::EnrolInfo>, Status> {
        let who = self.authenticate(&req).await?;
        let arrived_on = req.local_addr();
        let r = req.into_inner();
        let opd = who.opd_id.clone();
        let opd_name = self
            .store
            .with(move |s| Ok(s.opd_name(&opd)?.unwrap_or_default()))
            .await
            .map_err(|e| Status::unavailable(format!("store unavailable: {e}")))?;
        let targets_toml = match &self.enrol_targets {
            Some(t) => t.to_string(),
            None => crate::enrol::default_targets(&r.collector_authority, arrived_on),
        };
        info!(agent = %who.agent_id, opd = %who.opd_id,
            hostname = %r.hostname.chars().take(64).collect::<String>(),
            version = %r.agent_version.chars().take(32).collect::<String>(),
            "agent enrolment: token checked, configuration handed out");
        Ok(Response::new(pb::EnrolInfo {
            agent_id: who.agent_id,
            opd_id: who.opd_id,
            opd_name,
            targets_toml,
            collector_version: env!("CARGO_PKG_VERSION").to_string(),
        }))
    }
}
