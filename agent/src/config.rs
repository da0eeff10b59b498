//! Agent configuration: the envelope of the TOML file (`[agent]`,
//! `[collector]`, `[spool]`, `[defaults]`, `[bandwidth]` and the targets
//! list), one validation pass that collects every problem, and the immutable
//! [`AgentConfig`] the rest of the agent uses. What each target probes is
//! declared and validated per kind in `pantau_core::probe`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::spool::{Fsync, SpoolConfig};
use pantau_core::confload::{self, ConfigError, Problem, bounded, parse_size};
use pantau_core::probe::{Defaults, MAX_INTERVAL, MAX_TIMEOUT, MIN_INTERVAL, MIN_TIMEOUT};

pub use pantau_core::probe::{
    BandwidthSpec, Direction, LinkSource, LinkSpec, ProbeSpec, RawTarget, SnmpAuth, Target,
    targets_fragment, targets_from_toml,
};

/// Environment prefix for overrides: `PANTAU_AGENT__COLLECTOR__URL=...`.
pub const ENV_PREFIX: &str = "PANTAU_AGENT";

/// The file as written by the operator.
#[derive(Debug, Deserialize, Default)]
pub struct RawConfig {
    /// Who this agent is.
    #[serde(default)]
    pub agent: RawAgent,
    /// Where results go.
    #[serde(default)]
    pub collector: RawCollector,
    /// The durable spool.
    #[serde(default)]
    pub spool: RawSpool,
    /// Defaults applied to every target that does not set its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Limits shared by every bandwidth test.
    #[serde(default)]
    pub bandwidth: RawBandwidthPolicy,
    /// What to probe.
    #[serde(default)]
    pub targets: Vec<RawTarget>,
}

/// `[agent]`
#[derive(Debug, Deserialize, Default)]
pub struct RawAgent {
    /// Agent id as registered at the collector (`pantau-collector agent add`).
    pub id: Option<String>,
    /// How often a heartbeat with agent health is sent.
    pub heartbeat_interval: Option<String>,
    /// Upper bound on probes running at the same time.
    pub max_concurrent_probes: Option<u32>,
}

/// `[collector]`
#[derive(Debug, Deserialize, Default)]
pub struct RawCollector {
    /// gRPC URL of the collector, e.g. `http://10.10.0.5:7470`.
    pub url: Option<String>,
    /// Several collectors sharing one database, tried in order: on a failed
    /// connection or an ended stream the agent moves to the next one. Set
    /// either `url` or `urls`.
    pub urls: Option<Vec<String>>,
    /// The agent token, inline. Prefer `token_file`.
    pub token: Option<String>,
    /// File holding the agent token (first line).
    pub token_file: Option<PathBuf>,
    /// Most results sent in one batch.
    pub batch_max: Option<u32>,
    /// Allow a plaintext `http://` URL (token and results readable on the network).
    pub insecure: Option<bool>,
    /// CA certificate (PEM) that signed the collector's certificate; without
    /// it the public web PKI roots are used.
    pub ca: Option<PathBuf>,
    /// The agent's client certificate (PEM), shown on every connection.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600); with `cert`.
    pub key: Option<PathBuf>,
}

/// How the agent secures its connection to the collector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectorTls {
    /// `collector.insecure`: plaintext `http://` allowed.
    pub insecure: bool,
    /// `collector.ca`.
    pub ca: Option<PathBuf>,
    /// `collector.cert` and `collector.key`: the client certificate and key.
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

/// `[spool]`
#[derive(Debug, Deserialize, Default)]
pub struct RawSpool {
    /// Directory for the durable spool.
    pub dir: Option<PathBuf>,
    /// Most disk space the spool may use, e.g. "256MiB".
    pub max_size: Option<String>,
    /// Oldest result kept while undelivered.
    pub max_age: Option<String>,
    /// always, interval or never.
    pub fsync: Option<String>,
    /// With fsync = "interval": how often.
    pub fsync_interval: Option<String>,
}

