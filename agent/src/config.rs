//! Agent configuration: the raw TOML shape, one validation pass that collects
//! every problem, and the immutable [`AgentConfig`] the rest of the agent uses.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Group, ProbeKind};
use crate::spool::{Fsync, SpoolConfig};
use pantau_core::confload::{self, ConfigError, Problem};

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
    /// The agent token, inline. Prefer `token_file`.
    pub token: Option<String>,
    /// File holding the agent token (first line).
    pub token_file: Option<PathBuf>,
    /// Most results sent in one batch.
    pub batch_max: Option<u32>,
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

/// `[[targets]]`
#[derive(Debug, Deserialize, Default)]
pub struct RawTarget {
    /// Unique id within this agent.
    pub id: Option<String>,
    /// internet, intranet, datacenter, jip or app.
    pub group: Option<String>,
    /// icmp, tcp, http or dns.
    pub kind: Option<String>,
    /// IP or host (icmp), host:port (tcp), URL (http), name to resolve (dns).
    pub address: Option<String>,
    /// Human label for reports.
    pub label: Option<String>,
    /// Overrides `defaults.interval`.
    pub interval: Option<String>,
    /// Overrides `defaults.timeout`.
    pub timeout: Option<String>,
    /// ICMP: echoes per round.
    pub count: Option<u32>,
    /// HTTP: statuses counted as success (default 200-399).
    pub expect_status: Option<Vec<u16>>,
    /// DNS: resolver `ip:port` (default: first nameserver in /etc/resolv.conf).
    pub server: Option<String>,
    /// DNS: record type, A or AAAA.
    pub record: Option<String>,
    /// Bandwidth: how the test runs (`[targets.bandwidth]`).
    pub bandwidth: Option<RawBandwidthTest>,
    /// Link: where the counters come from (`[targets.link]`).
    pub link: Option<RawLink>,
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

/// `[targets.bandwidth]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBandwidthTest {
    /// "collector" (address is the collector's HTTP base URL, the agent token is sent)
    /// or "http" (address is a URL to download; `upload_url` to POST to).
    pub server: Option<String>,
    /// "download", "upload" or "both".
    pub direction: Option<String>,
    /// Parallel streams per direction.
    pub streams: Option<u32>,
    /// Most bytes per direction per test, e.g. "50MB".
    pub max_bytes: Option<String>,
    /// Longest time per direction, warm-up included.
    pub max_duration: Option<String>,
    /// Start of each direction not counted (TCP slow start, shaper bursts).
    pub warmup: Option<String>,
    /// server = "http": URL that accepts a POST body for the upload test.
    pub upload_url: Option<String>,
    /// Interface whose /proc/net/dev counters show whether the link is busy.
    pub busy_interface: Option<String>,
    /// Skip the test when that interface carries more than this many Mbit/s.
    pub busy_threshold_mbps: Option<f64>,
}

/// `[targets.link]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// "snmp" (address is the router, `host` or `host:port`) or "local"
    /// (address is an interface name of this machine, read from /proc/net/dev).
    pub source: Option<String>,
    /// SNMP: ifIndex of the interface.
    pub if_index: Option<u32>,
    /// SNMP version: "2c" or "3" (v3 always authPriv).
    pub version: Option<String>,
    /// SNMP v2c community.
    pub community: Option<String>,
    /// SNMP v3: USM user name.
    pub user: Option<String>,
    /// SNMP v3: "sha" (HMAC-SHA-96) or "sha256" (HMAC-SHA-256-192).
    pub auth_protocol: Option<String>,
    /// SNMP v3: authentication password, inline. Prefer `auth_password_file`.
    pub auth_password: Option<String>,
    /// SNMP v3: file whose first line is the authentication password.
    pub auth_password_file: Option<PathBuf>,
    /// SNMP v3: "aes" (AES-128-CFB).
    pub priv_protocol: Option<String>,
    /// SNMP v3: privacy password, inline. Prefer `priv_password_file`.
    pub priv_password: Option<String>,
    /// SNMP v3: file whose first line is the privacy password.
    pub priv_password_file: Option<PathBuf>,
    /// Contracted bandwidth of the link in Mbit/s; overrides the device's ifHighSpeed.
    pub contracted_mbps: Option<f64>,
}

/// Validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent id.
    pub agent_id: String,
    /// Collector gRPC URL.
    pub collector_url: String,
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

/// One validated target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Unique id.
    pub id: String,
    /// Group.
    pub group: Group,
    /// Probe kind.
    pub kind: ProbeKind,
    /// Address as configured.
    pub address: String,
    /// Label (may be empty).
    pub label: String,
    /// Interval.
    pub interval: Duration,
    /// Timeout.
    pub timeout: Duration,
    /// ICMP echoes per round.
    pub count: u32,
    /// HTTP statuses counted as success; empty means 200-399.
    pub expect_status: Vec<u16>,
    /// DNS server.
    pub dns_server: Option<std::net::SocketAddr>,
    /// DNS record type: true for AAAA.
    pub dns_aaaa: bool,
    /// Bandwidth test settings (kind bandwidth only).
    pub bandwidth: Option<BandwidthTest>,
    /// Link counter source (kind link only).
    pub link: Option<LinkSpec>,
}

/// Which way a bandwidth test measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server to agent.
    Download,
    /// Agent to server.
    Upload,
    /// Download, then upload.
    Both,
}

/// A validated bandwidth test.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthTest {
    /// True: the collector's endpoint with the agent token; false: a plain HTTP URL.
    pub collector: bool,
    /// Which way.
    pub direction: Direction,
    /// Parallel streams per direction.
    pub streams: u32,
    /// Byte cap per direction.
    pub max_bytes: u64,
    /// Duration cap per direction, warm-up included.
    pub max_duration: Duration,
    /// Discarded start of each direction.
    pub warmup: Duration,
    /// Upload URL for server = "http".
    pub upload_url: Option<String>,
    /// Interface checked for existing load, with the threshold in bit/s.
    pub busy: Option<(String, u64)>,
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

/// Where a link's counters come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkSource {
    /// SNMP against `address`.
    Snmp {
        /// ifIndex.
        if_index: u32,
        /// Version and credentials.
        auth: SnmpAuth,
    },
    /// /proc/net/dev of this machine; `address` is the interface.
    Local,
}

/// SNMP version and credentials.
#[derive(Debug, Clone, PartialEq)]
pub enum SnmpAuth {
    /// v2c with a community.
    V2c {
        /// Community string.
        community: String,
    },
    /// v3, USM authPriv.
    V3(SnmpV3User),
}

/// A password that `Debug` does not print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An SNMP v3 USM user (always authPriv), passwords already read.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmpV3User {
    /// User name.
    pub user: String,
    /// Authentication protocol.
    pub auth_protocol: crate::probe::usm::AuthProtocol,
    /// Authentication password.
    pub auth_password: Secret,
    /// Privacy protocol.
    pub priv_protocol: crate::probe::usm::PrivProtocol,
    /// Privacy password.
    pub priv_password: Secret,
}

/// A validated link target's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// The counter source.
    pub source: LinkSource,
    /// Contracted bandwidth, bit/s.
    pub contracted_bps: Option<u64>,
}

