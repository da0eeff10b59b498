//! The Enrol RPC that hands a newly installed agent its identity and
//! starting targets: in exchange for a one-time enrolment code (then with
//! the agent's new permanent token), or for the agent's existing token.

use pantau_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::{IngestService, peer_text};
use crate::auth;
use crate::model::AgentIdentity;
use crate::store::{Redeemed, now_ms};

/// Longest enrolment code accepted before hashing (a code is 31 characters).
const MAX_CODE_LEN: usize = 128;

impl IngestService {
    /// The Enrol RPC: the agent's identity and its starting configuration.
    pub(super) async fn enrol_info(
        &self,
        req: Request<pb::EnrolRequest>,
    ) -> Result<Response<pb::EnrolInfo>, Status> {
        let (who, token) = if req.get_ref().enrol_code.trim().is_empty() {
            (self.authenticate(&req).await?, String::new())
        } else {
            self.redeem_code(&req).await?
        };
        let arrived_on = req.local_addr();
        let r = req.into_inner();
        let client_cert_pem = if token.is_empty() || r.csr_pem.trim().is_empty() {
            String::new()
        } else {
            self.issue_cert(&who.agent_id, &r.csr_pem).await?
        };
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
            new_token = !token.is_empty(),
            "agent enrolment: credential checked, configuration handed out");
        Ok(Response::new(pb::EnrolInfo {
            agent_id: who.agent_id,
            opd_id: who.opd_id,
            opd_name,
            targets_toml,
            collector_version: env!("CARGO_PKG_VERSION").to_string(),
            token,
            ca_pem: self.enrol_ca_pem.as_deref().unwrap_or_default().to_string(),
            client_cert_pem,
        }))
    }

    /// The Renew RPC: a new client certificate for an agent authenticated
    /// by its current certificate and token.
    pub(super) async fn renew_cert(
        &self,
        req: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::RenewReply>, Status> {
        let who = self.authenticate(&req).await?;
        let csr = req.into_inner().csr_pem;
        if csr.trim().is_empty() {
            return Err(Status::invalid_argument("RenewRequest.csr_pem is empty"));
        }
        let cert_pem = self.issue_cert(&who.agent_id, &csr).await?;
        info!(agent = %who.agent_id, "client certificate renewed");
        Ok(Response::new(pb::RenewReply { cert_pem }))
    }

    /// Issue and record a client certificate for `agent` from `csr_pem`
    /// with the built-in CA; the handshake accepts it at once.
    async fn issue_cert(&self, agent: &str, csr_pem: &str) -> Result<String, Status> {
        if csr_pem.len() > 16 * 1024 {
            return Err(Status::invalid_argument("CSR larger than 16 KiB"));
        }
        let Some(policy) = self.certs.clone() else {
            return Ok(String::new());
        };
        let Some(files) = policy.issuer.clone() else {
            return Err(Status::failed_precondition(
                "collector ini memakai CA provinsi sendiri; sertifikat klien diterbitkan oleh CA itu \
                 / this collector uses the province's own CA: client certificates come from it",
            ));
        };
        let (agent_s, csr, validity) = (agent.to_string(), csr_pem.to_string(), policy.validity);
        let issued = tokio::task::spawn_blocking(move || {
            crate::mtls::issue_client_cert(&files, &csr, &agent_s, validity)
        })
        .await
        .map_err(|e| Status::internal(format!("issuing task failed: {e}")))?
        .map_err(|e| {
            self.metrics.reject("invalid");
            Status::invalid_argument(e.to_string())
        })?;
        let (a, serial, until) = (
            agent.to_string(),
            issued.serial.clone(),
            issued.not_after_ms,
        );
        self.store
            .with(move |s| s.record_client_cert(&a, &serial, now_ms(), until))
            .await
            .map_err(|e| Status::unavailable(format!("cannot record the certificate: {e}")))?;
        policy
            .revocations
            .refresh(&self.store)
            .await
            .map_err(|e| Status::unavailable(format!("cannot refresh revocations: {e}")))?;
        info!(agent, serial = %issued.serial, not_after_ms = issued.not_after_ms,
            "client certificate issued");
        Ok(issued.pem)
    }

    /// Consume the request's enrolment code and issue the agent's new
    /// permanent token (replacing any previous one).
    async fn redeem_code(
        &self,
        req: &Request<pb::EnrolRequest>,
    ) -> Result<(AgentIdentity, String), Status> {
        let peer = peer_text(req.remote_addr());
        let code = req.get_ref().enrol_code.trim();
        let refuse = |reason: &'static str, status: Status| {
            self.metrics.reject(reason);
            // Never the code: only where the attempt came from.
            warn!(peer = %peer, reason, "enrolment code refused");
            status
        };
        if code.len() > MAX_CODE_LEN {
            return Err(refuse("enrol_code_unknown", unknown_code()));
        }
        let digest = crate::enrol::code_digest(code);
        let token = auth::new_token();
        let token_digest = auth::digest(&token);
        let outcome = self
            .store
            .with(move |s| s.redeem_enrol_code(&digest, &token_digest, now_ms()))
            .await
            .map_err(|e| Status::unavailable(format!("cannot check enrolment code: {e}")))?;
        crate::audit::enrolled(&self.store, &outcome, &peer).await; // audit log (audit helper)
        match outcome {
            Redeemed::Enrolled(who) => Ok((who, token)),
            Redeemed::AlreadyUsed => Err(refuse(
                "enrol_code_used",
                Status::permission_denied(
                    "kode pendaftaran sudah dipakai; minta kode baru dengan \
                     `pantau-collector agent enrol-code` / enrolment code already used; \
                     ask for a new one with `pantau-collector agent enrol-code`",
                ),
            )),
            Redeemed::Expired => Err(refuse(
                "enrol_code_expired",
                Status::permission_denied(
                    "kode pendaftaran kedaluwarsa; minta kode baru dengan \
                     `pantau-collector agent enrol-code` / enrolment code expired; \
                     ask for a new one with `pantau-collector agent enrol-code`",
                ),
            )),
            Redeemed::Unknown => Err(refuse("enrol_code_unknown", unknown_code())),
        }
    }
}

fn unknown_code() -> Status {
    Status::unauthenticated(
        "kode pendaftaran tidak dikenal (salah ketik, atau diganti kode yang lebih baru) / \
         unknown enrolment code (mistyped, or replaced by a newer one)",
    )
}
