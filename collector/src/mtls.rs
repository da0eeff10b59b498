//! Mutual TLS on the agents' gRPC port: client certificates issued by the
//! built-in CA (at enrolment, by `agent issue-cert`, and at renewal), what
//! the handshake accepts, and the TLS acceptor of the port.
//!
//! An agent's certificate names it twice: the URI SAN
//! `pantau:agent:<id>` and the common name. The handshake checks the chain
//! (to the built-in CA, or to `[tls] client_ca`), the validity, and the
//! in-memory [`Revocations`] refreshed from the store every
//! [`REFRESH`] and after every issuance; the RPC then binds the
//! certificate's agent to the bearer token's (see `ingest::auth`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{
    self, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::net::Limited;
use crate::store::SharedStore;
use crate::store::certs::CertRefusals;
use crate::tls::{CaFiles, TlsError};

/// Prefix of the URI SAN that names the agent in its certificate.
pub const AGENT_URI_PREFIX: &str = "pantau:agent:";
/// Validity of a client certificate unless `[tls] client_cert_validity` says otherwise.
pub const DEFAULT_CLIENT_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the handshake's view of revocations is refreshed from the store.
pub const REFRESH: Duration = Duration::from_secs(2);

/// `[tls] client_certs`: whether agents must show a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientCertMode {
    /// Certificate AND token (the default).
    #[default]
    Required,
    /// Token alone is accepted too (migration, lab); a certificate shown is
    /// still verified and bound to the token.
    Optional,
}

/// A client certificate just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub pem: String,
    /// Its serial, lower-case hex.
    pub serial: String,
    /// End of validity, ms since the epoch.
    pub not_after_ms: i64,
}

/// What a presented client certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The agent it names.
    pub agent_id: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// End of validity, ms since the epoch.
    pub not_after_ms: i64,
}

/// Issue a client certificate for `agent_id` to the key of the PKCS#10
/// request `csr_pem` (its signature is checked; its subject and extensions
/// are ignored), signed by the built-in CA in `files`, valid for `validity`.
pub fn issue_client_cert(
    files: &CaFiles,
    csr_pem: &str,
    agent_id: &str,
    validity: Duration,
) -> Result<Issued, TlsError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(TlsError::Csr)?;
    let key_pem = std::fs::read_to_string(files.ca_key()).map_err(|source| TlsError::Io {
        path: files.ca_key(),
        source,
    })?;
    let ca_key = KeyPair::from_pem(&key_pem)?;
    let ca_pem = std::fs::read_to_string(files.ca_cert()).map_err(|source| TlsError::Io {
        path: files.ca_cert(),
        source,
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let mut serial: [u8; 16] = rand::random();
    // Positive and without a leading zero byte: the DER integer is these bytes.
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let now = time::OffsetDateTime::now_utc();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, agent_id);
    p.distinguished_name
        .push(DnType::OrganizationName, "Pantau agent");
    p.subject_alt_names = vec![SanType::URI(
        format!("{AGENT_URI_PREFIX}{agent_id}").try_into()?,
    )];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + validity;
    let csr = CertificateSigningRequestParams {
        params: p,
        public_key: csr.public_key,
    };
    let cert = csr.signed_by(&issuer)?;
    Ok(Issued {
        pem: cert.pem(),
        serial: hex::encode(serial),
        not_after_ms: (now + validity).unix_timestamp() * 1000,
    })
}

/// What a client certificate (DER) says, or `None` when it is not one of
/// ours: unparsable, or naming no agent.
pub fn read_client_cert(der: &[u8]) -> Option<ClientCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|g| match g {
                x509_parser::extensions::GeneralName::URI(u) => {
                    u.strip_prefix(AGENT_URI_PREFIX).map(str::to_string)
                }
                _ => None,
            })
        });
    let agent_id = from_san.or_else(|| {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string)
    })?;
    if agent_id.is_empty() {
        return None;
    }
    Some(ClientCert {
        agent_id,
        serial: hex::encode(cert.raw_serial()),
        not_after_ms: cert.validity().not_after.timestamp() * 1000,
    })
}

