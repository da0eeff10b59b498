//! Integrity: the collector's Ed25519 key, a signed manifest of SHA-256
//! digests for every file of a report bundle, and verification
//! (`pantau-collector verify`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
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

/// Load the collector's signing key from the data directory, creating it on
/// first use.
pub fn load_or_create_key(data_dir: &Path) -> Result<SigningKey, IntegrityError> {
    load_or_create_key_at(&data_dir.join(KEY_FILE))
}

/// Load the signing key at `path` (`[report] signing_key`, by default
/// `<data_dir>/report-signing.key`), creating it (mode 0600, its directory
/// 0700 when created) on first use. A key file readable by others is
/// tightened to 0600.
pub fn load_or_create_key_at(path: &Path) -> Result<SigningKey, IntegrityError> {
    match load_key(path)? {
        Some(k) => Ok(k),
        None => {
            let key = SigningKey::from_bytes(&rand::random());
            write_key(path, &key)?;
            Ok(key)
        }
    }
}

/// The key at `path`, or `None` when there is no file.
pub fn load_key(path: &Path) -> Result<Option<SigningKey>, IntegrityError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let bytes =
                hex::decode(s.trim()).map_err(|_| IntegrityError::BadKey(path.to_path_buf()))?;
            let arr: [u8; 32] = bytes
                .try_into()
                .map_err(|_| IntegrityError::BadKey(path.to_path_buf()))?;
            let mode = std::fs::metadata(path)
                .map_err(io(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "signing key readable by others; tightened to 0600");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(path))?;
            }
            Ok(Some(SigningKey::from_bytes(&arr)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IntegrityError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Write `key` to `path` atomically, mode 0600 whatever the umask.
fn write_key(path: &Path, key: &SigningKey) -> Result<(), IntegrityError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(KEY_FILE);
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(hex::encode(key.to_bytes()).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Folder of retired public keys, beside the key file.
pub const HISTORY_DIR: &str = "keys";

/// A public key the collector signed with before a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredKey {
    /// Public key (hex).
    pub public_key: String,
    /// First use (the key file's time), RFC 3339; empty when unknown.
    pub valid_from: String,
    /// Retired at, RFC 3339.
    pub valid_until: String,
    /// Retired because the secret may have leaked: bundles it signed are
    /// no longer proof of origin.
    pub compromised: bool,
}

impl RetiredKey {
    fn text(&self) -> String {
        format!(
            "pantau-retired-key 1\npublic-key {}\nvalid-from {}\nvalid-until {}\ncompromised {}\n",
            self.public_key, self.valid_from, self.valid_until, self.compromised
        )
    }

    fn parse(text: &str) -> Option<RetiredKey> {
        let mut lines = text.lines();
        if lines.next()? != "pantau-retired-key 1" {
            return None;
        }
        let mut field = |k: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(k))
                .and_then(|l| l.strip_prefix(' ').or(Some("")))
                .map(str::to_string)
        };
        let public_key = field("public-key")?;
        let valid_from = field("valid-from")?;
        let valid_until = field("valid-until")?;
        let compromised = field("compromised")? == "true";
        (public_key.len() == 64 && hex::decode(&public_key).is_ok()).then_some(RetiredKey {
            public_key,
            valid_from,
            valid_until,
            compromised,
        })
    }
}

/// The history folder of the key at `key_path`.
pub fn history_dir(key_path: &Path) -> PathBuf {
    key_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(HISTORY_DIR)
}

/// Retired keys of the key at `key_path`, oldest first (none when there is
/// no history folder). A damaged entry is an error, not skipped: `verify`
/// must not silently lose a key it should know.
pub fn history(key_path: &Path) -> Result<Vec<RetiredKey>, IntegrityError> {
    let dir = history_dir(key_path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.map_err(io(&dir))?.path();
        if p.extension().is_none_or(|x| x != "pub") {
            continue;
        }
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        out.push(RetiredKey::parse(&text).ok_or_else(|| IntegrityError::BadKey(p.clone()))?);
    }
    out.sort_by(|a, b| a.valid_until.cmp(&b.valid_until));
    Ok(out)
}

/// Retire the key at `key_path` into its history and put a new one in its
/// place. The old secret is overwritten: old bundles stay verifiable with
/// the public key kept in the history. Returns the retired entry and the
/// new key.
pub fn rotate(
    key_path: &Path,
    compromised: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(RetiredKey, SigningKey), IntegrityError> {
    let old = load_key(key_path)?.ok_or_else(|| IntegrityError::Io {
        path: key_path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no signing key to rotate"),
    })?;
    let rfc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let valid_from = std::fs::metadata(key_path)
        .and_then(|m| m.modified())
        .map(|t| rfc(t.into()))
        .unwrap_or_default();
    let retired = RetiredKey {
        public_key: public_hex(&old),
        valid_from,
        valid_until: rfc(now),
        compromised,
    };
    let dir = history_dir(key_path);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let entry = dir.join(format!("{}.pub", retired.public_key));
    // The history entry is written (and synced) before the secret goes.
    {
        let mut f = std::fs::File::create(&entry).map_err(io(&entry))?;
        f.write_all(retired.text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io(&entry))?;
    }
    let new = SigningKey::from_bytes(&rand::random());
    write_key(key_path, &new)?;
    Ok((retired, new))
}

/// Public key as hex.
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Files of a bundle: name and bytes.
pub type Files = Vec<(String, Vec<u8>)>;

/// The manifest text and its detached signature (hex line) for `files`.
pub fn signed_manifest(files: &[(String, Vec<u8>)], key: &SigningKey) -> (String, String) {
    let mut manifest = format!("{MAGIC}\npublic-key {}\n", public_hex(key));
    for (name, bytes) in files {
        manifest.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))));
    }
    let sig = key.sign(manifest.as_bytes());
    (manifest, hex::encode(sig.to_bytes()) + "\n")
}

