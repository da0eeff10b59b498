//! HTTPS on the HTTP port: the gRPC port's certificate (the built-in CA's
//! or the configured `[tls] cert`/`key`) served with rustls. Agents' bandwidth
//! tests send their token here, so it must not travel in cleartext.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Why the HTTP port's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// A certificate or key file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{}: no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("{}: no PEM private key: {source}", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the pair (for example a key that does not match).
    #[error("certificate {}: {source}", cert.display())]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// Cause.
        source: rustls::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, HttpsError> {
    std::fs::read(path).map_err(|source| HttpsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A TLS acceptor for the HTTP port from a PEM certificate chain and key.
/// HTTP/1.1 only (ALPN), like the plain port.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, HttpsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(HttpsError::NoCertificate(cert.to_path_buf()));
    }
    let private =
        PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|source| HttpsError::NoKey {
            path: key.to_path_buf(),
            source,
        })?;
    let rustls_err = |source| HttpsError::Rustls {
        cert: cert.to_path_buf(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(rustls_err)?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(rustls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
