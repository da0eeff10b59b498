//! Client certificates of agents (mutual TLS on the gRPC port): every
//! certificate the built-in CA issues is recorded by serial, so the
//! handshake can refuse a superseded or revoked one.

use super::StoreError;

/// The certificate state the handshake checks, read from the store every
/// few seconds and after every issuance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertRefusals {
    /// Serials (lower-case hex) in force: issued, not superseded, not revoked,
    /// with their agent id.
    pub active: Vec<(String, String)>,
    /// Serials revoked or superseded.
    pub revoked: Vec<String>,
    /// Agents whose credential is revoked: none of their
    /// certificates is accepted, whoever issued it.
    pub blocked_agents: Vec<String>,
}

/// Client certificates by serial.
pub trait ClientCerts: Send + Sync {
    /// Record a certificate issued to `agent_id` valid until `not_after_ms`.
    fn record_client_cert(
        &self,
        agent_id: &str,
        serial: &str,
        issued_at_ms: i64,
        not_after_ms: i64,
    ) -> Result<(), StoreError>;

    /// Supersede every other certificate of `agent_id` than `keep` (after a
    /// renewal has been used); returns how many were superseded.
    fn supersede_client_certs(
        &self,
        agent_id: &str,
        keep: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError>;

    /// Revoke the certificate with `serial`; `Ok(false)` when unknown.
    fn revoke_client_cert(&self, serial: &str, at_ms: i64) -> Result<bool, StoreError>;

    /// What the handshake refuses and accepts right now.
    fn cert_refusals(&self) -> Result<CertRefusals, StoreError>;
}
