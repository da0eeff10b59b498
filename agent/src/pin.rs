//! `pantau-agent enroll --ca-fingerprint`: pin the collector's CA by its
//! SHA-256 fingerprint. A first TLS handshake only fetches the chain the
//! collector presents (nothing is sent over it); the certificate whose
//! SHA-256 equals the fingerprint becomes the only trusted root, and the
//! enrolment itself then runs over a normally verified connection (chain,
//! validity and host name checked against that CA).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Why the CA could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The fingerprint is not 32 bytes of hex.
    #[error(
        "--ca-fingerprint `{0}` bukan sidik jari SHA-256 (64 digit heksadesimal, boleh dengan `:`) \
         / is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
    )]
    Fingerprint(String),
    /// The URL has no usable host and port.
    #[error("--collector `{0}`: pinning needs an https:// URL with a host / butuh URL https://")]
    Url(String),
    /// The collector could not be reached or the handshake failed.
    #[error(
        "Tidak dapat membuka TLS ke collector di {addr} / cannot open TLS to the collector at \
         {addr}: {reason}"
    )]
    Connect {
        /// `host:port`.
        addr: String,
        /// Cause.
        reason: String,
    },
    /// No certificate of the presented chain has the fingerprint.
    #[error(
        "Sidik jari CA tidak cocok: tidak satu pun sertifikat yang dikirim collector di {addr} \
         bersidik jari {want}. Jangan lanjutkan; cocokkan dengan `pantau-collector ca show`. \
         Tidak ada berkas yang ditulis.\nCA fingerprint mismatch: no certificate the collector \
         at {addr} presented has fingerprint {want}. Do not continue; compare with \
         `pantau-collector ca show`. Nothing was written.\n  presented: {got}"
    )]
    Mismatch {
        /// `host:port`.
        addr: String,
        /// The pinned fingerprint.
        want: String,
        /// Fingerprints of the presented chain.
        got: String,
    },
}

/// Parse a fingerprint (`AB:CD:...` or plain hex, any case).
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], PinError> {
    let hex_text: String = s
        .trim()
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&hex_text).map_err(|_| PinError::Fingerprint(s.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| PinError::Fingerprint(s.to_string()))
}

/// A fingerprint as colon-separated upper-case hex.
pub fn show(fp: &[u8]) -> String {
    fp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Hands the presented chain over without judging it: only used to read
/// the chain, never to send anything.
#[derive(Debug)]
struct ChainReader(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ChainReader {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate chain the collector at `url` (`https://host:port`)
/// presents.
async fn presented_chain(url: &str) -> Result<(String, Vec<CertificateDer<'static>>), PinError> {
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|_| PinError::Url(url.into()))?;
    let (Some(host), Some("https")) = (uri.host(), uri.scheme_str()) else {
        return Err(PinError::Url(url.into()));
    };
    let port = uri.port_u16().unwrap_or(443);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    };
    let fail = |reason: String| PinError::Connect {
        addr: addr.clone(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainReader(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(bare.clone()).map_err(|e| fail(e.to_string()))?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| fail(e.to_string()))
    };
    let tls = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .map_err(|_| fail("timed out / waktu habis".into()))??;
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_default();
    Ok((addr, chain))
}

/// The CA certificate (PEM) in the chain the collector at `url` presents
/// whose SHA-256 is `fingerprint`.
pub async fn fetch_pinned_ca(url: &str, fingerprint: &[u8; 32]) -> Result<String, PinError> {
    let (addr, chain) = presented_chain(url).await?;
    let found = chain
        .iter()
        .find(|c| Sha256::digest(c.as_ref()).as_slice() == fingerprint);
    match found {
        Some(der) => Ok(pem(der.as_ref())),
        None => Err(PinError::Mismatch {
            addr,
            want: show(fingerprint),
            got: chain
                .iter()
                .map(|c| show(&Sha256::digest(c.as_ref())))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// SHA-256 of the first certificate of a PEM text.
pub fn pem_fingerprint(pem_text: &str) -> Option<[u8; 32]> {
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem_text.as_bytes()).ok()?;
    Some(Sha256::digest(der.as_ref()).into())
}

/// A DER certificate as PEM.
fn pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let fp = [0xABu8; 32];
        assert_eq!(parse_fingerprint(&show(&fp)).unwrap(), fp);
        assert_eq!(
            parse_fingerprint(&show(&fp).replace(':', "").to_lowercase()).unwrap(),
            fp
        );
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }

    #[test]
    fn pem_round_trips() {
        for len in [1usize, 2, 3, 4, 100, 700] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            use rustls::pki_types::pem::PemObject;
            let back = CertificateDer::from_pem_slice(pem(&der).as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "len {len}");
        }
    }
}
