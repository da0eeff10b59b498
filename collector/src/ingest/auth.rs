//! Who an agent is: the bearer token check on every RPC.

use tonic::{Request, Status};
use tracing::{info, warn};

use std::net::SocketAddr;

use super::{IngestService, peer_text};
use crate::auth;
use crate::model::AgentIdentity;
use crate::store::{
    self,
    registry::{Credential, Refusal},
};

/// Whether the request arrived over TLS.
fn over_tls<T>(req: &Request<T>) -> bool {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    req.extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .is_some()
}

/// The bilingual status an agent gets when its credential is refused, at
/// authentication or when an open stream is closed.
pub(super) fn refusal_status(r: Refusal) -> Status {
    Status::unauthenticated(match r {
        Refusal::Missing | Refusal::Unknown => {
            "token agen tidak ada atau tidak dikenal / missing or unknown agent token; \
             enrol the agent with `pantau-collector agent add`"
        }
        Refusal::Revoked => {
            "kredensial agen dicabut / agent credential revoked; register the machine as a new agent"
        }
        Refusal::Rotated => {
            "token agen sudah diganti / agent credential rotated; install the new token from `pantau-collector agent rotate`"
        }
        Refusal::Disabled => {
            "kredensial agen dinonaktifkan / agent credential disabled; `pantau-collector agent enable ID` lets it in again"
        }
        Refusal::Expired => {
            "kredensial agen kedaluwarsa / agent credential expired; issue a new token with `pantau-collector agent rotate ID`"
        }
    })
}

/// Who a request's credential belongs to, and the token digest it showed.
pub(super) struct Authenticated {
    pub(super) who: AgentIdentity,
    pub(super) digest: [u8; 32],
}

/// What the store says about a presented token.
enum Lookup {
    Current(Credential),
    Retired(String, Refusal),
    Unknown,
}

impl IngestService {
    /// The identity behind a request's credential, or UNAUTHENTICATED
    /// (RESOURCE_EXHAUSTED while its source address is limited).
    pub(super) async fn authenticate<T>(&self, req: &Request<T>) -> Result<AgentIdentity, Status> {
        self.authenticated(req).await.map(|a| a.who)
    }

