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

/// Where a renewed certificate goes when `collector.cert`'s directory is
/// not writable by the agent (the packaged service runs with a read-only
/// /etc): `agent.crt` in the spool directory, which the agent always owns.
pub fn renewed_path(spool_dir: &Path) -> PathBuf {
    spool_dir.join("agent.crt")
}

/// The certificate to present: `configured`, unless the spool holds a
/// renewed one that is valid for longer.
pub fn current_cert(configured: &Path, spool_dir: &Path) -> PathBuf {
    let renewed = renewed_path(spool_dir);
    let until = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|pem| validity(&pem))
            .map(|(_, not_after)| not_after)
    };
    match (until(&renewed), until(configured)) {
        (Some(r), Some(c)) if r > c => renewed,
        (Some(_), None) => renewed,
        _ => configured.to_path_buf(),
    }
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

/// How far the collector dates a certificate's start back, against
/// clock skew (seconds); not part of the life it grants.
const BACKDATED_S: i64 = 300;

/// Seconds from `now` until the certificate in `pem` should be renewed:
/// when less than a third of its granted life is left (0 when already
/// due). The granted life leaves out the start the collector dated back,
/// else a short-lived certificate would be due at once, every time.
pub fn renew_in(pem: &str, now: i64) -> Option<u64> {
    let (from, until) = validity(pem)?;
    let span = until - from;
    let life = if span > BACKDATED_S {
        span - BACKDATED_S
    } else {
        span
    };
    let due = until - life / 3;
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

/// `pantau-agent csr`: the agent's key (`collector.key`, else `agent.key`
/// next to `config_path`; made with mode 0600 when missing, kept when
/// present) and a request for it written to `agent.csr` next to the
/// configuration. Returns `(key, csr)` paths.
pub fn write_csr(
    config_path: &Path,
    agent_id: &str,
    key: Option<&Path>,
) -> Result<(PathBuf, PathBuf), IdentityError> {
    let key = key.map_or_else(|| key_path(config_path), Path::to_path_buf);
    let csr_path = config_path.with_file_name("agent.csr");
    if let Some(dir) = csr_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let csr = match std::fs::read_to_string(&key) {
        Ok(pem) => csr_for_key(&pem, agent_id)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key_pem, csr) = new_key_and_csr(agent_id)?;
            write_atomic(&key, &key_pem, 0o600)?;
            csr
        }
        Err(source) => return Err(IdentityError::Io { path: key, source }),
    };
    write_atomic(&csr_path, &csr, 0o644)?;
    Ok((key, csr_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_until(days: i64) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["a".into()]).unwrap();
        p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        p.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_longer_lived_certificate_renewed_into_the_spool_is_presented() {
        let dir = tempfile::tempdir().unwrap();
        let (configured, spool) = (dir.path().join("agent.crt"), dir.path().join("spool"));
        std::fs::create_dir(&spool).unwrap();
        std::fs::write(&configured, cert_until(10)).unwrap();
        // Nothing renewed yet: the configured one.
        assert_eq!(current_cert(&configured, &spool), configured);
        // Renewed into the spool (read-only /etc): valid longer, presented.
        std::fs::write(renewed_path(&spool), cert_until(30)).unwrap();
        assert_eq!(current_cert(&configured, &spool), renewed_path(&spool));
        // A fresh enrolment writes a newer configured certificate: it wins.
        std::fs::write(&configured, cert_until(60)).unwrap();
        assert_eq!(current_cert(&configured, &spool), configured);
        // An unreadable configured certificate leaves the renewed one.
        std::fs::write(&configured, "garbage").unwrap();
        assert_eq!(current_cert(&configured, &spool), renewed_path(&spool));
    }

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

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_granted_life() {
        let params = |secs: i64| {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.not_before =
                time::OffsetDateTime::from_unix_timestamp(1_000_000 - BACKDATED_S).unwrap();
            p.not_after = time::OffsetDateTime::from_unix_timestamp(1_000_000 + secs).unwrap();
            p.self_signed(&rcgen::KeyPair::generate().unwrap())
                .unwrap()
                .pem()
        };
        // 30 s granted (issued at 1,000,000): due 20 s later, not at once.
        assert_eq!(renew_in(&params(30), 1_000_000), Some(20));
        // 30 days: due after 20 days.
        assert_eq!(renew_in(&params(30 * 86_400), 1_000_000), Some(20 * 86_400));
        assert_eq!(renew_in(&params(30), 1_000_100), Some(0));
    }

    #[test]
    fn csr_makes_a_private_key_once_and_a_request_next_to_the_config() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.toml");
        let (key, csr) = write_csr(&cfg, "dinkes-01", None).unwrap();
        assert_eq!(key, dir.path().join("agent.key"));
        assert_eq!(csr, dir.path().join("agent.csr"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read_to_string(&key).unwrap();
        assert!(
            std::fs::read_to_string(&csr)
                .unwrap()
                .contains("CERTIFICATE REQUEST")
        );
        // Again: the key is kept (a certificate issued for it stays valid).
        write_csr(&cfg, "dinkes-01", None).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), first);
    }
}
