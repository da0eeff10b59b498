//! Collector configuration: raw TOML shape -> one validation pass -> immutable config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pantau_core::confload::{self, ConfigError, Problem};
use serde::Deserialize;

use crate::report::rules::{Composite, DEFAULT_SLA_PCT, GROUPS, RuleSet};

/// Environment prefix for overrides: `PANTAU_COLLECTOR__SERVER__DATA_DIR=...`.
pub const ENV_PREFIX: &str = "PANTAU_COLLECTOR";

/// The file as written by the admin.
#[derive(Debug, Deserialize, Default)]
pub struct RawConfig {
    /// Listeners and storage.
    #[serde(default)]
    pub server: RawServer,
    /// Ingest limits.
    #[serde(default)]
    pub ingest: RawIngest,
    /// How times and names are shown.
    #[serde(default)]
    pub display: RawDisplay,
    /// What `pantau-agent enroll` hands new agents.
    pub enrol: Option<crate::enrol::RawEnrol>,
    /// Rollups, retention and SPBE reports.
    #[serde(default)]
    pub report: RawReport,
    /// Optional Prometheus remote-write export.
    #[serde(default)]
    pub remote_write: crate::remote_write::RawRemoteWrite,
    /// TLS of the agents' gRPC port.
    #[serde(default)]
    pub tls: RawTls,
    /// Where results are stored.
    #[serde(default)]
    pub store: RawStore,
    /// The audit log.
    #[serde(default)]
    pub audit: RawAudit,
    /// Connection caps of the two listening ports.
    #[serde(default)]
    pub limits: RawLimits,
    /// Web sign-in: sessions and the scrape credential.
    #[serde(default)]
    pub web: RawWeb,
    /// Several collectors on one PostgreSQL: this one's name and its leases.
    #[serde(default)]
    pub cluster: RawCluster,
}

/// `[cluster]`: several collectors sharing one PostgreSQL take the shared
/// background work (rollups and incidents, retention, remote write) by
/// lease (store/lease.rs, docs/SCALE.md). Alone, the defaults fit.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// This collector's name in the lease table, logs and the work record
    /// (the id rule); default `<host name>-<8 hex digits of the data
    /// directory's path>`, the same after a restart (so a restarted
    /// collector renews its own leases at once).
    pub node: Option<String>,
    /// How long a lease lasts unless renewed: a dead collector's work is
    /// taken over after at most this long. Default "60s", 2s to 1h, at
    /// least twice `work_every`.
    pub lease_ttl: Option<String>,
    /// How often the background jobs run and renew their leases
    /// (rollups, retention check). Default "15s", 1s to 10m.
    pub work_every: Option<String>,
}

/// Validated `[cluster]`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This collector's name when set; see [`ClusterConfig::node_name`].
    pub node: Option<String>,
    /// Lease time to live.
    pub lease_ttl: Duration,
    /// Background job period.
    pub work_every: Duration,
}

impl RawCluster {
    fn validate(self, p: &mut Vec<Problem>) -> ClusterConfig {
        if let Some(n) = &self.node
            && let Err(e) = pantau_core::id::check_id("node name", n)
        {
            p.push(Problem::new("cluster.node", e.to_string()));
        }
        let node = self.node;
        let s = Duration::from_secs;
        let lease_ttl = confload::duration(
            "cluster.lease_ttl",
            self.lease_ttl.as_deref().unwrap_or("60s"),
            s(2),
            s(3600),
            p,
        )
        .unwrap_or(s(60));
        let work_every = confload::duration(
            "cluster.work_every",
            self.work_every.as_deref().unwrap_or("15s"),
            s(1),
            s(600),
            p,
        )
        .unwrap_or(s(15));
        if lease_ttl < work_every * 2 {
            p.push(Problem::new(
                "cluster.lease_ttl",
                format!(
                    "must be at least twice cluster.work_every ({}), or the holder loses its \
                     lease between two runs",
                    humantime::format_duration(work_every)
                ),
            ));
        }
        ClusterConfig {
            node,
            lease_ttl,
            work_every,
        }
    }
}