const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

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
    pub fn require_token(&self) -> Result<String, String> {
        match &self.token {
            None => Err(
                "no collector token: set collector.token_file (or collector.token) to the token \
                         printed by `pantau-collector agent add`"
                    .to_string(),
            ),
            Some(TokenSource::Inline(t)) => Ok(t.clone()),
            Some(TokenSource::File(f)) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    format!("collector.token_file: cannot read {}: {e}", f.display())
                })?;
                text.lines()
                    .next()
                    .map(|l| l.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| format!("collector.token_file: {} is empty", f.display()))
            }
        }
    }
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

        let collector_url = self
            .collector
            .url
            .unwrap_or_else(|| "http://127.0.0.1:7470".into());
        if !(collector_url.starts_with("http://") || collector_url.starts_with("https://")) {
            p.push(Problem::new(
                "collector.url",
                format!("`{collector_url}` must start with http:// or https://"),
            ));
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

        let d_interval = confload::duration(
            "defaults.interval",
            self.defaults.interval.as_deref().unwrap_or("30s"),
            MIN_INTERVAL,
            MAX_INTERVAL,
            &mut p,
        )
        .unwrap_or(Duration::from_secs(30));
        let d_timeout = confload::duration(
            "defaults.timeout",
            self.defaults.timeout.as_deref().unwrap_or("5s"),
            MIN_TIMEOUT,
            MAX_TIMEOUT,
            &mut p,
        )
        .unwrap_or(Duration::from_secs(5));
        let d_count = bounded(
            &mut p,
            "defaults.icmp_count",
            self.defaults.icmp_count,
            5,
            1,
            100,
        ) as u32;

        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for (i, t) in self.targets.into_iter().enumerate() {
            if let Some(t) =
                validate_target(i, t, d_interval, d_timeout, d_count, &mut seen, &mut p)
            {
                targets.push(t);
            }
        }
        if p.is_empty() {
            Ok(AgentConfig {
                agent_id,
                collector_url,
                token,
                heartbeat_interval,
                max_concurrent_probes,
                batch_max,
                spool,
                bandwidth,
                targets,
                config_hash,
            })
        } else {
            Err(p)
        }
    }
}

/// Default spool directory of an installed agent.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/pantau-agent/spool";

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

/// Parse "512", "64KiB", "256MiB", "2GiB" (also KB/MB/GB as powers of 1000).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn bounded(
    p: &mut Vec<Problem>,
    key: &str,
    v: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
) -> usize {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        p.push(Problem::new(
            key,
            format!("{v} is out of range; allowed {min} to {max}"),
        ));
        default as usize
    } else {
        v as usize
    }
}