/// `[defaults]`
#[derive(Debug, Deserialize, Default)]
pub struct RawDefaults {
    /// Probe interval.
    pub interval: Option<String>,
    /// Probe timeout.
    pub timeout: Option<String>,
    /// ICMP echoes per round.
    pub icmp_count: Option<u32>,
}

/// `[bandwidth]`: limits shared by every bandwidth test of this agent.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBandwidthPolicy {
    /// Shortest time between the start of one test and the next (any target).
    pub min_gap: Option<String>,
    /// Most bytes all tests may use per calendar month (UTC); "0" = no budget.
    pub monthly_budget: Option<String>,
    /// File that keeps the month's byte count across restarts.
    pub state_file: Option<PathBuf>,
}

/// Validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent id.
    pub agent_id: String,
    /// Collector gRPC URL: the first of `collector_urls`.
    pub collector_url: String,
    /// Every collector the agent may send to, in order (`[collector] urls`,
    /// or the one `url`); never empty.
    pub collector_urls: Vec<String>,
    /// TLS settings for the collector connection.
    pub collector_tls: CollectorTls,
    /// Where the token comes from; `None` only allowed for `check`.
    pub token: Option<TokenSource>,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Concurrency bound.
    pub max_concurrent_probes: usize,
    /// Batch size.
    pub batch_max: usize,
    /// The durable spool.
    pub spool: SpoolConfig,
    /// Limits shared by bandwidth tests.
    pub bandwidth: BandwidthPolicy,
    /// Targets in configuration order.
    pub targets: Vec<Target>,
    /// `[defaults]`, which central targets inherit too.
    pub defaults: Defaults,
    /// SHA-256 of the configuration file's bytes (hex).
    pub config_hash: String,
}

/// Where the agent's token is kept. A file is read when the agent starts,
/// so `check` and config tests work without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Written in the config file.
    Inline(String),
    /// Read from the first line of a file.
    File(PathBuf),
}

/// Limits shared by every bandwidth test.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthPolicy {
    /// Shortest time between tests.
    pub min_gap: Duration,
    /// Bytes per calendar month (UTC); 0 = unlimited.
    pub monthly_budget: u64,
    /// Where the month's count is kept.
    pub state_file: PathBuf,
}

impl AgentConfig {
    /// Load and validate `path` with environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = confload::load(path, ENV_PREFIX)?;
        let bytes = std::fs::read(path).unwrap_or_default();
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        raw.validate(hash).map_err(|problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        })
    }

    /// The token, or a plain-words error saying where to put it.
    pub fn require_token(&self) -> Result<String, TokenError> {
        match &self.token {
            None => Err(TokenError::Missing),
            Some(TokenSource::Inline(t)) => Ok(t.clone()),
            Some(TokenSource::File(f)) => {
                let text = std::fs::read_to_string(f).map_err(|source| TokenError::Unreadable {
                    file: f.clone(),
                    source,
                })?;
                text.lines()
                    .next()
                    .map(|l| l.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| TokenError::Empty(f.clone()))
            }
        }
    }
}

/// Why the collector token is not available.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Neither `token` nor `token_file` is set.
    #[error(
        "no collector token: set collector.token_file (or collector.token) to the token \
         printed by `pantau-collector agent add`"
    )]
    Missing,
    /// The token file cannot be read.
    #[error("collector.token_file: cannot read {}: {source}", file.display())]
    Unreadable {
        /// The token file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file's first line is empty.
    #[error("collector.token_file: {} is empty", .0.display())]
    Empty(PathBuf),
}

/// The one id rule, from `pantau_core` (kept here for existing callers).
pub use pantau_core::valid_id;

/// The message for an id that breaks the rule.
fn invalid_id(id: &str) -> String {
    pantau_core::InvalidId {
        what: pantau_core::TargetId::WHAT,
        value: id.to_string(),
    }
    .to_string()
}