impl ClusterConfig {
    /// `node`, or `<host name>-<8 hex digits of data_dir>`: stable across
    /// restarts, different for two collectors on one host.
    pub fn node_name(&self, data_dir: &Path) -> String {
        if let Some(n) = &self.node {
            return n.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(48)
            .collect();
        let host = if host.is_empty() {
            "collector".to_string()
        } else {
            host
        };
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(dir.as_os_str().as_encoded_bytes());
        format!("{host}-{}", hex::encode(&digest[..4]))
    }
}

/// `[limits]`: connection caps per source address and in total for each
/// listening port, and the idle close. Defaults: `net::Limits::{GRPC, HTTP}`.
#[derive(Debug, Deserialize, Default)]
pub struct RawLimits {
    /// Most gRPC connections from one address (several agents behind one NAT).
    pub grpc_per_source: Option<usize>,
    /// Most gRPC connections in all.
    pub grpc_total: Option<usize>,
    /// Most HTTP connections from one address.
    pub http_per_source: Option<usize>,
    /// Most HTTP connections in all.
    pub http_total: Option<usize>,
    /// Close a connection silent this long, both ports (default 5min).
    pub idle_timeout: Option<String>,
}

impl RawLimits {
    /// The gRPC and HTTP limits.
    fn validate(self, p: &mut Vec<Problem>) -> (crate::net::Limits, crate::net::Limits) {
        let (mut grpc, mut http) = (crate::net::Limits::GRPC, crate::net::Limits::HTTP);
        if let Some(v) = self.idle_timeout {
            match humantime::parse_duration(&v) {
                Ok(d) if (Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&d) => {
                    grpc.idle = Some(d);
                    http.idle = Some(d);
                }
                Ok(_) => p.push(Problem::new(
                    "limits.idle_timeout",
                    format!("`{v}`: between 10s and 24h"),
                )),
                Err(e) => p.push(Problem::new(
                    "limits.idle_timeout",
                    format!("`{v}` is not a duration ({e}), e.g. 5min"),
                )),
            }
        }
        for (port, l, per, total) in [
            ("grpc", &mut grpc, self.grpc_per_source, self.grpc_total),
            ("http", &mut http, self.http_per_source, self.http_total),
        ] {
            if let Some(n) = per {
                if n == 0 || n > 100_000 {
                    p.push(Problem::new(
                        format!("limits.{port}_per_source"),
                        format!("{n}: between 1 and 100000"),
                    ));
                }
                l.per_source = n;
            }
            if let Some(n) = total {
                if n == 0 || n > 1_000_000 {
                    p.push(Problem::new(
                        format!("limits.{port}_total"),
                        format!("{n}: between 1 and 1000000"),
                    ));
                }
                l.total = n;
            }
            if l.per_source > l.total {
                p.push(Problem::new(
                    format!("limits.{port}_per_source"),
                    format!(
                        "{} is above limits.{port}_total ({})",
                        l.per_source, l.total
                    ),
                ));
            }
        }
        (grpc, http)
    }
}

/// `[audit]`
#[derive(Debug, Deserialize, Default)]
pub struct RawAudit {
    /// Forward every new audit entry as RFC 5424 syslog over UDP,
    /// `udp://host:514`.
    pub syslog: Option<String>,
}

/// `[store]`: absent, the SQLite file in `server.data_dir` (the default and
/// the quickstart); `url = "postgres://user@host/db"` stores in PostgreSQL.
#[derive(Debug, Deserialize, Default)]
pub struct RawStore {
    /// PostgreSQL URL (`postgres://` or `postgresql://`). The password, if
    /// any, is never logged; prefer a `.pgpass`-less setup with the
    /// `PANTAU_STORE_URL` environment variable for it.
    pub url: Option<String>,
}

/// Environment variable that overrides `[store] url` (beside the generic
/// `PANTAU_COLLECTOR__STORE__URL`): keeps a password out of the file.
pub const STORE_URL_ENV: &str = "PANTAU_STORE_URL";

impl RawStore {
    fn validate(self, p: &mut Vec<Problem>) -> Option<String> {
        let from_env = std::env::var(STORE_URL_ENV).ok().filter(|u| !u.is_empty());
        // A bad value is named where it came from.
        let key = match from_env {
            Some(_) => "store.url (PANTAU_STORE_URL)",
            None => "store.url",
        };
        let url = from_env.or(self.url)?;
        let shown = crate::store::postgres::redact(&url);
        if !crate::store::postgres::is_postgres_url(&url) {
            p.push(Problem::new(
                key,
                format!("`{shown}` is not a postgres:// URL (leave it out to use SQLite in server.data_dir)"),
            ));
            return None;
        }
        if let Err(e) = url.parse::<postgres::Config>() {
            p.push(Problem::new(key, format!("`{shown}`: {e}")));
            return None;
        }
        Some(url)
    }
}

/// `[web]`: sessions of the web sign-in and the `/metrics` credential.
#[derive(Debug, Deserialize, Default)]
pub struct RawWeb {
    /// A session unused this long ends (default 30min).
    pub session_idle: Option<String>,
    /// A session ends this long after login whatever its use (default 12h).
    pub session_max: Option<String>,
    /// A file holding a bearer token that may read `/metrics` only (for
    /// Prometheus' `authorization.credentials_file`); a `scrape` API token
    /// works too.
    pub metrics_token_file: Option<PathBuf>,
    /// Per-target series on `/metrics` (default true); false for a
    /// collector of thousands of agents whose dashboards read the
    /// remote-write receiver (docs/SCALE.md).
    pub metrics_per_target: Option<bool>,
    /// `[web.oidc]`: sign-in through an OpenID Connect provider.
    pub oidc: Option<RawOidc>,
}

/// Validated `[web]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// Idle limit of a session.
    pub session_idle: Duration,
    /// Absolute limit of a session.
    pub session_max: Duration,
    /// The scrape token read from `metrics_token_file`.
    pub metrics_token: Option<String>,
    /// Per-target `pantau_probe_*` series on `/metrics`.
    pub metrics_per_target: bool,
    /// `[web.oidc]`, when OpenID Connect sign-in is on.
    pub oidc: Option<OidcConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            metrics_token: None,
            metrics_per_target: true,
            oidc: None,
        }
    }
}

impl RawWeb {
    fn validate(self, p: &mut Vec<Problem>) -> WebConfig {
        let mut w = WebConfig::default();
        let mut dur = |key: &str, v: Option<String>, into: &mut Duration| {
            if let Some(v) = v {
                match humantime::parse_duration(&v) {
                    Ok(d) if d >= Duration::from_secs(60) => *into = d,
                    Ok(_) => p.push(Problem::new(key, format!("`{v}` is below 1min"))),
                    Err(e) => p.push(Problem::new(
                        key,
                        format!("`{v}` is not a duration ({e}), e.g. 30min"),
                    )),
                }
            }
        };
        dur("web.session_idle", self.session_idle, &mut w.session_idle);
        dur("web.session_max", self.session_max, &mut w.session_max);
        if let Some(f) = self.metrics_token_file {
            match std::fs::read_to_string(&f) {
                Ok(t) if t.trim().len() >= 16 => w.metrics_token = Some(t.trim().to_string()),
                Ok(_) => p.push(Problem::new(
                    "web.metrics_token_file",
                    format!("{}: the token must be at least 16 characters", f.display()),
                )),
                Err(e) => p.push(Problem::new(
                    "web.metrics_token_file",
                    format!("cannot read {}: {e}", f.display()),
                )),
            }
        }
        w.metrics_per_target = self.metrics_per_target.unwrap_or(true);
        w.oidc = self.oidc.and_then(|o| o.validate(p));
        w
    }
}

/// `[web.oidc]`: sign-in through an OpenID Connect provider (docs/ADMIN.md).
#[derive(Debug, Deserialize, Default)]
pub struct RawOidc {
    /// The provider's issuer URL (discovery at
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// This collector's client id at the provider.
    pub client_id: Option<String>,
    /// A file (mode 0600) holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The callback URL registered at the provider; default: derived from
    /// the request's host (`<scheme>://<host>/login/oidc/callback`).
    pub redirect_url: Option<String>,
    /// Scopes asked for (default `openid`, `profile`, `email`).
    pub scopes: Option<Vec<String>>,
    /// The ID-token claim carrying the user's groups or roles (default `groups`).
    pub claim: Option<String>,
    /// Claim value -> `admin`, `evaluator`, `viewer` or `opd:<id>`.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// Refuse users whose `email_verified` is not true.
    #[serde(default)]
    pub require_verified_email: bool,
    /// The sign-in button's text (default "SSO").
    pub label: Option<String>,
    /// Limit of each request to the provider (default 10s).
    pub timeout: Option<String>,
}

