//! TLS of the agents' gRPC port: the built-in CA (`pantau-collector ca
//! init`), the server identity it issues, and loading the province's own
//! certificate and key instead.
//!
//! Files of the built-in CA live in `<data_dir>/tls/`: `ca.crt`, `ca.key`
//! (0600), `server.crt`, `server.key` (0600). Agents trust `ca.crt`; its
//! SHA-256 fingerprint is what `ca init` and `ca show` print.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

/// Directory of the built-in CA inside the data directory.
pub const DIR: &str = "tls";
/// CA certificate file name (given to agents).
pub const CA_CERT: &str = "ca.crt";
/// CA private key file name (0600, never leaves the collector).
pub const CA_KEY: &str = "ca.key";
/// Server certificate file name.
pub const SERVER_CERT: &str = "server.crt";
/// Server private key file name (0600).
pub const SERVER_KEY: &str = "server.key";

/// Why TLS material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Key or certificate generation failed.
    #[error("pembuatan sertifikat gagal / certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no certificate.
    #[error("{0}: tidak berisi sertifikat PEM / holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// A CA already exists and `ca init` would replace it.
    #[error(
        "CA sudah ada di {0}; agen yang terdaftar mempercayainya, jadi tidak ditimpa. \
         / A CA already exists in {0}; enrolled agents trust it, so it is not replaced."
    )]
    CaExists(PathBuf),
    /// A certificate signing request could not be read or its signature is wrong.
    #[error("permintaan sertifikat (CSR) tidak sah / invalid certificate signing request: {0}")]
    Csr(rcgen::Error),
    /// rustls refused the certificates or key.
    #[error("{0}: TLS: {1}")]
    Rustls(PathBuf, tokio_rustls::rustls::Error),
    /// The client certificate verifier or a key could not be set up.
    #[error("{0}: {1}")]
    Verifier(PathBuf, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The files of the built-in CA under `data_dir`.
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// `tls/` directory.
    pub dir: PathBuf,
}

impl CaFiles {
    /// The files under `<data_dir>/tls`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        CaFiles {
            dir: data_dir.join(DIR),
        }
    }
    /// `ca.crt`.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }
    /// `ca.key`.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join(CA_KEY)
    }
    /// `server.crt`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }
    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join(SERVER_KEY)
    }
}

/// What `ca init` made.
#[derive(Debug, Clone)]
pub struct CaInfo {
    /// Where the files are.
    pub files: CaFiles,
    /// SHA-256 of the CA certificate (DER), colon-separated upper-case hex.
    pub fingerprint: String,
    /// Names and addresses in the server certificate.
    pub names: Vec<String>,
}

/// Validity of the built-in CA's server certificate; it is issued anew at
/// start when less than [`SERVER_RENEW_BEFORE`] is left.
pub const SERVER_VALIDITY: std::time::Duration = std::time::Duration::from_secs(90 * 86400);

/// How far the server certificate's start is dated back, for agents whose
/// clocks run behind (one ahead is covered by the reissue 30 days early).
const SERVER_BACKDATE: time::Duration = time::Duration::days(30);
/// Re-issue the server certificate at start when it expires within this.
pub const SERVER_RENEW_BEFORE: std::time::Duration = std::time::Duration::from_secs(30 * 86400);

/// Why the built-in CA's server certificate must be issued (anew) at start:
/// missing, expiring within [`SERVER_RENEW_BEFORE`], or lacking one of
/// `names` (plus [`default_names`]); `None` when it is fine.
pub fn server_cert_stale(files: &CaFiles, names: &[String]) -> Option<&'static str> {
    if !files.server_key().exists() {
        return Some("missing");
    }
    let Some(v) = std::fs::read_to_string(files.server_cert())
        .ok()
        .and_then(|pem| cert_validity(&pem))
    else {
        return Some("missing");
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if v.not_after - now < SERVER_RENEW_BEFORE.as_secs() as i64 {
        return Some("expiring");
    }
    let want = default_names().into_iter().chain(names.iter().cloned());
    let have: Vec<String> = v.names.iter().map(|n| n.to_ascii_lowercase()).collect();
    for n in want {
        let n = n.to_ascii_lowercase();
        let n = n.parse::<std::net::IpAddr>().map_or(n, |ip| ip.to_string());
        if !have.contains(&n) {
            return Some("names changed");
        }
    }
    None
}