impl RawConfig {
    /// Check everything, collecting all problems.
    pub fn validate(self, config_hash: String) -> Result<AgentConfig, Vec<Problem>> {
        let mut p = Vec::new();
        let agent_id = match self.agent.id {
            Some(id) if valid_id(&id) => id,
            Some(id) => {
                p.push(Problem::new("agent.id", invalid_id(&id)));
                String::new()
            }
            None => {
                p.push(Problem::new(
                    "agent.id",
                    "missing; set it to the id registered at the collector",
                ));
                String::new()
            }
        };
        let heartbeat_interval = confload::duration(
            "agent.heartbeat_interval",
            self.agent.heartbeat_interval.as_deref().unwrap_or("30s"),
            Duration::from_secs(1),
            Duration::from_secs(3600),
            &mut p,
        )
        .unwrap_or(Duration::from_secs(30));
        let max_concurrent_probes = bounded(
            &mut p,
            "agent.max_concurrent_probes",
            self.agent.max_concurrent_probes,
            32,
            1,
            1024,
        );

        let listed = self.collector.urls.is_some() && self.collector.url.is_none();
        let collector_urls = collector_urls(self.collector.url, self.collector.urls, &mut p);
        let collector_url = collector_urls[0].clone();
        let cert_key = match (self.collector.cert, self.collector.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                p.push(Problem::new(
                    "collector.key",
                    "required when collector.cert is set",
                ));
                None
            }
            (None, Some(_)) => {
                p.push(Problem::new(
                    "collector.cert",
                    "required when collector.key is set",
                ));
                None
            }
        };
        let collector_tls = CollectorTls {
            insecure: self.collector.insecure.unwrap_or(false),
            ca: self.collector.ca,
            cert_key,
        };
        for (i, url) in collector_urls.iter().enumerate() {
            let key = match listed {
                true => format!("collector.urls[{i}]"),
                false => "collector.url".to_string(),
            };
            check_collector_url(&key, url, collector_tls.insecure, &mut p);
        }
        let token = match (self.collector.token, self.collector.token_file) {
            (Some(_), Some(_)) => {
                p.push(Problem::new(
                    "collector.token",
                    "set either token or token_file, not both",
                ));
                None
            }
            (Some(t), None) if t.trim().is_empty() => None,
            (Some(t), None) => Some(TokenSource::Inline(t.trim().to_string())),
            (None, Some(f)) => Some(TokenSource::File(f)),
            (None, None) => None,
        };
        let batch_max = bounded(
            &mut p,
            "collector.batch_max",
            self.collector.batch_max,
            500,
            1,
            pantau_proto::MAX_BATCH_RESULTS as u32,
        );
        let spool = validate_spool(self.spool, &mut p);
        let bandwidth = validate_bandwidth_policy(self.bandwidth, &spool.dir, &mut p);

        let defaults = validate_defaults(self.defaults, &mut p);
        let targets = check_targets(self.targets, &defaults, collector_tls.insecure, &mut p);
        if p.is_empty() {
            Ok(AgentConfig {
                agent_id,
                collector_url,
                collector_urls,
                collector_tls,
                token,
                heartbeat_interval,
                max_concurrent_probes,
                batch_max,
                spool,
                bandwidth,
                targets,
                defaults,
                config_hash,
            })
        } else {
            Err(p)
        }
    }
}

/// Validate `[[targets]]` tables as the configuration file's are (the
/// per-kind rules of `pantau_core::probe` plus this machine's checks:
/// `ca_file` readable, no collector bandwidth test over plaintext). Used
/// for the file and for central targets (`central.rs`).
pub fn check_targets(
    raw: Vec<RawTarget>,
    defaults: &Defaults,
    insecure: bool,
    p: &mut Vec<Problem>,
) -> Vec<Target> {
    check_collector_bandwidth_tls(&raw, insecure, p);
    check_http_ca_files(&raw, p);
    pantau_core::probe::validate_targets(raw, defaults, p)
}