/// A secret read from a file: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a claim value grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcGrant {
    /// `admin`, `evaluator` or `viewer`.
    Role(crate::store::accounts::Role),
    /// `opd:<id>`: the `opd` role for that OPD.
    Opd(String),
}

/// Validated `[web.oidc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    /// Issuer URL, exactly as the ID tokens' `iss`.
    pub issuer: String,
    /// Client id (the ID tokens' `aud`).
    pub client_id: String,
    /// Client secret from `client_secret_file`.
    pub client_secret: Secret,
    /// Fixed callback URL, if configured.
    pub redirect_url: Option<String>,
    /// Scopes asked for (always with `openid`).
    pub scopes: Vec<String>,
    /// The claim carrying groups or roles.
    pub claim: String,
    /// Claim value -> grant, as configured.
    pub roles: Vec<(String, OidcGrant)>,
    /// Refuse users without a verified e-mail address.
    pub require_verified_email: bool,
    /// The sign-in button's text.
    pub label: String,
    /// Limit of each request to the provider.
    pub timeout: Duration,
}

/// An `http(s)` URL; plain `http` only to a loopback host (tests, a provider
/// on the same machine).
fn oidc_url(key: &str, v: &str, p: &mut Vec<Problem>) -> bool {
    match reqwest::Url::parse(v) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u)
            if u.scheme() == "http"
                && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) =>
        {
            true
        }
        Ok(_) => {
            p.push(Problem::new(
                key,
                format!("`{v}` must be an https URL (http only on loopback)"),
            ));
            false
        }
        Err(e) => {
            p.push(Problem::new(key, format!("`{v}` is not a URL ({e})")));
            false
        }
    }
}

/// Read a secret file that only its owner may read.
fn secret_file(key: &str, f: &Path, p: &mut Vec<Problem>) -> Option<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(f) {
        Ok(m) => m.permissions().mode(),
        Err(e) => {
            p.push(Problem::new(
                key,
                format!("cannot read {}: {e}", f.display()),
            ));
            return None;
        }
    };
    if mode & 0o077 != 0 {
        p.push(Problem::new(
            key,
            format!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                f.display(),
                mode & 0o777
            ),
        ));
        return None;
    }
    match std::fs::read_to_string(f) {
        Ok(t) if !t.trim().is_empty() => Some(Secret(t.trim().to_string())),
        Ok(_) => {
            p.push(Problem::new(key, format!("{} is empty", f.display())));
            None
        }
        Err(e) => {
            p.push(Problem::new(
                key,
                format!("cannot read {}: {e}", f.display()),
            ));
            None
        }
    }
}

/// Parse a `roles` value: `admin`, `evaluator`, `viewer` or `opd:<id>`.
fn oidc_grant(v: &str) -> Option<OidcGrant> {
    use crate::store::accounts::Role;
    match v.split_once(':') {
        Some(("opd", id)) if !id.is_empty() && !id.contains(',') => {
            Some(OidcGrant::Opd(id.to_string()))
        }
        Some(_) => None,
        None => match Role::parse(v)? {
            r @ (Role::Admin | Role::Evaluator | Role::Viewer) => Some(OidcGrant::Role(r)),
            Role::Opd | Role::Scrape => None,
        },
    }
}

impl RawOidc {
    fn validate(self, p: &mut Vec<Problem>) -> Option<OidcConfig> {
        let before = p.len();
        let need = |key: &str, v: Option<String>, p: &mut Vec<Problem>| match v {
            Some(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            _ => {
                p.push(Problem::new(key, "required when [web.oidc] is present"));
                None
            }
        };
        let issuer = need("web.oidc.issuer", self.issuer, p);
        if let Some(i) = &issuer {
            oidc_url("web.oidc.issuer", i, p);
        }
        let client_id = need("web.oidc.client_id", self.client_id, p);
        let client_secret = match &self.client_secret_file {
            Some(f) => secret_file("web.oidc.client_secret_file", f, p),
            None => {
                p.push(Problem::new(
                    "web.oidc.client_secret_file",
                    "required when [web.oidc] is present",
                ));
                None
            }
        };
        if let Some(r) = &self.redirect_url
            && oidc_url("web.oidc.redirect_url", r, p)
            && !r.ends_with("/login/oidc/callback")
        {
            p.push(Problem::new(
                "web.oidc.redirect_url",
                format!("`{r}` must end in /login/oidc/callback"),
            ));
        }
        let mut scopes = self
            .scopes
            .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        {
            p.push(Problem::new(
                "web.oidc.scopes",
                format!("`{bad}` is not a scope name"),
            ));
        }
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let mut roles = Vec::new();
        for (value, grant) in self.roles {
            match oidc_grant(grant.trim()) {
                Some(g) => roles.push((value, g)),
                None => p.push(Problem::new(
                    format!("web.oidc.roles.\"{value}\""),
                    format!("`{grant}`: use admin, evaluator, viewer or opd:<id>"),
                )),
            }
        }
        if roles.is_empty() && p.len() == before {
            p.push(Problem::new(
                "web.oidc.roles",
                "map at least one claim value to a role, e.g. \"pantau-admin\" = \"admin\"",
            ));
        }
        let mut timeout = Duration::from_secs(10);
        if let Some(t) = self.timeout {
            match humantime::parse_duration(&t) {
                Ok(d) if d >= Duration::from_secs(1) => timeout = d,
                _ => p.push(Problem::new(
                    "web.oidc.timeout",
                    format!("`{t}` is not a duration of at least 1s, e.g. 10s"),
                )),
            }
        }
        if p.len() != before {
            return None;
        }
        Some(OidcConfig {
            issuer: issuer?,
            client_id: client_id?,
            client_secret: client_secret?,
            redirect_url: self.redirect_url,
            scopes,
            claim: self
                .claim
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| "groups".into()),
            roles,
            require_verified_email: self.require_verified_email,
            label: self.label.unwrap_or_else(|| "SSO".into()),
            timeout,
        })
    }
}