fn validate_target(
    i: usize,
    t: RawTarget,
    d_interval: Duration,
    d_timeout: Duration,
    d_count: u32,
    seen: &mut HashSet<String>,
    p: &mut Vec<Problem>,
) -> Option<Target> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let before = p.len();
    let id = t.id.unwrap_or_default();
    if !valid_id(&id) {
        p.push(Problem::new(key("id"), invalid_id(&id)));
    } else if !seen.insert(id.clone()) {
        p.push(Problem::new(
            key("id"),
            format!("`{id}` is used by another target; ids must be unique"),
        ));
    }
    let group = match t.group.as_deref().map(Group::parse) {
        Some(Some(g)) => Some(g),
        other => {
            let shown = if other.is_some() {
                t.group.clone().unwrap_or_default()
            } else {
                String::new()
            };
            p.push(Problem::new(
                key("group"),
                format!("`{shown}` is not a group; allowed: {}", Group::ALL_NAMES),
            ));
            None
        }
    };
    let kind = match t.kind.as_deref().map(ProbeKind::parse) {
        Some(Some(k)) => Some(k),
        _ => {
            p.push(Problem::new(
                key("kind"),
                format!(
                    "`{}` is not a probe kind; allowed: icmp, tcp, http, dns, bandwidth, link, traceroute",
                    t.kind.clone().unwrap_or_default()
                ),
            ));
            None
        }
    };
    let address = t.address.unwrap_or_default();
    if let Some(kind) = kind {
        if let Err(msg) = check_address(kind, &address) {
            p.push(Problem::new(key("address"), msg));
        }
        if t.count.is_some() && kind != ProbeKind::Icmp {
            p.push(Problem::new(key("count"), "only icmp targets take count"));
        }
        if t.expect_status.is_some() && kind != ProbeKind::Http {
            p.push(Problem::new(
                key("expect_status"),
                "only http targets take expect_status",
            ));
        }
        if (t.server.is_some() || t.record.is_some()) && kind != ProbeKind::Dns {
            p.push(Problem::new(
                key("server"),
                "only dns targets take server and record",
            ));
        }
        if t.bandwidth.is_some() && kind != ProbeKind::Bandwidth {
            p.push(Problem::new(
                key("bandwidth"),
                "only bandwidth targets take [targets.bandwidth]",
            ));
        }
        if t.link.is_some() && kind != ProbeKind::Link {
            p.push(Problem::new(
                key("link"),
                "only link targets take [targets.link]",
            ));
        }
    }
    let bandwidth = match (kind, t.bandwidth) {
        (Some(ProbeKind::Bandwidth), raw) => {
            validate_bandwidth_test(&key("bandwidth"), raw.unwrap_or_default(), p)
        }
        _ => None,
    };
    let link = match (kind, t.link) {
        (Some(ProbeKind::Link), raw) => {
            validate_link(&key("link"), &address, raw.unwrap_or_default(), p)
        }
        _ => None,
    };
    let interval = match &t.interval {
        Some(s) => confload::duration(&key("interval"), s, MIN_INTERVAL, MAX_INTERVAL, p),
        None => Some(d_interval),
    };
    let timeout = match &t.timeout {
        Some(s) => confload::duration(&key("timeout"), s, MIN_TIMEOUT, MAX_TIMEOUT, p),
        None => Some(d_timeout),
    };
    if let (Some(iv), Some(to)) = (interval, timeout)
        && to > iv
    {
        p.push(Problem::new(
            key("timeout"),
            format!(
                "timeout {} is longer than the interval {}; it must not exceed it",
                humantime::format_duration(to),
                humantime::format_duration(iv)
            ),
        ));
    }
    let count = t.count.unwrap_or(d_count);
    if !(1..=100).contains(&count) {
        p.push(Problem::new(
            key("count"),
            format!("{count} is out of range; allowed 1 to 100"),
        ));
    }
    let expect_status = t.expect_status.unwrap_or_default();
    if let Some(bad) = expect_status.iter().find(|s| !(100..=599).contains(*s)) {
        p.push(Problem::new(
            key("expect_status"),
            format!("{bad} is not an HTTP status (100-599)"),
        ));
    }
    let dns_server = match &t.server {
        None => None,
        Some(s) => match parse_server(s) {
            Some(a) => Some(a),
            None => {
                p.push(Problem::new(
                    key("server"),
                    format!("`{s}` is not an ip or ip:port"),
                ));
                None
            }
        },
    };
    let dns_aaaa = match t.record.as_deref() {
        None | Some("A") | Some("a") => false,
        Some("AAAA") | Some("aaaa") => true,
        Some(other) => {
            p.push(Problem::new(
                key("record"),
                format!("`{other}` is not supported; allowed: A, AAAA"),
            ));
            false
        }
    };
    if p.len() > before {
        return None;
    }
    Some(Target {
        id,
        group: group?,
        kind: kind?,
        address,
        label: t.label.unwrap_or_default(),
        interval: interval?,
        timeout: timeout?,
        count,
        expect_status,
        dns_server,
        dns_aaaa,
        bandwidth,
        link,
    })
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

