//! Central configuration (issue 13, item 5): targets defined at the
//! collector and pushed over the stream as a signed `ConfigUpdate`.
//!
//! An update is checked (the signature against the pinned collector key,
//! the SHA-256 of the fragment, every target validated with the same code
//! as the configuration file: `config::check_targets`), written atomically
//! to `<spool dir>/central.toml`, and only then swapped into the schedule
//! (running probes finish; spool, epoch and sequence are untouched). At
//! start the persisted copy is checked the same way, so the agent probes
//! its central targets after a reboot with the collector down; a copy that
//! fails the check is refused with an ERROR and the agent runs with its
//! file targets until the collector sends a good one.
//!
//! The collector's public key is pinned on first use (`central.pub`): the
//! first update arrives over the mutual-TLS stream whose CA the agent
//! pinned at enrolment (docs/SECURITY.md).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use pantau_core::confload::Problem;
use pantau_core::probe::{Defaults, Target};
use pantau_proto::v1 as pb;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::AgentConfig;

/// The persisted central configuration, in the spool directory.
pub const FILE: &str = "central.toml";
/// The pinned collector key (hex), in the spool directory.
pub const PIN_FILE: &str = "central.pub";

/// Why a central configuration was refused (Indonesian / English).
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// The signature does not verify with the pinned key.
    #[error(
        "tanda tangan konfigurasi pusat tidak sah / central configuration signature does not verify{0}"
    )]
    Signature(String),
    /// The update was signed by another key than the pinned one.
    #[error(
        "kunci penanda tangan berbeda dari yang disematkan di {pin} / signed by another key than the one pinned in {pin}"
    )]
    OtherKey {
        /// The pin file.
        pin: PathBuf,
    },
    /// The fragment's SHA-256 is not the one signed.
    #[error(
        "SHA-256 target pusat tidak cocok / central targets do not match their SHA-256 (changed after signing)"
    )]
    Digest,
    /// The update names another agent.
    #[error(
        "konfigurasi untuk agen `{0}`, bukan agen ini / configuration is for agent `{0}`, not this one"
    )]
    OtherAgent(String),
    /// A target breaks the rules; every problem names its key.
    #[error("target pusat tidak sah / invalid central targets:{}", list(.0))]
    Invalid(Vec<Problem>),
    /// Reading or writing the files failed.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!(" {}: {};", p.key, p.message))
        .collect()
}

/// What `central.toml` holds: the update as received.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persisted {
    /// The agent it was signed for.
    pub agent_id: String,
    /// Collector revision.
    pub version: u64,
    /// SHA-256 (hex) of `targets_toml`.
    pub sha256: String,
    /// Whether the file's own targets stay.
    pub local_targets: bool,
    /// Ed25519 signature (hex).
    pub signature: String,
    /// The `[[targets]]` fragment.
    pub targets_toml: String,
}

impl Persisted {
    /// From a received update.
    pub fn from_update(agent_id: &str, u: &pb::ConfigUpdate) -> Self {
        Persisted {
            agent_id: agent_id.to_string(),
            version: u.version,
            sha256: u.sha256.clone(),
            local_targets: u.local_targets != pb::LocalTargets::Deny as i32,
            signature: u.signature.clone(),
            targets_toml: u.targets_toml.clone(),
        }
    }

    /// Check the signature with `key`, the digest, the agent, and every
    /// target; the validated central targets.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        agent_id: &str,
        defaults: &Defaults,
        insecure: bool,
    ) -> Result<Vec<Target>, CentralError> {
        let sig = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| {
                CentralError::Signature(" (bukan tanda tangan / not a signature)".into())
            })?;
        let signed = pantau_proto::config_signed_bytes(
            &self.agent_id,
            self.version,
            self.local_targets,
            &self.sha256,
        );
        key.verify(&signed, &sig)
            .map_err(|_| CentralError::Signature(String::new()))?;
        if self.agent_id != agent_id {
            return Err(CentralError::OtherAgent(self.agent_id.clone()));
        }
        if hex::encode(Sha256::digest(self.targets_toml.as_bytes())) != self.sha256 {
            return Err(CentralError::Digest);
        }
        parse_targets(&self.targets_toml, defaults, insecure)
    }
}

/// Parse and validate a `[[targets]]` fragment exactly like the file's
/// targets (`config::check_targets`), with the file's `[defaults]`.
pub fn parse_targets(
    fragment: &str,
    defaults: &Defaults,
    insecure: bool,
) -> Result<Vec<Target>, CentralError> {
    let (raw, mut p) =
        pantau_core::probe::raw_targets_from_toml(fragment).map_err(CentralError::Invalid)?;
    let targets = crate::config::check_targets(raw, defaults, insecure, &mut p);
    if p.is_empty() {
        Ok(targets)
    } else {
        Err(CentralError::Invalid(p))
    }
}