/// Why the handshake refused a certificate that chains correctly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRefusal {
    /// It names no agent.
    #[error("sertifikat tidak menyebut agen / certificate names no agent")]
    NoAgent,
    /// Revoked or superseded by a renewal.
    #[error("sertifikat dicabut atau diganti / certificate revoked or superseded")]
    Revoked,
    /// Its agent is revoked (a disabled one passes here; its token is refused).
    #[error("agen dicabut / agent revoked")]
    AgentBlocked,
    /// Its serial belongs to another agent in the store.
    #[error("serial milik agen lain / serial belongs to another agent")]
    WrongAgent,
}

#[derive(Debug, Default)]
struct Snapshot {
    active: HashMap<String, String>,
    revoked: HashSet<String>,
    blocked: HashSet<String>,
}

/// The handshake's view of which client certificates are in force.
#[derive(Debug)]
pub struct Revocations {
    /// Built-in CA (serials recorded) or the province's own.
    pub builtin: bool,
    snap: RwLock<Arc<Snapshot>>,
}

impl Revocations {
    /// An empty view (refresh before serving).
    pub fn new(builtin: bool) -> Self {
        Revocations {
            builtin,
            snap: RwLock::default(),
        }
    }

    /// Replace the view with the store's.
    pub fn set(&self, r: CertRefusals) {
        let snap = Snapshot {
            active: r.active.into_iter().collect(),
            revoked: r.revoked.into_iter().collect(),
            blocked: r.blocked_agents.into_iter().collect(),
        };
        *self.snap.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    /// Read the store and replace the view.
    pub async fn refresh(&self, store: &SharedStore) -> Result<(), crate::store::StoreError> {
        let r = store.with(|s| s.cert_refusals()).await?;
        self.set(r);
        Ok(())
    }

    /// Whether `c` is accepted right now (at the handshake).
    pub fn check(&self, c: &ClientCert) -> Result<(), CertRefusal> {
        let snap = Arc::clone(&self.snap.read().unwrap_or_else(|e| e.into_inner()));
        if snap.blocked.contains(&c.agent_id) {
            return Err(CertRefusal::AgentBlocked);
        }
        self.check_serial(c)
    }

    /// Whether `c`'s serial is in force, leaving the agent's state to the
    /// token check (which reads the store, not this view refreshed every
    /// 2 s, and names the reason).
    pub fn check_serial(&self, c: &ClientCert) -> Result<(), CertRefusal> {
        let snap = Arc::clone(&self.snap.read().unwrap_or_else(|e| e.into_inner()));
        if snap.revoked.contains(&c.serial) {
            return Err(CertRefusal::Revoked);
        }
        match snap.active.get(&c.serial) {
            Some(a) if *a != c.agent_id => Err(CertRefusal::WrongAgent),
            // An unknown serial that chains to the CA was signed with its
            // key (the CLI records every issuance): accepted, so a
            // certificate issued a moment ago works before the next refresh.
            _ => Ok(()),
        }
    }
}

/// Refresh `rev` from the store every [`REFRESH`] until `shutdown`.
pub async fn refresh_task(store: SharedStore, rev: Arc<Revocations>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = rev.refresh(&store).await {
            warn!(error = %e, "cannot refresh the client certificate revocations");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

/// WebPKI chain and validity checks, then [`Revocations`].
#[derive(Debug)]
struct Verifier {
    inner: Arc<dyn ClientCertVerifier>,
    rev: Arc<Revocations>,
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// A connection without a certificate may only redeem an enrolment
    /// code (the agent has no certificate yet); `ingest::auth` refuses
    /// everything else on it when certificates are required.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            warn!(reason = %e, "client certificate refused at the TLS handshake");
            return Err(e);
        }
        let Some(c) = read_client_cert(end_entity) else {
            warn!(reason = %CertRefusal::NoAgent, "client certificate refused at the TLS handshake");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        };
        if let Err(why) = self.rev.check(&c) {
            warn!(agent = %c.agent_id, serial = %c.serial, reason = %why,
                "client certificate refused at the TLS handshake");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How the gRPC port checks clients.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// CA certificate(s) client certificates must chain to (PEM file).
    pub ca_file: std::path::PathBuf,
    /// Required or optional.
    pub mode: ClientCertMode,
    /// Revocations checked at the handshake.
    pub revocations: Arc<Revocations>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The gRPC port's rustls configuration: `chain` and `key` as identity,
/// HTTP/2 only, client certificates per `client`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client: Option<&ClientAuth>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Verifier(std::path::PathBuf::new(), e.to_string()))?;
    let builder = match client {
        Some(client) => builder.with_client_cert_verifier(verifier(client)?),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Verifier(std::path::PathBuf::new(), e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

fn verifier(client: &ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(&client.ca_file).map_err(|source| TlsError::Io {
        path: client.ca_file.clone(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
        roots
            .add(c)
            .map_err(|e| TlsError::Rustls(client.ca_file.clone(), e))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate(client.ca_file.clone()));
    }
    let inner =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Verifier(client.ca_file.clone(), e.to_string()))?;
    Ok(Arc::new(Verifier {
        inner,
        rev: Arc::clone(&client.revocations),
    }))
}

/// Read a PEM chain and key for [`server_config`]; with `ca`, that CA
/// certificate is appended to the chain unless present (agents pin it).
pub fn load_chain(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    use rustls_pki_types::pem::PemObject;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    if let Some(ca) = ca {
        let c = CertificateDer::pem_slice_iter(&read(ca)?)
            .filter_map(Result::ok)
            .next()
            .ok_or_else(|| TlsError::NoCertificate(ca.to_path_buf()))?;
        if !chain.contains(&c) {
            chain.push(c);
        }
    }
    let k = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| TlsError::Verifier(key.to_path_buf(), e.to_string()))?;
    Ok((chain, k))
}

/// TLS streams of the gRPC port for tonic: handshakes run concurrently,
/// each within `timeout`; a refused handshake is logged with the peer and
/// the reason and never reaches the services.
pub fn incoming(
    mut conns: crate::net::Incoming,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<
    std::io::Result<tokio_rustls::server::TlsStream<Limited<TcpStream>>>,
> {
    use tokio_stream::StreamExt as _;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = conns.next() => n,
            };
            let Some(conn) = next else { return };
            let Ok(conn) = conn else { continue };
            let peer = conn.peer();
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(timeout, acceptor.accept(conn)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => {
                        warn!(peer = %peer, reason = %e, "TLS handshake refused");
                    }
                    Err(_) => info!(peer = %peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(key: &KeyPair) -> String {
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(key)
            .unwrap()
            .pem()
            .unwrap()
    }

    #[test]
    fn issued_certificates_name_the_agent_and_are_checked_against_the_store() {
        let d = tempfile::tempdir().unwrap();
        let info = crate::tls::ca_init(d.path(), &[], false).unwrap();
        let key = KeyPair::generate().unwrap();
        let issued = issue_client_cert(
            &info.files,
            &csr(&key),
            "dinkes-01",
            Duration::from_secs(3600),
        )
        .unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(issued.pem.as_bytes()).unwrap();
        let c = read_client_cert(&der).unwrap();
        assert_eq!(c.agent_id, "dinkes-01");
        assert_eq!(c.serial, issued.serial);
        assert_eq!(c.not_after_ms, issued.not_after_ms);

        let rev = Revocations::new(true);
        assert_eq!(rev.check(&c), Ok(()));
        rev.set(CertRefusals {
            active: vec![(c.serial.clone(), "dinkes-01".into())],
            ..Default::default()
        });
        assert_eq!(rev.check(&c), Ok(()));
        rev.set(CertRefusals {
            active: vec![(c.serial.clone(), "other".into())],
            ..Default::default()
        });
        assert_eq!(rev.check(&c), Err(CertRefusal::WrongAgent));
        rev.set(CertRefusals {
            revoked: vec![c.serial.clone()],
            ..Default::default()
        });
        assert_eq!(rev.check(&c), Err(CertRefusal::Revoked));
        let own_ca = Revocations::new(false);
        assert_eq!(own_ca.check(&c), Ok(()));
        own_ca.set(CertRefusals {
            blocked_agents: vec!["dinkes-01".into()],
            ..Default::default()
        });
        assert_eq!(own_ca.check(&c), Err(CertRefusal::AgentBlocked));
        // A request with a broken signature (the last bytes of the DER) is refused.
        let good = csr(&key);
        let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
        let last = lines.len() - 2; // the last base64 line, before the END line
        let flipped: String = lines[last]
            .chars()
            .enumerate()
            .map(|(i, ch)| match (i, ch) {
                (0, 'A') => 'B',
                (0, _) => 'A',
                (_, ch) => ch,
            })
            .collect();
        lines[last] = flipped;
        let bad = lines.join("\n");
        assert_ne!(bad.trim(), good.trim());
        assert!(issue_client_cert(&info.files, &bad, "x", Duration::from_secs(60)).is_err());
    }
}
