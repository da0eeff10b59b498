//! The agent's client certificate (mutual TLS): its key is made here and
//! never leaves the machine; the collector's CA signs a request for it at
//! enrolment and again, over the authenticated channel, before it expires.

use std::path::{Path, PathBuf};

/// Why a key or request could not be made or a file written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Key or request generation failed.
    #[error("kunci/CSR tidak dapat dibuat / cannot make key or CSR: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A new key and a PKCS#10 request for it: `(key_pem, csr_pem)`.
pub fn new_key_and_csr(agent_id: &str) -> Result<(String, String), IdentityError> {
    let key = rcgen::KeyPair::generate()?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, agent_id);
    let csr = p.serialize_request(&key)?.pem()?;
    Ok((key.serialize_pem(), csr))
}

/// A CSR for an existing key (PEM).
pub fn csr_for_key(key_pem: &str, agent_id: &str) -> Result<String, IdentityError> {
    let key = rcgen::KeyPair::from_pem(key_pem)?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, agent_id);
    Ok(p.serialize_request(&key)?.pem()?)
}

/// `agent.crt` next to the configuration file.
pub fn cert_path(config: &Path) -> PathBuf {
    config.with_file_name("agent.crt")
}

/// `agent.key` next to the configuration file.
pub fn key_path(config: &Path) -> PathBuf {
    config.with_file_name("agent.key")
}

/// Validity of the first certificate in `pem`: `(not_before, not_after)`,
/// seconds since the epoch.
pub fn validity(pem: &str) -> Option<(i64, i64)> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, c) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some((
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

/// Seconds from `now` until the certificate in `pem` should be renewed:
/// when less than a third of its life is left (0 when already due).
pub fn renew_in(pem: &str, now: i64) -> Option<u64> {
    let (from, until) = validity(pem)?;
    let due = until - (until - from) / 3;
    Some(due.saturating_sub(now).max(0) as u64)
}

/// Write `text` to `path` atomically (temporary file, fsync, rename) with `mode`.
pub fn write_atomic(path: &Path, text: &str, mode: u32) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp-new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_is_made_for_a_new_key() {
        let (key, csr) = new_key_and_csr("dinkes-01").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert!(csr.contains("CERTIFICATE REQUEST"));
        assert!(
            csr_for_key(&key, "dinkes-01")
                .unwrap()
                .contains("CERTIFICATE REQUEST")
        );
    }
}