/// The targets to probe: the central ones, and the file's own when the
/// policy allows and their id is not central (a clash: central wins).
pub fn merge(local: &[Target], central: &[Target], allow_local: bool) -> Vec<Target> {
    let mut out: Vec<Target> = central.to_vec();
    if allow_local {
        for t in local {
            if central.iter().any(|c| c.id == t.id) {
                warn!(target = %t.id, "target lokal diganti target pusat / local target replaced by the central one with the same id");
            } else {
                out.push(t.clone());
            }
        }
    }
    out
}

/// The central configuration in use.
#[derive(Debug, Clone, Default, PartialEq)]
struct Applied {
    version: u64,
    sha256: String,
    local_targets: bool,
    targets: Vec<Target>,
}

#[derive(Debug, Default)]
struct State {
    applied: Option<Applied>,
    /// Targets probed earlier in this run and since dropped: still declared
    /// in Hello, so results of theirs waiting in the spool are accepted.
    retired: Vec<Target>,
}

/// The agent's central configuration: what is applied, the target set the
/// scheduler follows, and the files in the spool directory.
#[derive(Debug)]
pub struct Central {
    dir: PathBuf,
    agent_id: String,
    defaults: Defaults,
    insecure: bool,
    local: Vec<Target>,
    state: Mutex<State>,
    targets: watch::Sender<Vec<Target>>,
}

impl Central {
    /// Start from the file's targets and the persisted central copy, if
    /// any and if it checks out (else an ERROR says why and it is ignored).
    pub fn load(cfg: &AgentConfig) -> Self {
        let dir = cfg.spool.dir.clone();
        let (targets, _) = watch::channel(cfg.targets.clone());
        let c = Central {
            dir,
            agent_id: cfg.agent_id.clone(),
            defaults: cfg.defaults.clone(),
            insecure: cfg.collector_tls.insecure,
            local: cfg.targets.clone(),
            state: Mutex::new(State::default()),
            targets,
        };
        match c.read_persisted() {
            Ok(None) => {}
            Ok(Some((p, central))) => {
                info!(version = p.version, targets = central.len(), file = %c.file().display(),
                    "konfigurasi pusat dimuat / central configuration loaded");
                c.swap(Applied {
                    version: p.version,
                    sha256: p.sha256,
                    local_targets: p.local_targets,
                    targets: central,
                });
            }
            Err(e) => {
                error!(file = %c.file().display(), error = %e,
                    "konfigurasi pusat di disk ditolak, hanya target berkas yang dipakai sampai collector mengirim ulang / central configuration on disk refused; probing the file's targets until the collector sends it again");
                // Never probed, only declared: results of these targets
                // taken before the restart may still wait in the spool.
                let declared = c.unverified_targets();
                let mut st = c.state.lock().unwrap_or_else(|p| p.into_inner());
                st.retired = declared
                    .into_iter()
                    .filter(|t| !c.local.iter().any(|l| l.id == t.id))
                    .collect();
            }
        }
        c
    }