/// `[tls]`: the gRPC port serves TLS unless `insecure = true`.
#[derive(Debug, Deserialize, Default)]
pub struct RawTls {
    /// Serve plaintext gRPC (tokens and results readable on the wire).
    pub insecure: Option<bool>,
    /// The province's own server certificate (PEM chain); with `key`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); with `cert`.
    pub key: Option<PathBuf>,
    /// Extra DNS names / IP addresses for the built-in CA's server certificate.
    #[serde(default)]
    pub names: Vec<String>,
    /// Serve HTTPS on the HTTP port (`http_listen`) with the gRPC port's
    /// certificate. Default: on when `http_listen` is not a loopback address
    /// (agents' bandwidth tests send their token there) and `insecure` is
    /// off; off on loopback (Prometheus, Grafana, a reverse proxy on this host).
    pub https: Option<bool>,
    /// `required` (default): agents show a client certificate AND their
    /// token; `optional`: token alone is accepted too (migration, lab).
    pub client_certs: Option<String>,
    /// CA certificate(s) (PEM) client certificates must chain to when the
    /// province's own certificate (`tls.cert`) is used.
    pub client_ca: Option<PathBuf>,
    /// Validity of client certificates the built-in CA issues (default 30 days).
    pub client_cert_validity: Option<String>,
}

/// Validated `[tls]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// Plaintext gRPC, chosen explicitly.
    pub insecure: bool,
    /// Own certificate and key; `None`: the built-in CA in `<data_dir>/tls`.
    pub cert_key: Option<(PathBuf, PathBuf)>,
    /// Names for the built-in CA's server certificate.
    pub names: Vec<String>,
    /// `[tls] https`: `None` means the default of [`TlsConfig::https_on`].
    pub https: Option<bool>,
    /// `[tls] client_certs`.
    pub client_certs: crate::mtls::ClientCertMode,
    /// `[tls] client_ca`: with an own certificate, the CA of client certificates.
    pub client_ca: Option<PathBuf>,
    /// `[tls] client_cert_validity`.
    pub client_cert_validity: Duration,
}

impl TlsConfig {
    /// Whether the HTTP port bound at `http` serves HTTPS: `[tls] https`
    /// when set, else on unless `http` is loopback or `insecure` is set.
    pub fn https_on(&self, http: std::net::SocketAddr) -> bool {
        self.https
            .unwrap_or(!self.insecure && !http.ip().is_loopback())
    }
}

impl RawTls {
    fn validate(self, p: &mut Vec<Problem>) -> TlsConfig {
        let cert_key = match (self.cert, self.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                p.push(Problem::new("tls.key", "required when tls.cert is set"));
                None
            }
            (None, Some(_)) => {
                p.push(Problem::new("tls.cert", "required when tls.key is set"));
                None
            }
        };
        for (i, n) in self.names.iter().enumerate() {
            if n.trim().is_empty() || n.contains(char::is_whitespace) {
                p.push(Problem::new(
                    format!("tls.names[{i}]"),
                    format!("`{n}` is not a DNS name or IP address"),
                ));
            }
        }
        let client_certs = match self.client_certs.as_deref() {
            None | Some("required") => crate::mtls::ClientCertMode::Required,
            Some("optional") => crate::mtls::ClientCertMode::Optional,
            Some(other) => {
                p.push(Problem::new(
                    "tls.client_certs",
                    format!("`{other}`: use \"required\" or \"optional\""),
                ));
                crate::mtls::ClientCertMode::Required
            }
        };
        let insecure = self.insecure.unwrap_or(false);
        if cert_key.is_some()
            && self.client_ca.is_none()
            && !insecure
            && client_certs == crate::mtls::ClientCertMode::Required
        {
            p.push(Problem::new(
                "tls.client_ca",
                "required with tls.cert: the CA that issued the agents' client certificates \
                 (or tls.client_certs = \"optional\")",
            ));
        }
        let client_cert_validity = confload::duration(
            "tls.client_cert_validity",
            self.client_cert_validity.as_deref().unwrap_or("30days"),
            Duration::from_secs(10),
            Duration::from_secs(400 * 86400),
            p,
        )
        .unwrap_or(crate::mtls::DEFAULT_CLIENT_VALIDITY);
        TlsConfig {
            insecure,
            cert_key,
            names: self.names,
            https: self.https,
            client_certs,
            client_ca: self.client_ca,
            client_cert_validity,
        }
    }
}

/// `[report]`
#[derive(Debug, Deserialize, Default)]
pub struct RawReport {
    /// How long raw results are kept (rollups are kept indefinitely).
    pub raw_retention: Option<String>,
    /// Consecutive down minutes of a group that open an incident.
    pub incident_minutes: Option<u32>,
    /// Target for OPD coverage (connected / total), percent.
    pub coverage_target: Option<f64>,
    /// SLA availability targets per group, percent.
    #[serde(default)]
    pub sla: RawGroups<f64>,
    /// Minute-state and composite rules.
    #[serde(default)]
    pub rules: RawRules,
    /// Where the official public key of the collector is published (a URL or
    /// a short text), printed in every report's validity box.
    pub public_key_url: Option<String>,
    /// The report signing key file (absolute path; default
    /// `<data_dir>/report-signing.key`); its retired public keys live in
    /// `keys/` beside it.
    pub signing_key: Option<PathBuf>,
    /// Sign-off block printed at the end of every report.
    pub signoff: Option<RawSignoff>,
    /// The unit under the agency in the PDF letterhead ("Dinas Komunikasi,
    /// Informatika dan Persandian").
    pub unit: Option<String>,
    /// A PNG logo for the PDF letterhead (absolute path), read when the
    /// configuration is loaded.
    pub letterhead_logo: Option<PathBuf>,
}

/// `[report.signoff]`: who signs the report off.
#[derive(Debug, Deserialize, Default)]
pub struct RawSignoff {
    /// Nama (full name with titles).
    pub name: Option<String>,
    /// NIP: the 18-digit civil servant number (spaces allowed).
    pub nip: Option<String>,
    /// Jabatan (position).
    pub position: Option<String>,
    /// Tempat (place of signing); the date is the report's date of issue.
    pub place: Option<String>,
}

/// Validated `[report.signoff]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Signoff {
    /// Nama.
    pub name: String,
    /// NIP, 18 digits (as written).
    pub nip: String,
    /// Jabatan.
    pub position: String,
    /// Tempat.
    pub place: String,
}

/// Printed when `report.public_key_url` is not set.
pub const DEFAULT_PUBLIC_KEY_URL: &str = "halaman /laporan kolektor dan papan pengumuman resmi Diskominfo / the collector's /laporan page and the official Diskominfo notice";

