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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::web::{HttpLimits, serve_with};

    /// A client stuck before its handshake neither blocks other clients nor
    /// keeps its connection past the handshake timeout; a client trusting
    /// the built-in CA gets its answer (with the security headers) over TLS.
    #[tokio::test]
    async fn slow_handshake_is_cut_and_blocks_nobody() {
        let d = tempfile::tempdir().unwrap();
        let info = crate::tls::ca_init(d.path(), &[], false).unwrap();
        let files = &info.files;
        let tls = acceptor(&files.server_cert(), &files.server_key()).unwrap();
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let limits = HttpLimits {
            handshake: Duration::from_millis(500),
            ..HttpLimits::default()
        };
        let server = tokio::spawn(serve_with(
            app,
            listener,
            limits,
            None,
            Some(tls),
            shutdown.clone(),
        ));

        let mut stuck = tokio::net::TcpStream::connect(addr).await.unwrap();
        let ca = std::fs::read(files.ca_cert()).unwrap();
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        let res = client
            .get(format!("https://localhost:{}/healthz", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("content-security-policy"));
        assert_eq!(res.text().await.unwrap(), "ok");

        // The stuck client is closed by the server (read gives EOF or an
        // error), well before this test's own deadline.
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(30), stuck.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "still open: {closed:?}"
        );

        // Plain HTTP on the HTTPS port gets no HTTP answer.
        let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", addr.port())).await;
        assert!(plain.is_err(), "{plain:?}");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn unreadable_or_empty_files_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing.crt");
        let e = acceptor(&missing, &missing).err().expect("missing files");
        assert!(e.to_string().contains("missing.crt"), "{e}");
        let empty = d.path().join("empty.crt");
        std::fs::write(&empty, "").unwrap();
        let e = acceptor(&empty, &empty).err().expect("empty files");
        assert!(matches!(e, HttpsError::NoCertificate(_)), "{e}");
    }
}