/// A collector bandwidth test (`server = "collector"`, the default) sends
/// the agent token, the agent's credential: never over plaintext `http://`
/// unless `collector.insecure = true` (a lab). Checked on the raw targets so
/// the index in the key is the one written in the file.
fn check_collector_bandwidth_tls(targets: &[RawTarget], insecure: bool, p: &mut Vec<Problem>) {
    if insecure {
        return;
    }
    for (i, t) in targets.iter().enumerate() {
        let collector = t.kind.as_deref() == Some("bandwidth")
            && t.settings
                .bandwidth
                .table
                .as_ref()
                .and_then(|b| b.server.as_deref())
                .is_none_or(|s| s == "collector");
        if let Some(a) = t.address.as_deref().filter(|a| a.starts_with("http://"))
            && collector
        {
            p.push(Problem::new(
                format!("targets[{i}].address"),
                format!(
                    "`{a}` tanpa TLS / is plaintext: a collector bandwidth test sends the agent \
                     token; use https:// (the collector's HTTP port with TLS, trusted through \
                     collector.ca), or set collector.insecure = true for a lab"
                ),
            ));
        }
    }
}

/// An http target's `ca_file` must be a readable PEM file of CA
/// certificates; the problem names the key and the file.
fn check_http_ca_files(targets: &[RawTarget], p: &mut Vec<Problem>) {
    for (i, t) in targets.iter().enumerate() {
        if t.kind.as_deref() != Some("http") {
            continue;
        }
        if let Some(f) = t
            .settings
            .http
            .ca_file
            .as_deref()
            .filter(|f| !f.as_os_str().is_empty())
            && let Err(e) = crate::probe::http::tls::load_ca_file(f)
        {
            p.push(Problem::new(format!("targets[{i}].ca_file"), e.to_string()));
        }
    }
}

/// Default spool directory of an installed agent.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/pantau-agent/spool";

/// `[collector] url` or `urls`: exactly one of them, a list not empty and
/// without repeats. Falls back to the local collector so validation goes on
/// collecting problems.
fn collector_urls(
    url: Option<String>,
    urls: Option<Vec<String>>,
    p: &mut Vec<Problem>,
) -> Vec<String> {
    let local = || vec!["https://127.0.0.1:7470".to_string()];
    match (url, urls) {
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                "collector.urls",
                "set either url or urls, not both / isi url atau urls, jangan keduanya",
            ));
            local()
        }
        (Some(u), None) => vec![u],
        (None, None) => local(),
        (None, Some(list)) if list.is_empty() => {
            p.push(Problem::new(
                "collector.urls",
                "empty; list at least one collector, e.g. [\"https://10.10.0.5:7470\"]",
            ));
            local()
        }
        (None, Some(list)) => {
            for (i, u) in list.iter().enumerate() {
                if list[..i].contains(u) {
                    p.push(Problem::new(
                        format!("collector.urls[{i}]"),
                        format!("`{u}` is listed twice"),
                    ));
                }
            }
            list
        }
    }
}

/// `collector.url` (or one of `urls`, named by `key`): https:// always;
/// http:// only with `collector.insecure`.
fn check_collector_url(key: &str, collector_url: &str, insecure: bool, p: &mut Vec<Problem>) {
    if collector_url.starts_with("http://") {
        if !insecure {
            p.push(Problem::new(
                key,
                format!(
                    "`{collector_url}` tanpa TLS / is plaintext: use https:// (the default), \
                     or set collector.insecure = true to send the token and results readable"
                ),
            ));
        }
    } else if !collector_url.starts_with("https://") {
        p.push(Problem::new(
            "collector.url",
            format!("`{collector_url}` must start with https:// (or http:// with collector.insecure = true)"),
        ));
    }
}

/// `[defaults]`: what targets inherit.
fn validate_defaults(raw: RawDefaults, p: &mut Vec<Problem>) -> Defaults {
    let d_interval = confload::duration(
        "defaults.interval",
        raw.interval.as_deref().unwrap_or("30s"),
        MIN_INTERVAL,
        MAX_INTERVAL,
        p,
    )
    .unwrap_or(Duration::from_secs(30));
    let d_timeout = confload::duration(
        "defaults.timeout",
        raw.timeout.as_deref().unwrap_or("5s"),
        MIN_TIMEOUT,
        MAX_TIMEOUT,
        p,
    )
    .unwrap_or(Duration::from_secs(5));
    let d_count = bounded(p, "defaults.icmp_count", raw.icmp_count, 5, 1, 100) as u32;
    Defaults {
        interval: d_interval,
        timeout: d_timeout,
        icmp_count: d_count,
    }
}