fn signoff(raw: Option<RawSignoff>, p: &mut Vec<Problem>) -> Option<Signoff> {
    let raw = raw?;
    let mut text = |key: &str, v: Option<String>| {
        let v = v.unwrap_or_default().trim().to_string();
        if v.is_empty() || v.chars().count() > 120 || v.contains(['\n', '\r']) {
            p.push(Problem::new(
                format!("report.signoff.{key}"),
                "must be one line of 1 to 120 characters",
            ));
        }
        v
    };
    let name = text("name", raw.name);
    let position = text("position", raw.position);
    let place = text("place", raw.place);
    let nip = raw.nip.unwrap_or_default().trim().to_string();
    let digits: String = nip.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 18 || !digits.chars().all(|c| c.is_ascii_digit()) {
        p.push(Problem::new(
            "report.signoff.nip",
            format!("`{nip}` is not a NIP: 18 digits expected (spaces allowed)"),
        ));
    }
    Some(Signoff {
        name,
        nip,
        position,
        place,
    })
}

/// One value per target group (`[report.sla]`, `[report.rules.composite]`).
#[derive(Debug, Deserialize)]
pub struct RawGroups<T> {
    /// Jaringan Intra.
    pub intranet: Option<T>,
    /// Pusat Data.
    pub datacenter: Option<T>,
    /// Internet.
    pub internet: Option<T>,
    /// JIP/PDN interconnection.
    pub jip: Option<T>,
    /// Applications.
    pub app: Option<T>,
}

impl<T> Default for RawGroups<T> {
    fn default() -> Self {
        RawGroups {
            intranet: None,
            datacenter: None,
            internet: None,
            jip: None,
            app: None,
        }
    }
}

impl<T> RawGroups<T> {
    /// The values in [`GROUPS`] order.
    fn into_array(self) -> [Option<T>; 5] {
        [
            self.intranet,
            self.datacenter,
            self.internet,
            self.jip,
            self.app,
        ]
    }
}

/// `[report.rules]`
#[derive(Debug, Deserialize, Default)]
pub struct RawRules {
    /// Packet loss above this percentage makes an answering minute degraded.
    pub degraded_loss_percent: Option<f64>,
    /// Latency above this makes an answering minute degraded ("500ms").
    pub degraded_rtt: Option<String>,
    /// Business hours for the business-hours variant, local time ("08-16").
    pub business_hours: Option<String>,
    /// How each group's targets combine: any, all or quorum:N.
    #[serde(default)]
    pub composite: RawGroups<String>,
}

/// Validated `[report]`.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Raw result retention.
    pub raw_retention: Duration,
    /// Down minutes that open an incident.
    pub incident_minutes: u32,
    /// Coverage target, percent.
    pub coverage_target_pct: f64,
    /// SLA availability target per group (percent), in [`GROUPS`] order.
    pub sla_pct: [f64; 5],
    /// Minute-state and composite rules (versioned).
    pub rules: RuleSet,
    /// Where the official public key is published.
    pub public_key_url: String,
    /// Sign-off block, when configured.
    pub signoff: Option<Signoff>,
    /// The signing key file, when not in the data directory.
    pub signing_key: Option<PathBuf>,
    /// `[report] unit`: the unit line of the PDF letterhead.
    pub unit: Option<String>,
    /// `[report] letterhead_logo`: the logo's PNG bytes.
    pub letterhead_logo: Option<std::sync::Arc<Vec<u8>>>,
}

impl CollectorConfig {
    /// Where the report signing key lives.
    pub fn signing_key_path(&self) -> PathBuf {
        self.report
            .signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::report::sign::KEY_FILE))
    }
}

/// `[server]`
#[derive(Debug, Deserialize, Default)]
pub struct RawServer {
    /// Directory holding pantau.db.
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address for agents.
    pub grpc_listen: Option<String>,
    /// HTTP listen address for metrics, API and pages.
    pub http_listen: Option<String>,
}

/// `[ingest]`
#[derive(Debug, Deserialize, Default)]
pub struct RawIngest {
    /// Most results accepted in one batch.
    pub max_batch_results: Option<u32>,
    /// Write operations queued for the writer before agents are slowed down.
    pub write_queue: Option<u32>,
    /// How long a new stream may take to send Hello.
    pub hello_timeout: Option<String>,
    /// Results observed longer ago than this are flagged as untrusted (`past`).
    pub max_result_age: Option<String>,
}

/// `[display]`
#[derive(Debug, Deserialize, Default)]
pub struct RawDisplay {
    /// Agency name shown on pages and reports.
    pub agency: Option<String>,
    /// WIB, WITA, WIT or UTC.
    pub time_zone: Option<String>,
}

/// Validated collector configuration.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// gRPC address.
    pub grpc_listen: SocketAddr,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// Batch cap.
    pub max_batch_results: usize,
    /// Writer queue bound.
    pub write_queue: usize,
    /// Hello deadline.
    pub hello_timeout: Duration,
    /// Age beyond which a result's timestamp is flagged `past`.
    pub max_result_age: Duration,
    /// Display settings.
    pub display: Display,
    /// `[enrol]` targets for new agents as a `[[targets]]` TOML fragment;
    /// `None`: the built-in default (the collector itself, ICMP and TCP).
    pub enrol_targets: Option<String>,
    /// Rollups, retention and reports.
    pub report: ReportConfig,
    /// Remote-write export, when enabled.
    pub remote_write: Option<crate::remote_write::RemoteWriteConfig>,
    /// TLS of the gRPC port.
    pub tls: TlsConfig,
    /// `[store] url`: PostgreSQL; `None`: SQLite in `data_dir`.
    pub store_url: Option<String>,
    /// `[cluster]`: this collector's name and its leases.
    pub cluster: ClusterConfig,
    /// `[audit] syslog`: where new audit entries are forwarded (`host:port`).
    pub audit_syslog: Option<String>,
    /// `[limits]` of the gRPC port.
    pub grpc_limits: crate::net::Limits,
    /// `[limits]` of the HTTP port.
    pub http_limits: crate::net::Limits,
    /// Web sign-in.
    pub web: WebConfig,
}

/// How times and names are shown to people. Storage is always UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Display {
    /// Agency name.
    pub agency: String,
    /// Zone abbreviation printed after times.
    pub zone_name: String,
    /// Offset from UTC, minutes.
    pub utc_offset_minutes: i64,
}

impl Default for Display {
    fn default() -> Self {
        Display {
            agency: "Pemerintah Provinsi Sulawesi Barat".into(),
            zone_name: "WITA".into(),
            utc_offset_minutes: 480,
        }
    }
}

impl CollectorConfig {
    /// Defaults, for commands run without a file.
    pub fn defaults() -> Self {
        RawConfig::default().validate().expect("defaults are valid")
    }

    /// Load and validate a file with environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = confload::load(path, ENV_PREFIX)?;
        raw.validate().map_err(|problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        })
    }
}

