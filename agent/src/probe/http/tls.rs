//! How an HTTP target's server certificate is trusted: the system store
//! plus the bundled public roots, the target's `ca_file`, or (with
//! `tls_verify = false`) nothing; in every case the leaf certificate is
//! kept, so its expiry, subject and issuer are recorded even when the
//! handshake fails or verification is off.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Why a target's `ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read or is not PEM.
    #[error("ca_file {}: tidak dapat dibaca sebagai PEM / cannot be read as PEM: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("ca_file {}: tidak memuat sertifikat (BEGIN CERTIFICATE) / holds no certificate", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the file is not a usable trust anchor.
    #[error("ca_file {}: sertifikat tidak dapat dipakai sebagai CA / a certificate is not a usable CA: {source}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: rustls::Error,
    },
    /// The verifier could not be built from the roots.
    #[error("tidak ada CA yang dipercaya / no trusted CA: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// Every certificate of a PEM file, or why not.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CaFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut store = RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|source| CaFileError::Unusable {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(certs)
}

/// The roots every https target trusts: the bundled public roots and the
/// system store (`/etc/ssl/certs`, where a province CA installed with
/// `update-ca-certificates` lands).
pub fn base_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        added,
        ignored,
        errors = native.errors.len(),
        "system trust store loaded"
    );
    roots
}

/// The leaf certificate seen in the last handshake.
pub type Seen = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// A verifier that keeps the leaf certificate and then verifies it with
/// webpki (or, for `tls_verify = false`, accepts it).
#[derive(Debug)]
pub struct Capturing {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Seen,
}

impl Capturing {
    /// A verifier trusting `roots` plus `extra`, or none if `verify` is false.
    pub fn new(
        roots: &RootCertStore,
        extra: Vec<CertificateDer<'static>>,
        verify: bool,
        provider: Arc<CryptoProvider>,
        seen: Seen,
    ) -> Result<Self, CaFileError> {
        let inner = if verify {
            let mut r = roots.clone();
            r.add_parsable_certificates(extra);
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(r), provider.clone())
                    .build()?,
            )
        } else {
            None
        };
        Ok(Capturing {
            inner,
            provider,
            seen,
        })
    }
}

impl ServerCertVerifier for Capturing {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(end_entity.clone().into_owned());
        match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What the probe records of a server certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Subject, e.g. `CN=app.opd.go.id`.
    pub subject: String,
    /// Issuer, e.g. `CN=CA Provinsi`.
    pub issuer: String,
}

/// Read a DER certificate's validity, subject and issuer.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let at = |t: i64| {
        u64::try_from(t)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    };
    let v = c.validity();
    Some(CertInfo {
        not_before: at(v.not_before.timestamp())?,
        not_after: at(v.not_after.timestamp())?,
        subject: short(c.subject().to_string()),
        issuer: short(c.issuer().to_string()),
    })
}

/// A name cut to 100 characters, without control characters.
fn short(s: String) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// A date as YYYY-MM-DD (UTC).
pub fn day(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d")
        .to_string()
}