fn validate_bandwidth_test(
    key: &str,
    raw: RawBandwidthTest,
    p: &mut Vec<Problem>,
) -> Option<BandwidthTest> {
    let before = p.len();
    let k = |s: &str| format!("{key}.{s}");
    let collector = match raw.server.as_deref().unwrap_or("collector") {
        "collector" => true,
        "http" => false,
        other => {
            p.push(Problem::new(
                k("server"),
                format!("`{other}` is not one of collector, http"),
            ));
            true
        }
    };
    let direction = match raw.direction.as_deref().unwrap_or("both") {
        "download" => Direction::Download,
        "upload" => Direction::Upload,
        "both" => Direction::Both,
        other => {
            p.push(Problem::new(
                k("direction"),
                format!("`{other}` is not one of download, upload, both"),
            ));
            Direction::Both
        }
    };
    if !collector && direction != Direction::Download && raw.upload_url.is_none() {
        p.push(Problem::new(
            k("upload_url"),
            "server = \"http\" needs upload_url to test upload; or set direction = \"download\"",
        ));
    }
    if let Some(u) = &raw.upload_url
        && check_address(ProbeKind::Http, u).is_err()
    {
        p.push(Problem::new(
            k("upload_url"),
            format!("`{u}` is not an http:// or https:// URL"),
        ));
    }
    let streams = bounded(p, &k("streams"), raw.streams, 4, 1, 32) as u32;
    let max_bytes = match parse_size(raw.max_bytes.as_deref().unwrap_or("100MB")) {
        Some(b) if (1 << 16..=1 << 40).contains(&b) => b,
        _ => {
            p.push(Problem::new(
                k("max_bytes"),
                "not a size between 64KiB and 1TiB; write e.g. \"100MB\"",
            ));
            0
        }
    };
    let max_duration = confload::duration(
        &k("max_duration"),
        raw.max_duration.as_deref().unwrap_or("10s"),
        Duration::from_secs(1),
        Duration::from_secs(60),
        p,
    )
    .unwrap_or(Duration::from_secs(10));
    let warmup = confload::duration(
        &k("warmup"),
        raw.warmup.as_deref().unwrap_or("2s"),
        Duration::ZERO,
        Duration::from_secs(30),
        p,
    )
    .unwrap_or(Duration::from_secs(2));
    if warmup >= max_duration {
        p.push(Problem::new(
            k("warmup"),
            "must be shorter than max_duration, or nothing is measured",
        ));
    }
    let busy = match (raw.busy_interface, raw.busy_threshold_mbps) {
        (None, None) => None,
        (Some(i), Some(t)) if t > 0.0 && t.is_finite() && valid_ifname(&i) => {
            Some((i, (t * 1e6) as u64))
        }
        _ => {
            p.push(Problem::new(
                k("busy_interface"),
                "set busy_interface (an interface name) and busy_threshold_mbps (> 0) together",
            ));
            None
        }
    };
    (p.len() == before).then_some(BandwidthTest {
        collector,
        direction,
        streams,
        max_bytes,
        max_duration,
        warmup,
        upload_url: raw.upload_url,
        busy,
    })
}