    /// [`IngestService::authenticate`], also returning the token digest so
    /// an open stream can be re-checked against later credential changes.
    /// Every outcome is logged with the peer and counted in `pantau_auth_total`.
    pub(super) async fn authenticated<T>(&self, req: &Request<T>) -> Result<Authenticated, Status> {
        let peer = req.remote_addr();
        if let Some(ip) = peer.map(|p| p.ip())
            && let Err(wait) = self.limiter.check(ip)
        {
            self.metrics.auth("refused", "limited");
            warn!(peer = %peer_text(peer), reason = "limited", retry_in_s = wait.as_secs(),
                "agent authentication refused: too many failures from this address");
            return Err(Status::resource_exhausted(format!(
                "terlalu banyak autentikasi gagal dari alamat ini / too many failed authentications \
                 from this address; try again in {} s",
                wait.as_secs().max(1)
            )));
        }
        let Some(token) = req
            .metadata()
            .get(pantau_proto::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .map(str::to_string)
        else {
            return Err(self.refuse(peer, None, Refusal::Missing));
        };
        let digest = auth::digest(&token);
        let lookup = self
            .store
            .with(move |s| {
                Ok(match s.credential_by_token(&digest)? {
                    Some(c) => Lookup::Current(c),
                    None => match s.retired_token(&digest)? {
                        Some((agent, why)) => Lookup::Retired(agent, why),
                        None => Lookup::Unknown,
                    },
                })
            })
            .await
            .map_err(|e| Status::unavailable(format!("cannot check token: {e}")))?;
        let cred = match lookup {
            Lookup::Current(c) if auth::matches(&token, &c.token_sha256) => c,
            Lookup::Current(_) | Lookup::Unknown => {
                return Err(self.refuse(peer, None, Refusal::Unknown));
            }
            Lookup::Retired(agent, why) => return Err(self.refuse(peer, Some(&agent), why)),
        };
        if let Some(why) = cred.refusal(&digest, store::now_ms()) {
            return Err(self.refuse(peer, Some(&cred.who.agent_id), why));
        }
        let who = cred.who;
        self.check_client_cert(req, peer, &who.agent_id).await?;
        self.metrics.auth("ok", "ok");
        info!(peer = %peer_text(peer), agent = %who.agent_id, "agent authenticated");
        if !over_tls(req) {
            warn!(peer = %peer_text(peer), agent = %who.agent_id,
                "TIDAK AMAN / INSECURE: agent connected over plaintext gRPC; its token and results cross the network readable");
        }
        let (id, at, peer_s) = (who.agent_id.clone(), store::now_ms(), peer_text(peer));
        if let Err(e) = self
            .store
            .with(move |s| s.record_auth(&id, &peer_s, at))
            .await
        {
            warn!(agent = %who.agent_id, error = %e, "cannot record the agent's last peer");
        }
        Ok(Authenticated { who, digest })
    }

    /// Bind the connection's client certificate to the token's agent: a
    /// certificate naming another agent, one no longer in force, or (with
    /// `[tls] client_certs = "required"`) none at all is refused. The first
    /// use of a renewed certificate supersedes the agent's older ones.
    async fn check_client_cert<T>(
        &self,
        req: &Request<T>,
        peer: Option<SocketAddr>,
        agent: &str,
    ) -> Result<(), Status> {
        let Some(policy) = &self.certs else {
            return Ok(());
        };
        let cert = req
            .peer_certs()
            .and_then(|c| c.first().and_then(|d| crate::mtls::read_client_cert(d)));
        let Some(cert) = cert else {
            if !over_tls(req) || policy.mode == crate::mtls::ClientCertMode::Optional {
                return Ok(());
            }
            return Err(self.refuse_cert(
                peer,
                agent,
                "no_client_cert",
                "sertifikat klien wajib / a client certificate is required \
                 ([tls] client_certs = \"required\"); enrol the agent with an enrolment code \
                 or install a certificate from `pantau-collector agent issue-cert`",
            ));
        };
        if cert.agent_id != agent {
            warn!(peer = %peer_text(peer), agent, cert_agent = %cert.agent_id,
                serial = %cert.serial, "client certificate and token name different agents");
            return Err(self.refuse_cert(
                peer,
                agent,
                "cert_token_mismatch",
                "sertifikat klien dan token milik agen berbeda / the client certificate and \
                 the token belong to different agents",
            ));
        }
        if let Err(why) = policy.revocations.check_serial(&cert) {
            warn!(peer = %peer_text(peer), agent, serial = %cert.serial, reason = %why,
                "client certificate no longer in force");
            return Err(self.refuse_cert(
                peer,
                agent,
                "cert_revoked",
                "sertifikat klien dicabut atau diganti / client certificate revoked or \
                 superseded; reconnect with the current one",
            ));
        }
        if policy.issuer.is_some() {
            let (a, serial) = (agent.to_string(), cert.serial.clone());
            match self
                .store
                .with(move |s| s.supersede_client_certs(&a, &serial, store::now_ms()))
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    info!(agent, serial = %cert.serial, superseded = n,
                        "renewed client certificate in use; older certificates superseded");
                    if let Err(e) = policy.revocations.refresh(&self.store).await {
                        warn!(error = %e, "cannot refresh client certificate revocations");
                    }
                }
                Err(e) => warn!(agent, error = %e, "cannot supersede older client certificates"),
            }
        }
        Ok(())
    }

    /// A refused client certificate: logged with peer, agent and reason.
    fn refuse_cert(
        &self,
        peer: Option<SocketAddr>,
        agent: &str,
        reason: &'static str,
        message: &'static str,
    ) -> Status {
        self.metrics.reject("unauthenticated");
        self.metrics.auth("refused", reason);
        if let Some(p) = peer {
            self.limiter.record_failure(p.ip());
        }
        warn!(peer = %peer_text(peer), agent, reason, "agent authentication refused");
        Status::unauthenticated(message)
    }

    /// Log, count and limit a refused authentication; the status to return.
    fn refuse(&self, peer: Option<SocketAddr>, agent: Option<&str>, why: Refusal) -> Status {
        self.metrics.reject("unauthenticated");
        self.metrics.auth("refused", why.label());
        if let Some(p) = peer {
            self.limiter.record_failure(p.ip());
        }
        // Never the token: only where the attempt came from and why.
        warn!(peer = %peer_text(peer), agent = agent.unwrap_or("-"), reason = why.label(),
            "agent authentication refused");
        refusal_status(why)
    }
}