fn addr(p: &mut Vec<Problem>, key: &str, v: Option<String>, default: &str) -> SocketAddr {
    let v = v.unwrap_or_else(|| default.into());
    v.parse().unwrap_or_else(|_| {
        p.push(Problem::new(
            key,
            format!("`{v}` is not ip:port (e.g. 0.0.0.0:7470)"),
        ));
        default.parse().expect("default address")
    })
}

impl RawConfig {
    /// Check everything, collecting all problems (in file order: each
    /// section's own pass lists its keys in order).
    pub fn validate(self) -> Result<CollectorConfig, Vec<Problem>> {
        let mut p = Vec::new();
        let (data_dir, grpc_listen, http_listen) = self.server.validate(&mut p);
        let ingest = self.ingest.validate(&mut p);
        let enrol_targets = crate::enrol::validate(self.enrol, &mut p);
        let display = self.display.validate(&mut p);
        let report = self.report.validate(&mut p);
        let remote_write = self.remote_write.validate(&mut p);
        let tls = self.tls.validate(&mut p);
        let (grpc_limits, http_limits) = self.limits.validate(&mut p);
        let store_url = self.store.validate(&mut p);
        let cluster = self.cluster.validate(&mut p);
        let audit_syslog = self.audit.syslog.and_then(|a| {
            crate::audit::syslog_target(&a)
                .map_err(|e| p.push(Problem::new("audit.syslog", e.to_string())))
                .ok()
        });
        let web = self.web.validate(&mut p);
        if !p.is_empty() {
            return Err(p);
        }
        Ok(CollectorConfig {
            data_dir,
            grpc_listen,
            http_listen,
            max_batch_results: ingest.max_batch_results,
            write_queue: ingest.write_queue,
            hello_timeout: ingest.hello_timeout,
            max_result_age: ingest.max_result_age,
            display,
            enrol_targets,
            report,
            remote_write,
            tls,
            store_url,
            cluster,
            audit_syslog,
            grpc_limits,
            http_limits,
            web,
        })
    }
}

impl RawServer {
    /// Data directory, gRPC and HTTP addresses.
    fn validate(self, p: &mut Vec<Problem>) -> (PathBuf, SocketAddr, SocketAddr) {
        // Absent: empty, "not configured"; the command line must then give
        // --data-dir (cli::config refuses otherwise, never a silent
        // ./pantau-data).
        if self
            .data_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            p.push(Problem::new("server.data_dir", "must not be empty"));
        }
        let data_dir = self.data_dir.unwrap_or_default();
        let grpc_listen = addr(p, "server.grpc_listen", self.grpc_listen, "127.0.0.1:7470");
        let http_listen = addr(p, "server.http_listen", self.http_listen, "127.0.0.1:7471");
        if grpc_listen == http_listen && grpc_listen.port() != 0 {
            p.push(Problem::new(
                "server.http_listen",
                "must differ from server.grpc_listen",
            ));
        }
        (data_dir, grpc_listen, http_listen)
    }
}

/// Validated `[ingest]`.
struct Ingest {
    max_batch_results: usize,
    write_queue: usize,
    hello_timeout: Duration,
    max_result_age: Duration,
}

impl RawIngest {
    fn validate(self, p: &mut Vec<Problem>) -> Ingest {
        let max_batch_results = self
            .max_batch_results
            .unwrap_or(pantau_proto::MAX_BATCH_RESULTS as u32);
        if !(1..=pantau_proto::MAX_BATCH_RESULTS as u32).contains(&max_batch_results) {
            p.push(Problem::new(
                "ingest.max_batch_results",
                format!(
                    "{max_batch_results} is out of range; allowed 1 to {}",
                    pantau_proto::MAX_BATCH_RESULTS
                ),
            ));
        }
        let write_queue = self.write_queue.unwrap_or(256);
        if !(1..=100_000).contains(&write_queue) {
            p.push(Problem::new(
                "ingest.write_queue",
                format!("{write_queue} is out of range; allowed 1 to 100000"),
            ));
        }
        let hello_timeout = confload::duration(
            "ingest.hello_timeout",
            self.hello_timeout.as_deref().unwrap_or("30s"),
            Duration::from_secs(1),
            Duration::from_secs(600),
            p,
        )
        .unwrap_or(Duration::from_secs(30));
        let max_result_age = confload::duration(
            "ingest.max_result_age",
            self.max_result_age.as_deref().unwrap_or("8days"),
            Duration::from_secs(3600),
            Duration::from_secs(400 * 86400),
            p,
        )
        .unwrap_or(Duration::from_secs(8 * 86400));
        Ingest {
            max_batch_results: max_batch_results as usize,
            write_queue: write_queue as usize,
            hello_timeout,
            max_result_age,
        }
    }
}

impl RawDisplay {
    fn validate(self, p: &mut Vec<Problem>) -> Display {
        let mut display = Display::default();
        if let Some(a) = self.agency {
            display.agency = a;
        }
        match self.time_zone.as_deref().unwrap_or("WITA") {
            "WIB" => (display.zone_name, display.utc_offset_minutes) = ("WIB".into(), 420),
            "WITA" => (display.zone_name, display.utc_offset_minutes) = ("WITA".into(), 480),
            "WIT" => (display.zone_name, display.utc_offset_minutes) = ("WIT".into(), 540),
            "UTC" => (display.zone_name, display.utc_offset_minutes) = ("UTC".into(), 0),
            other => p.push(Problem::new(
                "display.time_zone",
                format!("`{other}` is not one of WIB, WITA, WIT, UTC"),
            )),
        }
        display
    }
}