fn validate_link(key: &str, address: &str, raw: RawLink, p: &mut Vec<Problem>) -> Option<LinkSpec> {
    let before = p.len();
    let k = |s: &str| format!("{key}.{s}");
    let contracted_bps = match raw.contracted_mbps {
        None => None,
        Some(m) if m > 0.0 && m.is_finite() => Some((m * 1e6) as u64),
        Some(m) => {
            p.push(Problem::new(
                k("contracted_mbps"),
                format!("{m} must be a positive number of Mbit/s"),
            ));
            None
        }
    };
    let has_v3_keys = raw.user.is_some()
        || raw.auth_protocol.is_some()
        || raw.auth_password.is_some()
        || raw.auth_password_file.is_some()
        || raw.priv_protocol.is_some()
        || raw.priv_password.is_some()
        || raw.priv_password_file.is_some();
    let source = match raw.source.as_deref().unwrap_or("snmp") {
        "snmp" => {
            let auth = match raw.version.as_deref().unwrap_or("2c") {
                "2c" => {
                    if has_v3_keys {
                        p.push(Problem::new(
                            k("version"),
                            "user, auth_* and priv_* are SNMP v3 settings; set version = \"3\" or remove them",
                        ));
                    }
                    SnmpAuth::V2c {
                        community: raw.community.clone().unwrap_or_else(|| "public".into()),
                    }
                }
                "3" => {
                    if raw.community.is_some() {
                        p.push(Problem::new(
                            k("community"),
                            "SNMP v3 uses user, auth_* and priv_*, not a community",
                        ));
                    }
                    validate_v3(&k, &raw, p)
                }
                other => {
                    p.push(Problem::new(
                        k("version"),
                        format!("`{other}` is not supported; allowed: 2c, 3"),
                    ));
                    SnmpAuth::V2c {
                        community: String::new(),
                    }
                }
            };
            if split_host_port(address).is_none_or(|(h, _)| !valid_host(h)) && !valid_host(address)
            {
                p.push(Problem::new(
                    key.replace(".link", ".address"),
                    format!("`{address}` is not a router host or host:port"),
                ));
            }
            let if_index = match raw.if_index {
                Some(i) if i > 0 => i,
                _ => {
                    p.push(Problem::new(
                        k("if_index"),
                        "set the router's ifIndex of the link (1 or more; see `snmpwalk ... IF-MIB::ifDescr`)",
                    ));
                    0
                }
            };
            LinkSource::Snmp { if_index, auth }
        }
        "local" => {
            if raw.if_index.is_some()
                || raw.community.is_some()
                || raw.version.is_some()
                || has_v3_keys
            {
                p.push(Problem::new(
                    k("source"),
                    "local links take no if_index, version, community or SNMP v3 settings",
                ));
            }
            if !valid_ifname(address) {
                p.push(Problem::new(
                    key.replace(".link", ".address"),
                    format!("`{address}` is not an interface name"),
                ));
            }
            LinkSource::Local
        }
        other => {
            p.push(Problem::new(
                k("source"),
                format!("`{other}` is not one of snmp, local"),
            ));
            LinkSource::Local
        }
    };
    (p.len() == before).then_some(LinkSpec {
        source,
        contracted_bps,
    })
}

/// The v3 half of [`validate_link`]: authPriv only, every key checked.
fn validate_v3(k: &dyn Fn(&str) -> String, raw: &RawLink, p: &mut Vec<Problem>) -> SnmpAuth {
    use crate::probe::usm::{AuthProtocol, PrivProtocol};
    let user = match raw.user.as_deref() {
        Some(u) if !u.is_empty() && u.len() <= 32 && u.chars().all(|c| c.is_ascii_graphic()) => {
            u.to_string()
        }
        Some(u) => {
            p.push(Problem::new(
                k("user"),
                format!("`{u}` is not a USM user name (1-32 printable ASCII characters)"),
            ));
            String::new()
        }
        None => {
            p.push(Problem::new(
                k("user"),
                "SNMP v3 needs the USM user name the router was configured with",
            ));
            String::new()
        }
    };
    let auth_protocol = match raw.auth_protocol.as_deref() {
        Some("sha") => AuthProtocol::Sha1,
        Some("sha256") => AuthProtocol::Sha256,
        Some(other) => {
            p.push(Problem::new(
                k("auth_protocol"),
                format!(
                    "`{other}` is not supported; allowed: sha, sha256 (MD5 is broken and not offered)"
                ),
            ));
            AuthProtocol::Sha1
        }
        None => {
            p.push(Problem::new(
                k("auth_protocol"),
                "SNMP v3 runs authPriv only: set auth_protocol (sha or sha256)",
            ));
            AuthProtocol::Sha1
        }
    };
    let priv_protocol = match raw.priv_protocol.as_deref() {
        Some("aes") => PrivProtocol::Aes128,
        Some(other) => {
            p.push(Problem::new(
                k("priv_protocol"),
                format!(
                    "`{other}` is not supported; allowed: aes (AES-128-CFB; DES is broken and not offered)"
                ),
            ));
            PrivProtocol::Aes128
        }
        None => {
            p.push(Problem::new(
                k("priv_protocol"),
                "SNMP v3 runs authPriv only (no noAuthNoPriv or authNoPriv): set priv_protocol = \"aes\"",
            ));
            PrivProtocol::Aes128
        }
    };
    let auth_password = v3_password(
        k,
        "auth_password",
        raw.auth_password.as_deref(),
        raw.auth_password_file.as_deref(),
        p,
    );
    let priv_password = v3_password(
        k,
        "priv_password",
        raw.priv_password.as_deref(),
        raw.priv_password_file.as_deref(),
        p,
    );
    SnmpAuth::V3(SnmpV3User {
        user,
        auth_protocol,
        auth_password: Secret(auth_password),
        priv_protocol,
        priv_password: Secret(priv_password),
    })
}