    /// The targets of the file on disk without its signature checked.
    fn unverified_targets(&self) -> Vec<Target> {
        std::fs::read_to_string(self.file())
            .ok()
            .and_then(|t| toml::from_str::<Persisted>(&t).ok())
            .and_then(|p| parse_targets(&p.targets_toml, &self.defaults, self.insecure).ok())
            .unwrap_or_default()
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn pin_file(&self) -> PathBuf {
        self.dir.join(PIN_FILE)
    }

    fn pinned(&self) -> Result<Option<VerifyingKey>, CentralError> {
        let path = self.pin_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(&path, e)),
        };
        parse_key(text.trim())
            .map(Some)
            .ok_or_else(|| CentralError::File {
                path,
                what: "bukan kunci Ed25519 (64 hex) / not an Ed25519 public key (64 hex)".into(),
            })
    }

    fn read_persisted(&self) -> Result<Option<(Persisted, Vec<Target>)>, CentralError> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(&path, e)),
        };
        let p: Persisted = toml::from_str(&text).map_err(|e| file_error(&path, e))?;
        let key = self.pinned()?.ok_or_else(|| CentralError::File {
            path: self.pin_file(),
            what: "kunci collector belum disematkan / no pinned collector key".into(),
        })?;
        let targets = p.verify(&key, &self.agent_id, &self.defaults, self.insecure)?;
        Ok(Some((p, targets)))
    }

    /// The target set the scheduler follows.
    pub fn subscribe(&self) -> watch::Receiver<Vec<Target>> {
        self.targets.subscribe()
    }

    /// The targets probed now.
    pub fn targets(&self) -> Vec<Target> {
        self.targets.borrow().clone()
    }

    /// What Hello declares: the targets probed now and those dropped
    /// earlier in this run (their results may still wait in the spool).
    pub fn declared(&self) -> Vec<Target> {
        let mut out = self.targets();
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for t in &st.retired {
            if !out.iter().any(|o| o.id == t.id) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The applied version and SHA-256 (`(0, "")`: none).
    pub fn applied(&self) -> (u64, String) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.applied
            .as_ref()
            .map_or((0, String::new()), |a| (a.version, a.sha256.clone()))
    }

    fn swap(&self, next: Applied) {
        let probed = merge(&self.local, &next.targets, next.local_targets);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.targets.borrow().clone();
        for t in before {
            if !probed.iter().any(|p| p.id == t.id) && !st.retired.iter().any(|r| r.id == t.id) {
                st.retired.push(t);
            }
        }
        st.retired.retain(|r| !probed.iter().any(|p| p.id == r.id));
        st.applied = Some(next);
        self.targets.send_replace(probed);
    }

    /// Check, persist and apply an update. `Ok(true)`: the target set
    /// changed (the stream says Hello again to declare it); `Ok(false)`:
    /// already applied. On error nothing changed.
    pub fn apply(&self, u: &pb::ConfigUpdate) -> Result<bool, CentralError> {
        let (version, sha) = self.applied();
        if version == u.version && sha == u.sha256 && !sha.is_empty() {
            return Ok(false);
        }
        let key = parse_key(&u.signing_key)
            .ok_or_else(|| CentralError::Signature(" (kunci tidak ada / no key sent)".into()))?;
        match self.pinned()? {
            Some(pinned) if pinned != key => {
                return Err(CentralError::OtherKey {
                    pin: self.pin_file(),
                });
            }
            Some(_) => {}
            None => {}
        }
        let p = Persisted::from_update(&self.agent_id, u);
        let targets = p.verify(&key, &self.agent_id, &self.defaults, self.insecure)?;
        if self.pinned()?.is_none() {
            crate::identity::write_atomic(&self.pin_file(), &format!("{}\n", u.signing_key), 0o644)
                .map_err(|e| file_error(&self.pin_file(), e))?;
            info!(key = %u.signing_key, "kunci konfigurasi collector disematkan / collector configuration key pinned");
        }
        let text = toml::to_string(&p).map_err(|e| file_error(&self.file(), e))?;
        crate::identity::write_atomic(&self.file(), &text, 0o600)
            .map_err(|e| file_error(&self.file(), e))?;
        let changed_set = {
            let next = merge(&self.local, &targets, p.local_targets);
            next != *self.targets.borrow()
        };
        info!(
            version = p.version,
            targets = targets.len(),
            "konfigurasi pusat diterapkan / central configuration applied"
        );
        self.swap(Applied {
            version: p.version,
            sha256: p.sha256,
            local_targets: p.local_targets,
            targets,
        });
        Ok(changed_set)
    }

    /// The answer to an update: what is applied now, and the error if any.
    pub fn status(&self, error: Option<&CentralError>) -> pb::ConfigStatus {
        let (version, sha256) = self.applied();
        pb::ConfigStatus {
            version,
            sha256,
            error: error.map(ToString::to_string).unwrap_or_default(),
        }
    }
}