impl RawReport {
    fn validate(self, p: &mut Vec<Problem>) -> ReportConfig {
        let raw_retention = confload::duration(
            "report.raw_retention",
            self.raw_retention.as_deref().unwrap_or("90days"),
            Duration::from_secs(86400),
            Duration::from_secs(3660 * 86400),
            p,
        )
        .unwrap_or(Duration::from_secs(90 * 86400));
        let incident_minutes = self.incident_minutes.unwrap_or(5);
        if !(1..=1440).contains(&incident_minutes) {
            p.push(Problem::new(
                "report.incident_minutes",
                format!("{incident_minutes} is out of range; allowed 1 to 1440"),
            ));
        }
        let coverage_target_pct = self.coverage_target.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&coverage_target_pct) {
            p.push(Problem::new(
                "report.coverage_target",
                format!("{coverage_target_pct} is out of range; allowed 0 to 100 (percent)"),
            ));
        }
        let mut sla_pct = DEFAULT_SLA_PCT;
        for (i, v) in self.sla.into_array().into_iter().enumerate() {
            match v {
                Some(v) if (0.0..=100.0).contains(&v) => sla_pct[i] = v,
                Some(v) => p.push(Problem::new(
                    format!("report.sla.{}", GROUPS[i]),
                    format!("{v} is out of range; allowed 0 to 100 (percent)"),
                )),
                None => {}
            }
        }
        let rules = rules_of(self.rules, incident_minutes, p);
        let public_key_url = self
            .public_key_url
            .map(|u| u.trim().to_string())
            .unwrap_or_else(|| DEFAULT_PUBLIC_KEY_URL.into());
        if public_key_url.is_empty() || public_key_url.chars().count() > 300 {
            p.push(Problem::new(
                "report.public_key_url",
                "must be a URL or text of 1 to 300 characters",
            ));
        }
        let unit = self.unit.map(|u| u.trim().to_string());
        if unit
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.chars().count() > 150 || u.contains(['\n', '\r']))
        {
            p.push(Problem::new(
                "report.unit",
                "must be one line of 1 to 150 characters",
            ));
        }
        let letterhead_logo = self.letterhead_logo.and_then(|f| letterhead_logo(&f, p));
        ReportConfig {
            unit,
            letterhead_logo,
            raw_retention,
            incident_minutes,
            coverage_target_pct,
            sla_pct,
            rules,
            public_key_url,
            signoff: signoff(self.signoff, p),
            signing_key: self.signing_key.filter(|k| {
                let ok = k.is_absolute();
                if !ok {
                    p.push(Problem::new(
                        "report.signing_key",
                        format!("{} must be an absolute path", k.display()),
                    ));
                }
                ok
            }),
        }
    }
}

/// Largest letterhead logo accepted (it is embedded in every PDF).
const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// `[report] letterhead_logo`: an absolute path to a PNG of at most 512 KiB.
fn letterhead_logo(f: &Path, p: &mut Vec<Problem>) -> Option<std::sync::Arc<Vec<u8>>> {
    let key = "report.letterhead_logo";
    if !f.is_absolute() {
        p.push(Problem::new(
            key,
            format!("{} must be an absolute path", f.display()),
        ));
        return None;
    }
    let bytes = match std::fs::metadata(f) {
        Ok(m) if m.len() > MAX_LOGO_BYTES => {
            p.push(Problem::new(
                key,
                format!("{} is {} bytes; at most 512 KiB", f.display(), m.len()),
            ));
            return None;
        }
        Ok(_) => std::fs::read(f),
        Err(e) => Err(e),
    };
    match bytes {
        Ok(b) if b.starts_with(b"\x89PNG\r\n\x1a\n") => Some(std::sync::Arc::new(b)),
        Ok(_) => {
            p.push(Problem::new(
                key,
                format!("{} is not a PNG image", f.display()),
            ));
            None
        }
        Err(e) => {
            p.push(Problem::new(
                key,
                format!("{} cannot be read: {e}", f.display()),
            ));
            None
        }
    }
}