/// Validity and names of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// Start, seconds since the epoch.
    pub not_before: i64,
    /// End, seconds since the epoch.
    pub not_after: i64,
    /// DNS names and IP addresses (SAN).
    pub names: Vec<String>,
}

/// The validity of the first certificate of a PEM text.
pub fn cert_validity(pem: &str) -> Option<Validity> {
    let der = first_der(pem)?;
    let (_, c) = x509_parser::parse_x509_certificate(&der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|i| i.to_string()));
                }
                _ => {}
            }
        }
    }
    Some(Validity {
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        names,
    })
}

/// The fixed parameters of the built-in CA. Issuing re-creates the issuer
/// from these and the CA key (same subject and key identifier).
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "Pantau collector CA");
    p.distinguished_name
        .push(DnType::OrganizationName, "Pantau");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Names every collector certificate carries besides the configured ones.
pub fn default_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// Write `contents` to `path`, mode 0600 when `secret`.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(path))?;
    }
    f.write_all(contents.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Create the CA (unless one exists, then it is reused when `reuse`) and a
/// server certificate for `names` (plus [`default_names`]).
pub fn ca_init(data_dir: &Path, names: &[String], reuse: bool) -> Result<CaInfo, TlsError> {
    let files = CaFiles::in_data_dir(data_dir);
    std::fs::create_dir_all(&files.dir).map_err(io(&files.dir))?;
    let (ca_key, ca_pem) = if files.ca_key().exists() && files.ca_cert().exists() {
        if !reuse {
            return Err(TlsError::CaExists(files.dir.clone()));
        }
        let key_pem = read(&files.ca_key())?;
        (KeyPair::from_pem(&key_pem)?, read(&files.ca_cert())?)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_file(&files.ca_key(), &key.serialize_pem(), true)?;
        write_file(&files.ca_cert(), &cert.pem(), false)?;
        (key, cert.pem())
    };
    let mut all: Vec<String> = default_names();
    for n in names {
        if !all.contains(n) {
            all.push(n.clone());
        }
    }
    let issuer = Issuer::new(ca_params()?, &ca_key);
    let server_key = KeyPair::generate()?;
    let mut p = CertificateParams::new(all.clone())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "pantau-collector");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    // Agents check it with their own clocks, which may be hours or days
    // behind (Pantau places and discloses such results instead of losing
    // them): valid from well before its issuance.
    p.not_before = now - SERVER_BACKDATE;
    p.not_after = now + SERVER_VALIDITY;
    let cert = p.signed_by(&server_key, &issuer)?;
    write_file(&files.server_key(), &server_key.serialize_pem(), true)?;
    write_file(&files.server_cert(), &cert.pem(), false)?;
    Ok(CaInfo {
        fingerprint: fingerprint_pem(&ca_pem).ok_or(TlsError::NoCertificate(files.ca_cert()))?,
        files,
        names: all,
    })
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// SHA-256 of the first certificate in a PEM text, as `AB:CD:...`.
pub fn fingerprint_pem(pem: &str) -> Option<String> {
    let der = first_der(pem)?;
    Some(fingerprint_der(&der))
}

/// SHA-256 of DER bytes as colon-separated upper-case hex.
pub fn fingerprint_der(der: &[u8]) -> String {
    let d = Sha256::digest(der);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
fn first_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.to_vec())
}

/// The fingerprint of the CA certificate at `path`.
pub fn fingerprint_file(path: &Path) -> Result<String, TlsError> {
    fingerprint_pem(&read(path)?).ok_or_else(|| TlsError::NoCertificate(path.to_path_buf()))
}

