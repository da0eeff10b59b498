//! The Enrol RPC that hands a newly installed agent its identity and
//! starting targets.

use pantau_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::info;

use super::IngestService;

impl IngestService {
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