/// `[report.rules]` -> a versioned [`RuleSet`]: the defaults carry
/// [`crate::report::rules::RULE_VERSION`]; changed parameters get a version
/// suffixed with a digest of them, so two reports with the same version
/// always used the same rules.
fn rules_of(raw: RawRules, incident_minutes: u32, p: &mut Vec<Problem>) -> RuleSet {
    let mut r = RuleSet::default();
    if let Some(v) = raw.degraded_loss_percent {
        if (0.0..=100.0).contains(&v) {
            r.degraded_loss = v / 100.0;
        } else {
            p.push(Problem::new(
                "report.rules.degraded_loss_percent",
                format!("{v} is out of range; allowed 0 to 100 (percent)"),
            ));
        }
    }
    if let Some(d) = raw.degraded_rtt.as_deref().and_then(|v| {
        confload::duration(
            "report.rules.degraded_rtt",
            v,
            Duration::from_millis(1),
            Duration::from_secs(60),
            p,
        )
    }) {
        r.degraded_rtt_ms = d.as_secs_f64() * 1000.0;
    }
    if let Some(v) = raw.business_hours.as_deref() {
        let hours = v
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
            .filter(|(a, b)| a < b && *b <= 24);
        match hours {
            Some((a, b)) => (r.business_start_hour, r.business_end_hour) = (a, b),
            None => p.push(Problem::new(
                "report.rules.business_hours",
                format!("`{v}` is not START-END in whole local hours, e.g. \"08-16\" (0-24, START before END)"),
            )),
        }
    }
    for (i, v) in raw.composite.into_array().into_iter().enumerate() {
        let Some(v) = v else { continue };
        let c = match v.as_str() {
            "any" => Some(Composite::Any),
            "all" => Some(Composite::All),
            q => q
                .strip_prefix("quorum:")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (1..=100).contains(n))
                .map(Composite::Quorum),
        };
        match c {
            Some(c) => r.composite[i] = c,
            None => p.push(Problem::new(
                format!("report.rules.composite.{}", GROUPS[i]),
                format!("`{v}` is not one of any, all, quorum:N (N 1 to 100)"),
            )),
        }
    }
    r.incident_minutes = incident_minutes;
    r.stamp_version();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_on_by_default_and_half_a_key_pair_names_the_missing_key() {
        let d = CollectorConfig::defaults();
        assert!(!d.tls.insecure);
        assert_eq!(d.tls.cert_key, None);
        let raw = RawConfig {
            tls: RawTls {
                cert: Some("/etc/c.crt".into()),
                names: vec!["a b".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let problems = raw.validate().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["tls.key", "tls.names[0]"]);
        let raw = RawConfig {
            tls: RawTls {
                insecure: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(raw.validate().unwrap().tls.insecure);
    }

    #[test]
    fn https_on_the_http_port_defaults_to_on_off_loopback() {
        let addr = |a: &str| a.parse::<std::net::SocketAddr>().unwrap();
        let d = CollectorConfig::defaults().tls;
        assert!(!d.https_on(addr("127.0.0.1:7471")));
        assert!(!d.https_on(addr("[::1]:7471")));
        assert!(d.https_on(addr("10.10.0.5:7471")));
        assert!(d.https_on(addr("0.0.0.0:7471")));
        let lab = TlsConfig {
            insecure: true,
            ..d.clone()
        };
        assert!(!lab.https_on(addr("10.10.0.5:7471")));
        let forced = TlsConfig {
            https: Some(true),
            ..d.clone()
        };
        assert!(forced.https_on(addr("127.0.0.1:7471")));
        let off = TlsConfig {
            https: Some(false),
            ..d
        };
        assert!(!off.https_on(addr("10.10.0.5:7471")));
    }

    #[test]
    fn defaults_and_problems() {
        let c = CollectorConfig::defaults();
        assert_eq!(c.grpc_listen.port(), 7470);
        assert_eq!(c.display.zone_name, "WITA");
        let raw = RawConfig {
            server: RawServer {
                grpc_listen: Some("nowhere".into()),
                ..Default::default()
            },
            ingest: RawIngest {
                max_batch_results: Some(0),
                hello_timeout: Some("forever".into()),
                ..Default::default()
            },
            display: RawDisplay {
                time_zone: Some("CET".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let keys: Vec<String> = raw
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "server.grpc_listen",
                "ingest.max_batch_results",
                "ingest.hello_timeout",
                "display.time_zone"
            ]
        );
    }

    #[test]
    fn per_target_series_are_on_unless_turned_off() {
        assert!(CollectorConfig::defaults().web.metrics_per_target);
        let raw: RawConfig = toml::from_str("[web]\nmetrics_per_target = false\n").unwrap();
        assert!(!raw.validate().unwrap().web.metrics_per_target);
    }

    #[test]
    fn cluster_defaults_and_each_bad_key_named() {
        let c = CollectorConfig::defaults();
        assert_eq!(c.cluster.lease_ttl, Duration::from_secs(60));
        assert_eq!(c.cluster.work_every, Duration::from_secs(15));
        let a = c.cluster.node_name(Path::new("/var/lib/pantau"));
        assert!(pantau_core::id::valid_id(&a), "{a}");
        assert_eq!(a, c.cluster.node_name(Path::new("/var/lib/pantau")));
        assert_ne!(a, c.cluster.node_name(Path::new("/srv/pantau-b")));
        let problems = |cluster: RawCluster| -> Vec<(String, String)> {
            RawConfig {
                cluster,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
        };
        let p = problems(RawCluster {
            node: Some("a b".into()),
            ..Default::default()
        });
        assert_eq!(p[0].0, "cluster.node");
        let p = problems(RawCluster {
            lease_ttl: Some("10s".into()),
            work_every: Some("6s".into()),
            ..Default::default()
        });
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "cluster.lease_ttl");
        assert!(p[0].1.contains("twice"), "{p:?}");
    }

    #[test]
    fn signoff_names_each_bad_key() {
        let raw = RawConfig {
            report: RawReport {
                signoff: Some(RawSignoff {
                    name: Some("Dr. Andi, S.Kom.".into()),
                    nip: Some("19800101 200501 1 00".into()),
                    position: None,
                    place: Some("Mamuju".into()),
                }),
                public_key_url: Some(String::new()),
                ..Default::default()
            },
            ..Default::default()
        };
        let keys: Vec<String> = raw
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "report.public_key_url",
                "report.signoff.position",
                "report.signoff.nip"
            ]
        );
        let ok = signoff(
            Some(RawSignoff {
                name: Some("Andi".into()),
                nip: Some("19800101 200501 1 001".into()),
                position: Some("Kepala Dinas".into()),
                place: Some("Mamuju".into()),
            }),
            &mut Vec::new(),
        );
        assert_eq!(ok.map(|s| s.nip), Some("19800101 200501 1 001".into()));
    }

    #[test]
    fn oidc_section_reads_the_secret_and_bad_keys_name_key_and_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("oidc-secret");
        std::fs::write(&secret, "rahasia-klien\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = dir.path().join("collector.toml");
        let write = |body: &str| std::fs::write(&file, body).unwrap();
        write(&format!(
            "[web.oidc]\nissuer = \"https://sso.example.go.id/realms/pemprov\"\nclient_id = \"pantau\"\n\
client_secret_file = \"{}\"\nscopes = [\"groups\"]\n[web.oidc.roles]\n\"pantau-admin\" = \"admin\"\n\
\"pantau-opd-dinkes\" = \"opd:dinkes\"\n",
            secret.display()
        ));
        let o = CollectorConfig::load(&file).unwrap().web.oidc.unwrap();
        assert_eq!(o.client_secret, Secret("rahasia-klien".into()));
        assert_eq!(o.scopes, ["openid", "groups"]);
        assert_eq!(o.claim, "groups");
        assert_eq!(
            o.roles,
            [
                (
                    "pantau-admin".to_string(),
                    OidcGrant::Role(crate::store::accounts::Role::Admin)
                ),
                (
                    "pantau-opd-dinkes".to_string(),
                    OidcGrant::Opd("dinkes".into())
                ),
            ]
        );
        assert!(
            !format!("{o:?}").contains("rahasia-klien"),
            "the secret is never printed"
        );

        // A secret others can read, a plain-http issuer off loopback, an
        // unknown role, a bare `opd`: each names its key and the file.
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&format!(
            "[web.oidc]\nissuer = \"http://sso.example.go.id\"\nclient_id = \"pantau\"\n\
client_secret_file = \"{}\"\nredirect_url = \"https://pantau.example/elsewhere\"\n\
[web.oidc.roles]\n\"x\" = \"superuser\"\n\"y\" = \"opd\"\n",
            secret.display()
        ));
        let e = CollectorConfig::load(&file).unwrap_err().to_string();
        for key in [
            "web.oidc.issuer",
            "web.oidc.client_secret_file",
            "web.oidc.redirect_url",
            "web.oidc.roles.\"x\"",
            "web.oidc.roles.\"y\"",
        ] {
            assert!(
                e.contains(&format!("{}: {key}:", file.display())),
                "{key} in {e}"
            );
        }
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("rahasia-klien"), "{e}");
        // Missing required keys, and no role mapping at all.
        write("[web.oidc]\nclaim = \"groups\"\n");
        let e = CollectorConfig::load(&file).unwrap_err().to_string();
        for key in [
            "web.oidc.issuer",
            "web.oidc.client_id",
            "web.oidc.client_secret_file",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
        write("[web.oidc]\nissuer = \"https://sso.example\"\nclient_id = \"p\"\nunknown_key = 1\n");
        let e = CollectorConfig::load(&file).unwrap_err().to_string();
        assert!(e.contains("web.oidc.unknown_key"), "{e}");
    }
}