/// The server's certificate chain and key (PEM) from `cert` and `key`;
/// with `ca`, that CA certificate is sent at the end of the chain (unless
/// `cert` holds it already), so agents can pin it by fingerprint.
pub fn load_identity(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<tonic::transport::Identity, TlsError> {
    let mut c = read(cert)?;
    if first_der(&c).is_none() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    if let Some(ca) = ca {
        let ca_pem = read(ca)?;
        let ca_block = pem_blocks(&ca_pem)
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::NoCertificate(ca.to_path_buf()))?;
        if !pem_blocks(&c).contains(&ca_block) {
            if !c.ends_with('\n') {
                c.push('\n');
            }
            c.push_str(&ca_block);
        }
    }
    Ok(tonic::transport::Identity::from_pem(c, read(key)?))
}

/// The `CERTIFICATE` blocks of a PEM text, each with its BEGIN/END lines
/// and a final newline.
fn pem_blocks(pem: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(b) = rest.find(BEGIN) {
        let Some(e) = rest[b..].find(END) else { break };
        let block: String = rest[b..b + e + END.len()]
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n");
        out.push(block + "\n");
        rest = &rest[b + e + END.len()..];
    }
    out
}

/// The CA certificate (PEM) enrolling agents are given: the built-in CA's
/// `ca.crt`, or with an own certificate (`tls.cert`) the last certificate
/// of its chain when the chain has more than the server's own. `None` with
/// `tls.insecure` or when unknown.
pub fn enrol_ca_pem(cfg: &crate::config::CollectorConfig) -> Option<String> {
    if cfg.tls.insecure {
        return None;
    }
    match &cfg.tls.cert_key {
        None => {
            let pem =
                std::fs::read_to_string(CaFiles::in_data_dir(&cfg.data_dir).ca_cert()).ok()?;
            pem_blocks(&pem).into_iter().next()
        }
        Some((cert, _)) => {
            let blocks = pem_blocks(&std::fs::read_to_string(cert).ok()?);
            (blocks.len() > 1).then(|| blocks.last().cloned()).flatten()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_split_and_normalised() {
        let d = tempfile::tempdir().unwrap();
        let info = ca_init(d.path(), &[], false).unwrap();
        let ca = read(&info.files.ca_cert()).unwrap();
        let server = read(&info.files.server_cert()).unwrap();
        let chain = format!("{server}\r\n{ca}");
        let blocks = pem_blocks(&chain);
        assert_eq!(blocks.len(), 2);
        assert_eq!(fingerprint_pem(&blocks[1]).unwrap(), info.fingerprint);
        let mut cfg = crate::config::CollectorConfig::defaults();
        cfg.data_dir = d.path().to_path_buf();
        assert_eq!(
            fingerprint_pem(&enrol_ca_pem(&cfg).unwrap()).unwrap(),
            info.fingerprint
        );
    }

    #[test]
    fn init_writes_ca_and_server_files_with_private_keys_0600() {
        let d = tempfile::tempdir().unwrap();
        let info = ca_init(d.path(), &["pantau.example.go.id".into()], false).unwrap();
        assert_eq!(info.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(
            fingerprint_file(&info.files.ca_cert()).unwrap(),
            info.fingerprint
        );
        assert!(info.names.contains(&"pantau.example.go.id".to_string()));
        #[cfg(unix)]
        for f in [info.files.ca_key(), info.files.server_key()] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f:?}");
        }
        load_identity(&info.files.server_cert(), &info.files.server_key(), None).unwrap();
        load_identity(
            &info.files.server_cert(),
            &info.files.server_key(),
            Some(&info.files.ca_cert()),
        )
        .unwrap();
        // A second init refuses to replace the CA agents trust...
        let again = ca_init(d.path(), &[], false).unwrap_err();
        assert!(matches!(again, TlsError::CaExists(_)), "{again}");
        // ...and a reissue keeps it.
        let re = ca_init(d.path(), &["10.10.0.5".into()], true).unwrap();
        assert_eq!(re.fingerprint, info.fingerprint);
    }
}
