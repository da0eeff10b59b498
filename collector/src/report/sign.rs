//! Integrity: the collector's Ed25519 key, a signed manifest of SHA-256
//! digests for every file of a report bundle, the raw-results export, and
//! verification (`pantau-collector verify`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// Key file inside the data directory (hex of the 32-byte secret, mode 0600).
pub const KEY_FILE: &str = "report-signing.key";
/// Manifest file name in a bundle.
pub const MANIFEST: &str = "MANIFEST.txt";
/// Detached signature of the manifest (hex).
pub const SIGNATURE: &str = "MANIFEST.sig";
const MAGIC: &str = "pantau-manifest 1";

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The key file is damaged.
    #[error("{0}: not a Pantau signing key (64 hex characters expected)")]
    BadKey(PathBuf),
    /// Verification failed; the message says what changed.
    #[error("VERIFICATION FAILED: {0}")]
    Invalid(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IntegrityError + '_ {
    move |source| IntegrityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Load the collector's signing key, creating it on first use.
pub fn load_or_create_key(data_dir: &Path) -> Result<SigningKey, IntegrityError> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let bytes = hex::decode(s.trim()).map_err(|_| IntegrityError::BadKey(path.clone()))?;
            let arr: [u8; 32] = bytes
                .try_into()
                .map_err(|_| IntegrityError::BadKey(path.clone()))?;
            Ok(SigningKey::from_bytes(&arr))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
            let secret: [u8; 32] = rand::random();
            let key = SigningKey::from_bytes(&secret);
            let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
            {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(io(&tmp))?;
                f.write_all(hex::encode(secret).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(io(&tmp))?;
            }
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(key)
        }
        Err(e) => Err(IntegrityError::Io { path, source: e }),
    }
}

/// Public key as hex.
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Write `files` into `dir` with a signed manifest.
pub fn write_bundle(
    dir: &Path,
    files: &[(String, Vec<u8>)],
    key: &SigningKey,
) -> Result<(), IntegrityError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut manifest = format!("{MAGIC}\npublic-key {}\n", public_hex(key));
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
        manifest.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))));
    }
    let sig = key.sign(manifest.as_bytes());
    let mp = dir.join(MANIFEST);
    std::fs::write(&mp, &manifest).map_err(io(&mp))?;
    let sp = dir.join(SIGNATURE);
    std::fs::write(&sp, hex::encode(sig.to_bytes()) + "\n").map_err(io(&sp))?;
    Ok(())
}

/// What a successful verification checked.
#[derive(Debug)]
pub struct Verified {
    /// Bundle directory.
    pub dir: PathBuf,
    /// Files whose digests matched.
    pub files: Vec<String>,
    /// Signer's public key (hex).
    pub public_key: String,
}

/// Verify the bundle containing `path` (the directory, or any file in it).
/// With `expected`, the signer must also be that key.
pub fn verify(path: &Path, expected: Option<&str>) -> Result<Verified, IntegrityError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let bad = IntegrityError::Invalid;
    let mp = dir.join(MANIFEST);
    let manifest = std::fs::read(&mp).map_err(|e| {
        bad(format!(
            "{} cannot be read ({e}); a report bundle has {MANIFEST} and {SIGNATURE} beside the report",
            mp.display()
        ))
    })?;
    let sp = dir.join(SIGNATURE);
    let sig_hex = std::fs::read_to_string(&sp)
        .map_err(|e| bad(format!("{} cannot be read ({e})", sp.display())))?;
    let text = String::from_utf8(manifest.clone())
        .map_err(|_| bad(format!("{MANIFEST} is not text: it was altered")))?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad(format!("{MANIFEST} does not start with `{MAGIC}`")));
    }
    let pk_hex = lines
        .next()
        .and_then(|l| l.strip_prefix("public-key "))
        .ok_or_else(|| bad(format!("{MANIFEST} has no public-key line")))?
        .to_string();
    let pk: [u8; 32] = hex::decode(&pk_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{MANIFEST}: the public key is malformed")))?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|_| {
        bad(format!(
            "{MANIFEST}: the public key is not a valid Ed25519 key"
        ))
    })?;
    let sig: [u8; 64] = hex::decode(sig_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{SIGNATURE} is malformed")))?;
    vk.verify(&manifest, &Signature::from_bytes(&sig)).map_err(|_| {
        bad(format!(
            "the signature in {SIGNATURE} does not match {MANIFEST}: the manifest was altered or signed by another key"
        ))
    })?;
    if let Some(exp) = expected
        && !exp.eq_ignore_ascii_case(&pk_hex)
    {
        return Err(bad(format!(
            "signed by key {pk_hex}, not by the collector's key {exp}"
        )));
    }
    let mut files = Vec::new();
    for l in lines {
        let (digest, name) = l
            .split_once("  ")
            .ok_or_else(|| bad(format!("{MANIFEST}: malformed line `{l}`")))?;
        if name.contains('/') || name.contains("..") {
            return Err(bad(format!(
                "{MANIFEST}: file name `{name}` is not allowed"
            )));
        }
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| {
            bad(format!(
                "{name} is listed in the manifest but cannot be read ({e})"
            ))
        })?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != digest {
            return Err(bad(format!(
                "{name} was changed after signing: SHA-256 is {got}, the signed manifest says {digest}"
            )));
        }
        files.push(name.to_string());
    }
    if path.is_file() {
        let own = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if own != MANIFEST && own != SIGNATURE && !files.iter().any(|f| f == own) {
            return Err(bad(format!("{own} is not listed in the signed manifest")));
        }
    }
    Ok(Verified {
        dir,
        files,
        public_key: pk_hex,
    })
}