/// A v3 password, inline or from the first line of a file (read now, so a
/// missing or unreadable file stops `check` and the start, naming it).
fn v3_password(
    k: &dyn Fn(&str) -> String,
    name: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    p: &mut Vec<Problem>,
) -> String {
    let file_key = format!("{name}_file");
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                k(name),
                format!("set either {name} or {file_key}, not both"),
            ));
            return String::new();
        }
        (None, None) => {
            p.push(Problem::new(
                k(&file_key),
                format!("SNMP v3 runs authPriv only: set {file_key} (or {name})"),
            ));
            return String::new();
        }
        (Some(v), None) => v.to_string(),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(text) => text
                .lines()
                .next()
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_string(),
            Err(e) => {
                p.push(Problem::new(
                    k(&file_key),
                    format!("cannot read {}: {e}", f.display()),
                ));
                return String::new();
            }
        },
    };
    // RFC 3414 11.2: shorter passwords are refused by net-snmp and by most
    // routers, and are guessable from one captured message.
    if value.chars().count() < 8 {
        let (key, what) = match file {
            Some(f) => (k(&file_key), format!("the first line of {}", f.display())),
            None => (k(name), name.to_string()),
        };
        p.push(Problem::new(
            key,
            format!("{what} is shorter than 8 characters, which SNMP v3 does not allow"),
        ));
    }
    value
}

/// A Linux interface name: 1-15 characters, no '/', ':' or whitespace.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

