//! `[remote_write]`: raw shape and validation. Secrets are read from files
//! at load time, so a missing file is a configuration problem naming its key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pantau_core::confload::{self, Problem};
use serde::Deserialize;

/// Labels the exported series already carry; external labels may not reuse them.
const RESERVED: &[&str] = &[
    "opd",
    "agent",
    "target",
    "group",
    "kind",
    "link",
    "direction",
];

/// `[remote_write]` as written.
#[derive(Debug, Deserialize, Default)]
pub struct RawRemoteWrite {
    /// Send results to a remote-write receiver.
    pub enabled: Option<bool>,
    /// Receiver endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: Option<String>,
    /// How often to look for new results when idle.
    pub interval: Option<String>,
    /// Most samples in one request.
    pub max_samples_per_request: Option<u32>,
    /// Deadline of one request.
    pub timeout: Option<String>,
    /// Basic-auth user name.
    pub basic_auth_user: Option<String>,
    /// File holding the basic-auth password.
    pub basic_auth_password_file: Option<PathBuf>,
    /// File holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Labels added to every exported series.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

/// A secret read from a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer`.
    Bearer(Secret),
}

/// Validated `[remote_write]` (present only when enabled).
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// Receiver endpoint.
    pub url: reqwest::Url,
    /// Idle poll interval.
    pub interval: Duration,
    /// Samples per request cap.
    pub max_samples_per_request: usize,
    /// Request deadline.
    pub timeout: Duration,
    /// Credentials.
    pub auth: Option<Auth>,
    /// Extra labels, sorted by name.
    pub external_labels: Vec<(String, String)>,
}

fn secret(key: &str, path: &PathBuf, p: &mut Vec<Problem>) -> Option<Secret> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Some(Secret(s.trim().to_string())),
        Ok(_) => {
            p.push(Problem::new(key, format!("{} is empty", path.display())));
            None
        }
        Err(e) => {
            p.push(Problem::new(
                key,
                format!("cannot read {}: {e}", path.display()),
            ));
            None
        }
    }
}

fn label_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn url(u: Option<&str>, enabled: bool, p: &mut Vec<Problem>) -> Option<reqwest::Url> {
    let Some(u) = u else {
        if enabled {
            p.push(Problem::new(
                "remote_write.url",
                "required when remote_write.enabled = true, e.g. \"http://prometheus:9090/api/v1/write\"",
            ));
        }
        return None;
    };
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Some(url)
        }
        Ok(_) => {
            p.push(Problem::new(
                "remote_write.url",
                format!("`{u}` must be an http:// or https:// URL with a host"),
            ));
            None
        }
        Err(e) => {
            p.push(Problem::new(
                "remote_write.url",
                format!("`{u}` is not a URL ({e})"),
            ));
            None
        }
    }
}

/// The credentials: basic auth or a bearer token, not both. Secret files
/// are read only when enabled.
fn auth(
    user: Option<String>,
    password_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    enabled: bool,
    p: &mut Vec<Problem>,
) -> Option<Auth> {
    match (user, password_file, token_file) {
        (None, None, None) => None,
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            p.push(Problem::new(
                "remote_write.bearer_token_file",
                "set either basic_auth_user and basic_auth_password_file, or bearer_token_file, not both",
            ));
            None
        }
        (None, None, Some(f)) => {
            if enabled {
                secret("remote_write.bearer_token_file", &f, p).map(Auth::Bearer)
            } else {
                None
            }
        }
        (Some(user), Some(f), None) => {
            if user.is_empty() || user.contains(':') {
                p.push(Problem::new(
                    "remote_write.basic_auth_user",
                    "must be non-empty and must not contain `:`",
                ));
            }
            if enabled {
                secret("remote_write.basic_auth_password_file", &f, p)
                    .map(|password| Auth::Basic { user, password })
            } else {
                None
            }
        }
        (Some(_), None, None) => {
            p.push(Problem::new(
                "remote_write.basic_auth_password_file",
                "required with remote_write.basic_auth_user",
            ));
            None
        }
        (None, Some(_), None) => {
            p.push(Problem::new(
                "remote_write.basic_auth_user",
                "required with remote_write.basic_auth_password_file",
            ));
            None
        }
    }
}