/// Write `files` into `dir` with a signed manifest.
pub fn write_bundle(
    dir: &Path,
    files: &[(String, Vec<u8>)],
    key: &SigningKey,
) -> Result<(), IntegrityError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
    }
    let (manifest, sig) = signed_manifest(files, key);
    let mp = dir.join(MANIFEST);
    std::fs::write(&mp, &manifest).map_err(io(&mp))?;
    let sp = dir.join(SIGNATURE);
    std::fs::write(&sp, sig).map_err(io(&sp))?;
    Ok(())
}

const BLOCK: usize = 512;

/// The canonical ustar header Pantau writes for a regular file (mode 0644,
/// owner 0, mtime 0), so that a changed header byte is detected.
fn tar_header(name: &str, size: usize) -> Option<[u8; BLOCK]> {
    if name.is_empty() || name.len() > 99 || name.contains('/') {
        return None;
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Some(h)
}

/// A signed bundle as one ustar archive: the files, then `MANIFEST.txt` and
/// `MANIFEST.sig`. `pantau-collector verify FILE.tar` checks it as it is.
pub fn tar_bundle(files: &[(String, Vec<u8>)], key: &SigningKey) -> Vec<u8> {
    let (manifest, sig) = signed_manifest(files, key);
    let mut out = Vec::new();
    let all = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([(MANIFEST, manifest.as_bytes()), (SIGNATURE, sig.as_bytes())]);
    for (name, bytes) in all {
        // Names are ours (report and export names); a name too long for
        // ustar would be a bug, and verify would refuse the archive.
        let h = tar_header(name, bytes.len()).unwrap_or([0xff; BLOCK]);
        out.extend_from_slice(&h);
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// Why a bundle archive is not the one [`tar_bundle`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TarError {
    #[error(
        "the archive is {0} bytes, not a whole number of 512-byte blocks: it was altered or cut short"
    )]
    NotWholeBlocks(usize),
    #[error("the archive has unexpected bytes after its end at byte {0}")]
    AfterEnd(usize),
    #[error("archive header at byte {0} was altered (file name)")]
    Name(usize),
    #[error("archive header of `{0}` was altered (size)")]
    Size(String),
    #[error("archive header of `{name}` (byte {at}) was altered")]
    Header { name: String, at: usize },
    #[error("`{0}` is cut short in the archive")]
    CutShort(String),
    #[error("the padding after `{0}` in the archive was altered")]
    Padding(String),
    #[error("`{0}` appears twice in the archive")]
    Twice(String),
    #[error("the archive has no end-of-archive blocks: it was cut short")]
    NoEnd,
}