fn parse_server(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    s.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && (h.parse::<std::net::IpAddr>().is_ok()
            || h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

/// Check an address for a probe kind; the error says what form is expected.
pub fn check_address(kind: ProbeKind, a: &str) -> Result<(), String> {
    let ok = match kind {
        ProbeKind::Icmp | ProbeKind::Dns | ProbeKind::Traceroute => valid_host(a),
        ProbeKind::Tcp => split_host_port(a).is_some_and(|(h, _)| valid_host(h)),
        ProbeKind::Http | ProbeKind::Bandwidth => {
            (a.starts_with("http://") || a.starts_with("https://"))
                && reqwest::Url::parse(a).is_ok()
        }
        // Checked with the link's source (router host or interface name).
        ProbeKind::Link => true,
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        ProbeKind::Icmp | ProbeKind::Traceroute => {
            format!("`{a}` is not an IP address or host name")
        }
        ProbeKind::Dns => format!("`{a}` is not a host name to resolve"),
        ProbeKind::Tcp => format!("`{a}` is not host:port (IPv6: [addr]:port)"),
        ProbeKind::Http | ProbeKind::Bandwidth => {
            format!("`{a}` is not an http:// or https:// URL")
        }
        ProbeKind::Link => format!("`{a}` is not a router or interface"),
    })
}

/// Split `host:port` or `[v6]:port`.
pub fn split_host_port(a: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        a.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok()?;
    (port != 0).then_some((host, port))
}

/// One TOML table, as the collector keeps its `[enrol]` targets.
pub use toml::Table as TomlTable;
/// One TOML value (to quote strings written into a configuration).
pub use toml::Value as TomlValue;

/// Render target tables (agent configuration syntax) as a `[[targets]]` TOML
/// fragment, after validating them like a configuration file would. Problems
/// are keyed `targets[N].KEY`. An empty list gives an empty fragment.
pub fn targets_fragment(tables: Vec<TomlTable>) -> Result<String, Vec<Problem>> {
    if tables.is_empty() {
        return Ok(String::new());
    }
    let mut root = TomlTable::new();
    root.insert(
        "targets".into(),
        toml::Value::Array(tables.into_iter().map(toml::Value::Table).collect()),
    );
    let text = toml::to_string(&root).map_err(|e| {
        vec![Problem::new(
            "targets",
            format!("cannot write as TOML: {e}"),
        )]
    })?;
    targets_from_toml(&text)?;
    Ok(text)
}

/// The `[[targets]]` tables of a TOML fragment (agent configuration syntax),
/// validated exactly as in a configuration file with the default interval,
/// timeout and count. Problems name their key as `targets[N].KEY`. Used for
/// the collector's `[enrol]` targets and by `pantau-agent enroll`.
pub fn targets_from_toml(fragment: &str) -> Result<Vec<Target>, Vec<Problem>> {
    #[derive(Deserialize)]
    struct Fragment {
        #[serde(default)]
        targets: Vec<RawTarget>,
    }
    let value: toml::Value = toml::from_str(fragment)
        .map_err(|e| vec![Problem::new("targets", format!("not valid TOML: {e}"))])?;
    let mut unknown = Vec::new();
    let parsed: Result<Fragment, _> = serde_ignored::deserialize(value, |path| {
        unknown.push(confload::key_of(&path));
    });
    let fragment = parsed.map_err(|e| vec![Problem::new("targets", e.to_string())])?;
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|k| Problem::new(k, "unknown key (check the spelling against docs/CONFIG.md)"))
        .collect();
    let raw = RawConfig {
        agent: RawAgent {
            id: Some("enrol-check".into()),
            ..Default::default()
        },
        targets: fragment.targets,
        ..Default::default()
    };
    match raw.validate(String::new()) {
        Ok(c) if problems.is_empty() => Ok(c.targets),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
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
        assert_eq!(c.targets[0].count, 5);
        assert_eq!(c.require_token().unwrap(), "abc");
        assert_eq!(c.collector_url, "http://127.0.0.1:7470");
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
            address = "http://10.10.0.5:7471"
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
        let bw = ok.targets[0].bandwidth.as_ref().unwrap();
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
        let l = ok.targets[1].link.as_ref().unwrap();
        assert_eq!(
            (&l.source, l.contracted_bps),
            (&LinkSource::Local, Some(50_000_000))
        );
    }

    #[test]
    fn snmp_v3_is_authpriv_with_passwords_inline_or_in_files() {
        use crate::probe::usm::{AuthProtocol, PrivProtocol};
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
        let LinkSource::Snmp {
            if_index: 2,
            auth: SnmpAuth::V3(u),
        } = &ok.targets[0].link.as_ref().unwrap().source
        else {
            panic!("{:?}", ok.targets[0].link)
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
        let link = cfg.targets[0].link.as_ref().unwrap();
        assert!(
            matches!(&link.source, LinkSource::Snmp { auth: SnmpAuth::V3(u), .. } if u.priv_password.0 == "example-password"),
            "{link:?}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("16 KiB"), Some(16 << 10));
        assert_eq!(parse_size("5MB"), Some(5_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5XB"), None);
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.0.1:443"), Some(("10.0.0.1", 443)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("example.go.id:0"), None);
        assert_eq!(split_host_port("example.go.id"), None);
        assert!(check_address(ProbeKind::Http, "ftp://x").is_err());
        assert!(check_address(ProbeKind::Icmp, "::1").is_ok());
        assert!(check_address(ProbeKind::Icmp, "bad host!").is_err());
    }
}