/// The valid external labels, sorted by name; every bad one is a problem.
fn external_labels(
    labels: BTreeMap<String, String>,
    p: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in labels {
        let key = format!("remote_write.external_labels.{k}");
        if !label_name_ok(&k) || k.starts_with("__") {
            p.push(Problem::new(
                key,
                "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
            ));
        } else if RESERVED.contains(&k.as_str()) {
            p.push(Problem::new(
                key,
                format!(
                    "is a label Pantau already sets; reserved: {}",
                    RESERVED.join(", ")
                ),
            ));
        } else if v.is_empty() {
            p.push(Problem::new(key, "must not be empty"));
        } else {
            out.push((k, v));
        }
    }
    out
}

impl RawRemoteWrite {
    /// Check every key (secret files are read only when enabled); `None`
    /// when disabled or invalid. Problems come in key order.
    pub fn validate(self, p: &mut Vec<Problem>) -> Option<RemoteWriteConfig> {
        let before = p.len();
        let enabled = self.enabled.unwrap_or(false);
        let url = url(self.url.as_deref(), enabled, p);
        let interval = confload::duration(
            "remote_write.interval",
            self.interval.as_deref().unwrap_or("5s"),
            Duration::from_secs(1),
            Duration::from_secs(3600),
            p,
        );
        let max = self.max_samples_per_request.unwrap_or(2000);
        if !(100..=50_000).contains(&max) {
            p.push(Problem::new(
                "remote_write.max_samples_per_request",
                format!("{max} is out of range; allowed 100 to 50000"),
            ));
        }
        let timeout = confload::duration(
            "remote_write.timeout",
            self.timeout.as_deref().unwrap_or("30s"),
            Duration::from_secs(1),
            Duration::from_secs(300),
            p,
        );
        let auth = auth(
            self.basic_auth_user,
            self.basic_auth_password_file,
            self.bearer_token_file,
            enabled,
            p,
        );
        let external_labels = external_labels(self.external_labels, p);
        if !enabled || p.len() > before {
            return None;
        }
        Some(RemoteWriteConfig {
            url: url?,
            interval: interval?,
            max_samples_per_request: max as usize,
            timeout: timeout?,
            auth,
            external_labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: RawRemoteWrite) -> Vec<String> {
        let mut p = Vec::new();
        assert!(raw.validate(&mut p).is_none());
        p.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn disabled_by_default_and_enabled_needs_a_url() {
        let mut p = Vec::new();
        assert!(RawRemoteWrite::default().validate(&mut p).is_none());
        assert!(p.is_empty());
        let raw = RawRemoteWrite {
            enabled: Some(true),
            ..Default::default()
        };
        assert_eq!(keys(raw), ["remote_write.url"]);
    }

    #[test]
    fn every_bad_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawRemoteWrite {
            enabled: Some(true),
            url: Some("ftp://x/".into()),
            interval: Some("0s".into()),
            max_samples_per_request: Some(5),
            timeout: Some("soon".into()),
            bearer_token_file: Some(dir.path().join("missing")),
            external_labels: [
                ("opd".to_string(), "x".to_string()),
                ("9x".into(), "y".into()),
                ("site".into(), String::new()),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(
            keys(raw),
            [
                "remote_write.url",
                "remote_write.interval",
                "remote_write.max_samples_per_request",
                "remote_write.timeout",
                "remote_write.bearer_token_file",
                "remote_write.external_labels.9x",
                "remote_write.external_labels.opd",
                "remote_write.external_labels.site",
            ]
        );
        let raw = RawRemoteWrite {
            basic_auth_user: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(keys(raw), ["remote_write.basic_auth_password_file"]);
    }

    #[test]
    fn valid_section_reads_the_secret_and_sorts_labels() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "rahasia\n").unwrap();
        let raw = RawRemoteWrite {
            enabled: Some(true),
            url: Some("https://mimir.example.invalid/api/v1/push".into()),
            basic_auth_user: Some("pantau".into()),
            basic_auth_password_file: Some(f),
            external_labels: [
                ("source".to_string(), "pantau".to_string()),
                ("province".into(), "sulbar".into()),
            ]
            .into(),
            ..Default::default()
        };
        let mut p = Vec::new();
        let c = raw.validate(&mut p).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            c.auth,
            Some(Auth::Basic {
                user: "pantau".into(),
                password: Secret("rahasia".into())
            })
        );
        assert!(!format!("{c:?}").contains("rahasia"));
        assert_eq!(
            c.external_labels,
            [
                ("province".to_string(), "sulbar".to_string()),
                ("source".into(), "pantau".into())
            ]
        );
        assert_eq!(
            (c.interval, c.max_samples_per_request),
            (Duration::from_secs(5), 2000)
        );
    }
}