fn validate_spool(raw: RawSpool, p: &mut Vec<Problem>) -> SpoolConfig {
    let max_bytes = match parse_size(raw.max_size.as_deref().unwrap_or("256MiB")) {
        Some(b) if (16 * 1024..=1 << 40).contains(&b) => b,
        Some(_) => {
            p.push(Problem::new(
                "spool.max_size",
                "out of range; allowed 16KiB to 1TiB",
            ));
            256 << 20
        }
        None => {
            p.push(Problem::new(
                "spool.max_size",
                format!(
                    "`{}` is not a size; write e.g. \"256MiB\", \"2GiB\"",
                    raw.max_size.as_deref().unwrap_or_default()
                ),
            ));
            256 << 20
        }
    };
    let max_age = confload::duration(
        "spool.max_age",
        raw.max_age.as_deref().unwrap_or("7days"),
        Duration::from_secs(60),
        Duration::from_secs(366 * 86400),
        p,
    )
    .unwrap_or(Duration::from_secs(7 * 86400));
    let interval = confload::duration(
        "spool.fsync_interval",
        raw.fsync_interval.as_deref().unwrap_or("1s"),
        Duration::from_millis(10),
        Duration::from_secs(60),
        p,
    )
    .unwrap_or(Duration::from_secs(1));
    let fsync = match raw.fsync.as_deref().unwrap_or("interval") {
        "always" => Fsync::Always,
        "interval" => Fsync::Interval(interval),
        "never" => Fsync::Never,
        other => {
            p.push(Problem::new(
                "spool.fsync",
                format!("`{other}` is not one of always, interval, never"),
            ));
            Fsync::Interval(interval)
        }
    };
    SpoolConfig {
        dir: raw.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL_DIR)),
        max_bytes,
        max_age,
        fsync,
    }
}