/// Read a Pantau bundle archive; any byte outside the files that differs
/// from what [`tar_bundle`] writes is an alteration.
fn read_tar(b: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TarError> {
    if !b.len().is_multiple_of(BLOCK) {
        return Err(TarError::NotWholeBlocks(b.len()));
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let h = &b[at..at + BLOCK];
        if h.iter().all(|x| *x == 0) {
            if b[at..].iter().all(|x| *x == 0) && b.len() - at >= 2 * BLOCK {
                return Ok(out);
            }
            return Err(TarError::AfterEnd(at));
        }
        let name_len = h[..100].iter().position(|x| *x == 0).unwrap_or(100);
        let name = std::str::from_utf8(&h[..name_len])
            .map_err(|_| TarError::Name(at))?
            .to_string();
        let Some(size) = std::str::from_utf8(&h[124..135])
            .ok()
            .and_then(|s| usize::from_str_radix(s, 8).ok())
        else {
            return Err(TarError::Size(name));
        };
        if tar_header(&name, size).as_ref().map(|x| &x[..]) != Some(h) {
            return Err(TarError::Header { name, at });
        }
        let start = at + BLOCK;
        let end = start + size;
        let padded = start + size.div_ceil(BLOCK) * BLOCK;
        if padded > b.len() {
            return Err(TarError::CutShort(name));
        }
        if b[end..padded].iter().any(|x| *x != 0) {
            return Err(TarError::Padding(name));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(TarError::Twice(name));
        }
        out.push((name, b[start..end].to_vec()));
        at = padded;
    }
    Err(TarError::NoEnd)
}

/// What a successful verification checked.
#[derive(Debug)]
pub struct Verified {
    /// Bundle directory (or archive).
    pub dir: PathBuf,
    /// Files whose digests matched.
    pub files: Vec<String>,
    /// Signer's public key (hex).
    pub public_key: String,
}

/// Check a manifest, its signature and every listed file (read by `read`).
fn check(
    manifest: Vec<u8>,
    sig_hex: &str,
    expected: Option<&str>,
    read: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Vec<String>, String), IntegrityError> {
    let bad = IntegrityError::Invalid;
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
        let bytes = read(name).map_err(|e| {
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
    Ok((files, pk_hex))
}

/// One file of a bundle archive (`*.tar`) by name, for checks beyond the
/// manifest (the audit chain segment); `None` when absent or unreadable.
pub fn archive_file(path: &Path, name: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let entries = read_tar(&bytes).ok()?;
    entries.into_iter().find(|(n, _)| n == name).map(|(_, b)| b)
}

fn is_archive(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "tar")
}

/// Verify a signed bundle archive (`.tar`, as downloaded from
/// `/api/v1/report?bundle=1`).
fn verify_archive(path: &Path, expected: Option<&str>) -> Result<Verified, IntegrityError> {
    let bad = IntegrityError::Invalid;
    let bytes = std::fs::read(path).map_err(io(path))?;
    let entries = read_tar(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let get = |n: &str| {
        entries
            .iter()
            .find(|(x, _)| x == n)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| "not in the archive".to_string())
    };
    let manifest = get(MANIFEST).map_err(|_| {
        bad(format!(
            "{} has no {MANIFEST}: not a Pantau report bundle",
            path.display()
        ))
    })?;
    let sig = get(SIGNATURE).map_err(|_| bad(format!("{} has no {SIGNATURE}", path.display())))?;
    let sig = String::from_utf8(sig).map_err(|_| bad(format!("{SIGNATURE} is malformed")))?;
    let (files, public_key) = check(manifest, &sig, expected, get)?;
    for (n, _) in &entries {
        if n != MANIFEST && n != SIGNATURE && !files.contains(n) {
            return Err(bad(format!(
                "{n} is in the archive but not listed in the signed manifest"
            )));
        }
    }
    Ok(Verified {
        dir: path.to_path_buf(),
        files,
        public_key,
    })
}

/// Verify the bundle containing `path` (the directory, or any file in it, or
/// a bundle archive `*.tar`). With `expected`, the signer must also be that key.
pub fn verify(path: &Path, expected: Option<&str>) -> Result<Verified, IntegrityError> {
    if is_archive(path) {
        return verify_archive(path, expected);
    }
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
    let (files, public_key) = check(manifest, &sig_hex, expected, |name| {
        std::fs::read(dir.join(name)).map_err(|e| e.to_string())
    })?;
    // A file added beside the signed ones (a forged "corrected" export, say)
    // would be taken as part of the evidence: the bundle is not intact.
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != MANIFEST && n != SIGNATURE && !files.contains(n))
        .collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(bad(format!(
            "{} {} in the bundle folder but not listed in the signed manifest: remove {} or use the bundle as signed",
            extra.join(", "),
            if extra.len() == 1 { "is" } else { "are" },
            if extra.len() == 1 { "it" } else { "them" },
        )));
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
        public_key,
    })
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

    #[test]
    fn unlisted_file_in_the_folder_fails() {
        let d = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[5; 32]);
        let b = d.path().join("b");
        write_bundle(&b, &[("laporan.json".into(), b"{}".to_vec())], &key).unwrap();
        assert!(verify(&b, None).is_ok());
        std::fs::write(b.join("hasil-mentah-koreksi.csv"), b"x").unwrap();
        let e = verify(&b.join("laporan.json"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hasil-mentah-koreksi.csv is in the bundle folder but not listed"),
            "{e}"
        );
    }

    #[test]
    fn archive_verifies_and_every_byte_counts() {
        let d = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[3; 32]);
        let files = vec![
            (
                "laporan.csv".to_string(),
                b"opd,availability\nx,99.5\n".to_vec(),
            ),
            ("hasil-mentah.csv".to_string(), vec![b'r'; 700]),
        ];
        let tar = tar_bundle(&files, &key);
        let p = d.path().join("bundle.tar");
        std::fs::write(&p, &tar).unwrap();
        let ok = verify(&p, Some(&public_hex(&key))).unwrap();
        assert_eq!(ok.files, ["laporan.csv", "hasil-mentah.csv"]);
        // The archive is a standard ustar: the entries read back as written.
        let entries = read_tar(&tar).unwrap();
        assert_eq!(entries[0], files[0]);
        assert_eq!(entries.len(), 4);
        // A change of any single byte (headers, contents, padding, end
        // blocks) fails; checked for every 7th byte.
        for i in (0..tar.len()).step_by(7) {
            let mut t = tar.clone();
            t[i] ^= 0x01;
            std::fs::write(&p, &t).unwrap();
            assert!(
                verify(&p, None).is_err(),
                "byte {i} changed and verify passed"
            );
        }
        // Cut short, or with another file appended, fails too.
        std::fs::write(&p, &tar[..tar.len() - BLOCK]).unwrap();
        assert!(verify(&p, None).is_err());
    }
}