/// Raw results of `[from, to)` (one OPD or all) as CSV, for recomputation.
pub fn raw_export(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let mut out = String::from(
        "agent,epoch,seq,opd,target,kind,observed_at_ms,received_at_ms,outcome,value_ms,sent,received,late,clock_flag\n",
    );
    let mut st = conn
        .prepare(
            "SELECT agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms, received_at_ms, outcome,
                    value_ms, sent, received, late, clock_flag
             FROM result WHERE observed_at_ms >= ?1 AND observed_at_ms < ?2 AND (?3 IS NULL OR opd_id = ?3)
             ORDER BY opd_id, agent_id, epoch, seq",
        )
        .map_err(|source| StoreError::Sqlite {
            op: "prepare raw export",
            source,
        })?;
    let mut rows = st
        .query(params![from_ms, to_ms, opd])
        .map_err(|source| StoreError::Sqlite {
            op: "raw export",
            source,
        })?;
    let e = |source| StoreError::Sqlite {
        op: "raw export row",
        source,
    };
    while let Some(r) = rows.next().map_err(e)? {
        let v: Option<f64> = r.get(9).map_err(e)?;
        let sent: Option<i64> = r.get(10).map_err(e)?;
        let recv: Option<i64> = r.get(11).map_err(e)?;
        let flag: Option<String> = r.get(13).map_err(e)?;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.get::<_, String>(0).map_err(e)?,
            r.get::<_, i64>(1).map_err(e)?,
            r.get::<_, i64>(2).map_err(e)?,
            r.get::<_, String>(3).map_err(e)?,
            r.get::<_, String>(4).map_err(e)?,
            r.get::<_, String>(5).map_err(e)?,
            r.get::<_, i64>(6).map_err(e)?,
            r.get::<_, i64>(7).map_err(e)?,
            r.get::<_, String>(8).map_err(e)?,
            v.map_or(String::new(), |v| v.to_string()),
            sent.map_or(String::new(), |v| v.to_string()),
            recv.map_or(String::new(), |v| v.to_string()),
            r.get::<_, i64>(12).map_err(e)?,
            flag.unwrap_or_default(),
        ));
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_change_fails() {
        let d = tempfile::tempdir().unwrap();
        let key = load_or_create_key(d.path()).unwrap();
        // Same key on the next load.
        assert_eq!(
            public_hex(&load_or_create_key(d.path()).unwrap()),
            public_hex(&key)
        );
        let b = d.path().join("b");
        write_bundle(
            &b,
            &[("laporan.csv".into(), b"opd,availability\nx,99.5\n".to_vec())],
            &key,
        )
        .unwrap();
        let ok = verify(&b.join("laporan.csv"), Some(&public_hex(&key))).unwrap();
        assert_eq!(ok.files, vec!["laporan.csv".to_string()]);
        // A different expected key fails.
        let other = SigningKey::from_bytes(&[7; 32]);
        assert!(verify(&b, Some(&public_hex(&other))).is_err());
        // One byte changed in the report.
        let mut bytes = std::fs::read(b.join("laporan.csv")).unwrap();
        bytes[20] = b'8';
        std::fs::write(b.join("laporan.csv"), &bytes).unwrap();
        let e = verify(&b, None).unwrap_err().to_string();
        assert!(e.contains("laporan.csv was changed after signing"), "{e}");
        // Restore it, then change one byte of the manifest instead.
        bytes[20] = b'9';
        std::fs::write(b.join("laporan.csv"), &bytes).unwrap();
        assert!(verify(&b, None).is_ok());
        let mut m = std::fs::read(b.join(MANIFEST)).unwrap();
        let last = m.len() - 2;
        m[last] = b'X';
        std::fs::write(b.join(MANIFEST), &m).unwrap();
        let e = verify(&b, None).unwrap_err().to_string();
        assert!(e.contains("signature"), "{e}");
    }
}