fn validate_bandwidth_policy(
    raw: RawBandwidthPolicy,
    spool_dir: &Path,
    p: &mut Vec<Problem>,
) -> BandwidthPolicy {
    let min_gap = confload::duration(
        "bandwidth.min_gap",
        raw.min_gap.as_deref().unwrap_or("15m"),
        Duration::ZERO,
        Duration::from_secs(31 * 86400),
        p,
    )
    .unwrap_or(Duration::from_secs(900));
    let monthly_budget = match parse_size(raw.monthly_budget.as_deref().unwrap_or("0")) {
        Some(b) => b,
        None => {
            p.push(Problem::new(
                "bandwidth.monthly_budget",
                "not a size; write e.g. \"20GB\", or \"0\" for no budget",
            ));
            0
        }
    };
    let state_file = raw.state_file.unwrap_or_else(|| {
        spool_dir
            .parent()
            .unwrap_or(spool_dir)
            .join("bandwidth-budget.json")
    });
    BandwidthPolicy {
        min_gap,
        monthly_budget,
        state_file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn valid_config_gets_defaults() {
        let c = raw(r#"
            [agent]
            id = "dinkes-1"
            [collector]
            token = "abc"
            [[targets]]
            id = "core"
            group = "intranet"
            kind = "icmp"
            address = "10.0.0.1"
        "#)
        .validate("h".into())
        .unwrap();
        assert_eq!(c.targets[0].interval, Duration::from_secs(30));
        assert_eq!(
            c.targets[0].spec,
            ProbeSpec::Icmp(pantau_core::probe::IcmpSpec { count: 5 })
        );
        assert_eq!(c.require_token().unwrap(), "abc");
        // TLS by default: the default URL is https.
        assert_eq!(c.collector_url, "https://127.0.0.1:7470");
    }

    #[test]
    fn a_list_of_collectors_is_kept_in_order_and_url_still_works() {
        let base = "[agent]\nid = \"a\"\n[collector]\ntoken = \"t\"\n";
        let c = raw(&format!(
            "{base}urls = [\"https://a:7443\", \"https://b:7443\"]\n"
        ))
        .validate("h".into())
        .unwrap();
        assert_eq!(c.collector_urls, ["https://a:7443", "https://b:7443"]);
        assert_eq!(c.collector_url, "https://a:7443");
        let c = raw(&format!("{base}url = \"https://a:7443\"\n"))
            .validate("h".into())
            .unwrap();
        assert_eq!(c.collector_urls, ["https://a:7443"]);
    }

    #[test]
    fn url_and_urls_together_empty_lists_repeats_and_plaintext_are_named() {
        let base = "[agent]\nid = \"a\"\n[collector]\ntoken = \"t\"\n";
        let problems = |extra: &str| -> Vec<(String, String)> {
            raw(&format!("{base}{extra}"))
                .validate("h".into())
                .unwrap_err()
                .into_iter()
                .map(|p| (p.key, p.message))
                .collect()
        };
        let both = problems("url = \"https://a:1\"\nurls = [\"https://b:1\"]\n");
        assert_eq!(both.len(), 1, "{both:?}");
        assert_eq!(both[0].0, "collector.urls");
        assert!(both[0].1.contains("not both"), "{both:?}");
        let empty = problems("urls = []\n");
        assert_eq!(empty[0].0, "collector.urls");
        assert!(empty[0].1.contains("empty"), "{empty:?}");
        let twice = problems("urls = [\"https://a:1\", \"https://a:1\"]\n");
        assert_eq!(twice[0].0, "collector.urls[1]");
        let plain = problems("urls = [\"https://a:1\", \"http://b:1\"]\n");
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert_eq!(plain[0].0, "collector.urls[1]");
        assert!(plain[0].1.contains("plaintext"), "{plain:?}");
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let errs = raw(r#"
            [agent]
            id = "bad id!"
            max_concurrent_probes = 0
            [[targets]]
            id = "a"
            group = "moon"
            kind = "icmp"
            address = "10.0.0.1"
            [[targets]]
            id = "a"
            group = "app"
            kind = "tcp"
            address = "no-port"
            interval = "10s"
            timeout = "20s"
        "#)
        .validate("h".into())
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "agent.id",
                "agent.max_concurrent_probes",
                "targets[0].group",
                "targets[1].id",
                "targets[1].address",
                "targets[1].timeout"
            ]
        );
    }

    #[test]
    fn bandwidth_and_link_settings_are_checked() {
        let errs = raw(r#"
            [agent]
            id = "a"
            [bandwidth]
            monthly_budget = "lots"
            [[targets]]
            id = "bw"
            group = "internet"
            kind = "bandwidth"
            address = "http://speed.example/file"
            [targets.bandwidth]
            server = "http"
            warmup = "10s"
            max_duration = "5s"
            [[targets]]
            id = "wan"
            group = "intranet"
            kind = "link"
            address = "10.0.0.1"
            [targets.link]
            version = "3"
            [[targets]]
            id = "gw"
            group = "intranet"
            kind = "link"
            address = "eth0"
            [targets.link]
            source = "local"
            community = "public"
            contracted_mbps = -1
            [[targets]]
            id = "tcp"
            group = "app"
            kind = "tcp"
            address = "10.0.0.1:80"
            [targets.link]
            source = "local"
        "#)
        .validate("h".into())
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bandwidth.monthly_budget",
                "targets[0].bandwidth.upload_url",
                "targets[0].bandwidth.warmup",
                "targets[1].link.user",
                "targets[1].link.auth_protocol",
                "targets[1].link.priv_protocol",
                "targets[1].link.auth_password_file",
                "targets[1].link.priv_password_file",
                "targets[1].link.if_index",
                "targets[2].link.contracted_mbps",
                "targets[2].link.source",
                "targets[3].link",
            ]
        );
        assert!(errs[5].message.contains("authPriv only"), "{:?}", errs[5]);

        let ok = raw(r#"
            [agent]
            id = "a"
            [[targets]]
            id = "bw"
            group = "datacenter"
            kind = "bandwidth"
            address = "https://10.10.0.5:7471"
            [[targets]]
            id = "gw"
            group = "intranet"
            kind = "link"
            address = "eth0"
            [targets.link]
            source = "local"
            contracted_mbps = 50
        "#)
        .validate("h".into())
        .unwrap();
        let ProbeSpec::Bandwidth(bw) = &ok.targets[0].spec else {
            panic!("{:?}", ok.targets[0])
        };
        assert_eq!(
            (bw.collector, bw.direction, bw.streams),
            (true, Direction::Both, 4)
        );
        assert_eq!(ok.bandwidth.min_gap, Duration::from_secs(900));
        assert_eq!(ok.bandwidth.monthly_budget, 0);
        assert_eq!(
            ok.bandwidth.state_file,
            PathBuf::from("/var/lib/pantau-agent/bandwidth-budget.json")
        );
        let ProbeSpec::Link(l) = &ok.targets[1].spec else {
            panic!("{:?}", ok.targets[1])
        };
        assert_eq!(
            (&l.source, l.contracted_bps),
            (&LinkSource::Local, Some(50_000_000))
        );
    }

    /// The agent token never goes to a collector bandwidth endpoint over
    /// plaintext: refused with the target's address key unless the lab opt-in
    /// is set; plain-URL tests (`server = "http"`, no token) keep http://.
    #[test]
    fn collector_bandwidth_over_http_needs_the_insecure_opt_in() {
        let cfg = |insecure: &str| {
            format!(
                r#"
            [agent]
            id = "a"
            [collector]
            url = "https://10.10.0.5:7470"
            {insecure}
            [[targets]]
            id = "internet"
            group = "internet"
            kind = "bandwidth"
            address = "http://speed.example/file"
            [targets.bandwidth]
            server = "http"
            direction = "download"
            [[targets]]
            id = "pusat-data"
            group = "datacenter"
            kind = "bandwidth"
            address = "http://10.10.0.5:7471"
            [[targets]]
            id = "pusat-data-eksplisit"
            group = "datacenter"
            kind = "bandwidth"
            address = "http://10.10.0.5:7471/"
            [targets.bandwidth]
            server = "collector"
            [[targets]]
            id = "pusat-data-tls"
            group = "datacenter"
            kind = "bandwidth"
            address = "https://10.10.0.5:7471"
        "#
            )
        };
        let errs = raw(&cfg("")).validate("h".into()).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["targets[1].address", "targets[2].address"]);
        assert!(errs[0].message.contains("https://"), "{:?}", errs[0]);
        assert!(
            errs[0].message.contains("collector.insecure"),
            "{:?}",
            errs[0]
        );
        let ok = raw(&cfg("insecure = true")).validate("h".into()).unwrap();
        assert_eq!(ok.targets.len(), 4);
    }

    #[test]
    fn snmp_v3_is_authpriv_with_passwords_inline_or_in_files() {
        use pantau_core::probe::{AuthProtocol, PrivProtocol};
        let dir = tempfile::tempdir().unwrap();
        let auth_file = dir.path().join("auth");
        std::fs::write(&auth_file, "auth-secret-1\nignored second line\n").unwrap();
        let short_file = dir.path().join("short");
        std::fs::write(&short_file, "short\n").unwrap();
        let missing = dir.path().join("missing");
        let target = |id: &str, link: &str| {
            format!(
                "[[targets]]\nid = \"{id}\"\ngroup = \"intranet\"\nkind = \"link\"\naddress = \"10.0.0.1\"\n[targets.link]\nif_index = 2\n{link}\n"
            )
        };
        let ok = raw(&format!(
            "[agent]\nid = \"a\"\n{}",
            target(
                "v3",
                &format!(
                    "version = \"3\"\nuser = \"pantau\"\nauth_protocol = \"sha256\"\nauth_password_file = \"{}\"\npriv_protocol = \"aes\"\npriv_password = \"priv-secret-2\"",
                    auth_file.display()
                )
            )
        ))
        .validate("h".into())
        .unwrap();
        let ProbeSpec::Link(LinkSpec {
            source:
                LinkSource::Snmp {
                    if_index: 2,
                    auth: SnmpAuth::V3(u),
                },
            ..
        }) = &ok.targets[0].spec
        else {
            panic!("{:?}", ok.targets[0])
        };
        assert_eq!(
            (u.user.as_str(), u.auth_protocol, u.priv_protocol),
            ("pantau", AuthProtocol::Sha256, PrivProtocol::Aes128)
        );
        assert_eq!(u.auth_password.0, "auth-secret-1");
        assert_eq!(u.priv_password.0, "priv-secret-2");
        assert!(
            !format!("{u:?}").contains("secret"),
            "Debug hides passwords"
        );

        let errs = raw(&format!(
            "[agent]\nid = \"a\"\n{}{}{}{}",
            target(
                "md5",
                &format!(
                    "version = \"3\"\nuser = \"pantau\"\nauth_protocol = \"md5\"\nauth_password = \"x\"\nauth_password_file = \"{}\"\npriv_protocol = \"des\"\npriv_password_file = \"{}\"\ncommunity = \"public\"",
                    auth_file.display(),
                    missing.display()
                )
            ),
            target(
                "short",
                &format!(
                    "version = \"3\"\nuser = \"pantau\"\nauth_protocol = \"sha\"\nauth_password = \"1234567\"\npriv_protocol = \"aes\"\npriv_password_file = \"{}\"",
                    short_file.display()
                )
            ),
            target("v2-with-user", "user = \"pantau\""),
            target("v1", "version = \"1\""),
        ))
        .validate("h".into())
        .unwrap_err();
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str()))
            .collect();
        let keys: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "targets[0].link.community",
                "targets[0].link.auth_protocol",
                "targets[0].link.priv_protocol",
                "targets[0].link.auth_password",
                "targets[0].link.priv_password_file",
                "targets[1].link.auth_password",
                "targets[1].link.priv_password_file",
                "targets[2].link.version",
                "targets[3].link.version",
            ]
        );
        assert!(got[1].1.contains("MD5 is broken"), "{:?}", got[1]);
        assert!(got[2].1.contains("DES is broken"), "{:?}", got[2]);
        assert!(got[3].1.contains("not both"), "{:?}", got[3]);
        assert!(
            got[4].1.contains(&missing.display().to_string()),
            "{:?}",
            got[4]
        );
        assert!(got[5].1.contains("shorter than 8"), "{:?}", got[5]);
        assert!(
            got[6].1.contains(&short_file.display().to_string()),
            "{:?}",
            got[6]
        );
        assert!(got[7].1.contains("version = \"3\""), "{:?}", got[7]);
        assert!(got[8].1.contains("allowed: 2c, 3"), "{:?}", got[8]);
    }

    #[test]
    fn the_commented_snmp_v3_example_loads_once_uncommented() {
        let example = include_str!("../../deploy/config/agent.example.toml");
        let start = example
            .find("#[[targets]]\n#id = \"wan-utilisation-v3\"")
            .expect("v3 example in agent.example.toml");
        let dir = tempfile::tempdir().unwrap();
        let mut block = String::new();
        for line in example[start..].lines().take_while(|l| l.starts_with('#')) {
            block.push_str(&line[1..]);
            block.push('\n');
        }
        for name in ["snmp-auth.pass", "snmp-priv.pass"] {
            let f = dir.path().join(name);
            std::fs::write(&f, "example-password\n").unwrap();
            block = block.replace(&format!("/etc/pantau/{name}"), &f.display().to_string());
        }
        let cfg = raw(&format!("[agent]\nid = \"a\"\n{block}"))
            .validate("h".into())
            .unwrap();
        let ProbeSpec::Link(link) = &cfg.targets[0].spec else {
            panic!("{:?}", cfg.targets[0])
        };
        assert!(
            matches!(&link.source, LinkSource::Snmp { auth: SnmpAuth::V3(u), .. } if u.priv_password.0 == "example-password"),
            "{link:?}"
        );
    }
}