fn parse_key(hex_text: &str) -> Option<VerifyingKey> {
    let b: [u8; 32] = hex::decode(hex_text).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&b).ok()
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> CentralError {
    CentralError::File {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const TARGETS: &str = "[[targets]]\nid = \"pd\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"10.0.0.1:443\"\n";

    fn update(key: &SigningKey, agent: &str, version: u64, targets: &str) -> pb::ConfigUpdate {
        let sha256 = hex::encode(Sha256::digest(targets.as_bytes()));
        let sig = key.sign(&pantau_proto::config_signed_bytes(
            agent, version, true, &sha256,
        ));
        pb::ConfigUpdate {
            targets_toml: targets.into(),
            version,
            sha256,
            local_targets: pb::LocalTargets::Allow as i32,
            signature: hex::encode(sig.to_bytes()),
            signing_key: hex::encode(key.verifying_key().to_bytes()),
            ..Default::default()
        }
    }

    fn config(dir: &Path) -> AgentConfig {
        let text = format!(
            "[agent]\nid = \"a1\"\n[collector]\ntoken = \"t\"\n[spool]\ndir = \"{}\"\n[defaults]\ninterval = \"10s\"\n\
             [[targets]]\nid = \"own\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"10.9.0.1:80\"\n\
             [[targets]]\nid = \"pd\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"10.9.0.2:80\"\n",
            dir.display()
        );
        toml::from_str::<crate::config::RawConfig>(&text)
            .unwrap()
            .validate("h".into())
            .unwrap()
    }

    fn ids(t: &[Target]) -> Vec<&str> {
        t.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn an_update_is_pinned_applied_persisted_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let c = Central::load(&cfg);
        assert_eq!(ids(&c.targets()), ["own", "pd"]);
        let key = SigningKey::from_bytes(&[1; 32]);
        assert!(c.apply(&update(&key, "a1", 4, TARGETS)).unwrap());
        // Central wins the clash on `pd`; the file's default interval applies.
        let now = c.targets();
        assert_eq!(ids(&now), ["pd", "own"]);
        assert_eq!(now[0].address, "10.0.0.1:443");
        assert_eq!(now[0].interval, std::time::Duration::from_secs(10));
        assert_eq!(c.applied().0, 4);
        // The same again changes nothing.
        assert!(!c.apply(&update(&key, "a1", 4, TARGETS)).unwrap());
        // After a restart (collector down) the persisted copy is used.
        let again = Central::load(&cfg);
        assert_eq!(again.targets(), now);
        assert_eq!(again.applied(), c.applied());
        // Removing every central target retires `pd`'s central definition
        // from the schedule but Hello still declares what was dropped.
        assert!(c.apply(&update(&key, "a1", 5, "")).unwrap());
        assert_eq!(ids(&c.targets()), ["own", "pd"]);
        assert_eq!(c.targets()[1].address, "10.9.0.2:80");
    }

    #[test]
    fn bad_updates_are_refused_and_the_previous_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let c = Central::load(&cfg);
        let key = SigningKey::from_bytes(&[1; 32]);
        c.apply(&update(&key, "a1", 1, TARGETS)).unwrap();
        let before = (c.targets(), c.applied());

        let other = SigningKey::from_bytes(&[2; 32]);
        let e = c.apply(&update(&other, "a1", 2, TARGETS)).unwrap_err();
        assert!(matches!(e, CentralError::OtherKey { .. }), "{e}");
        let mut forged = update(&key, "a1", 2, TARGETS);
        forged.version = 3;
        assert!(matches!(
            c.apply(&forged).unwrap_err(),
            CentralError::Signature(_)
        ));
        let mut swapped = update(&key, "a1", 2, TARGETS);
        swapped.targets_toml = TARGETS.replace("10.0.0.1", "10.6.6.6");
        assert!(matches!(
            c.apply(&swapped).unwrap_err(),
            CentralError::Digest
        ));
        // Another agent's update (replayed to this one) does not verify:
        // the signature covers the agent id.
        let e = c.apply(&update(&key, "a2", 2, TARGETS)).unwrap_err();
        assert!(matches!(e, CentralError::Signature(_)), "{e}");
        let missing = dir.path().join("missing.pem");
        let http = format!(
            "[[targets]]\nid = \"web\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"https://10.0.0.1/\"\nca_file = \"{}\"\n",
            missing.display()
        );
        let e = c.apply(&update(&key, "a1", 2, &http)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("target pusat tidak sah / invalid central targets:"),
            "{text}"
        );
        assert!(text.contains("targets[0].ca_file"), "{text}");
        assert!(text.contains(&missing.display().to_string()), "{text}");
        assert_eq!((c.targets(), c.applied()), before);
        assert_eq!(c.status(Some(&e)).version, 1);
        assert_eq!(c.status(Some(&e)).error, text);
    }

    #[test]
    fn a_tampered_copy_on_disk_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let key = SigningKey::from_bytes(&[1; 32]);
        Central::load(&cfg)
            .apply(&update(&key, "a1", 1, TARGETS))
            .unwrap();
        let file = dir.path().join(FILE);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("10.0.0.1", "10.6.6.6")).unwrap();
        let c = Central::load(&cfg);
        assert_eq!(c.applied(), (0, String::new()));
        assert_eq!(ids(&c.targets()), ["own", "pd"]);
        assert_eq!(c.targets()[1].address, "10.9.0.2:80");
        assert!(matches!(c.read_persisted(), Err(CentralError::Digest)));
        // Not probed, but declared: results taken before may be in the spool.
        assert_eq!(ids(&c.declared()), ["own", "pd"]);
        assert_eq!(c.declared()[1].address, "10.9.0.2:80");
        // A re-signed copy under another key fails the pin.
        let other = SigningKey::from_bytes(&[2; 32]);
        let p = Persisted::from_update("a1", &update(&other, "a1", 9, TARGETS));
        std::fs::write(&file, toml::to_string(&p).unwrap()).unwrap();
        assert!(matches!(
            c.read_persisted(),
            Err(CentralError::Signature(_))
        ));
    }

    #[test]
    fn local_targets_follow_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let central = parse_targets(TARGETS, &cfg.defaults, false).unwrap();
        assert_eq!(ids(&merge(&cfg.targets, &central, true)), ["pd", "own"]);
        assert_eq!(ids(&merge(&cfg.targets, &central, false)), ["pd"]);
    }
}
