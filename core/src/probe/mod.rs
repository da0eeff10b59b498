//! Probe kinds as configured: the `[[targets]]` envelope every kind shares
//! (id, group, kind, label, address, interval, timeout) and one module per
//! kind that owns its raw keys, their defaults and their validation into a
//! typed spec. The agent runs a [`ProbeSpec`] (`agent/src/probe/<kind>.rs`);
//! the collector checks the targets it hands to agents with the same rules.
//!
//! The TOML stays flat (`count = 3` beside `kind = "icmp"`, `[targets.link]`
//! inside the target): [`RawTarget`] reads the envelope keys itself and offers
//! every other key to each kind's [`KindKeys`], so a misspelt key is still an
//! unknown key and a key of another kind is named as such.
//!
//! Adding a kind: a module here with its keys and spec (implementing
//! [`KindConfig`]), a [`ProbeKind`] and a [`ProbeSpec`] variant, a field of
//! [`RawSettings`]; the compiler lists the `match` arms left to fill.

pub mod bandwidth;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod limits;
pub mod link;
pub mod tcp;
pub mod traceroute;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::confload::{self, Problem};
use crate::id::{InvalidId, TargetId, valid_id};
use crate::kind::{Group, ProbeKind};

pub use bandwidth::{BandwidthSpec, Direction, RawBandwidthTest};
pub use dns::DnsSpec;
pub use http::HttpSpec;
pub use icmp::IcmpSpec;
pub use link::SnmpV3User;
pub use link::{AuthProtocol, LinkSource, LinkSpec, PrivProtocol, RawLink, Secret, SnmpAuth};
pub use tcp::TcpSpec;
pub use traceroute::TracerouteSpec;

/// One TOML table, as the collector keeps its `[enrol]` targets.
pub use toml::Table as TomlTable;
/// One TOML value (to quote strings written into a configuration).
pub use toml::Value as TomlValue;

/// Shortest probe interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest probe interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Shortest probe timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest probe timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// `[[targets]]` as written: the envelope, and the keys of each kind.
#[derive(Debug, Clone, Default)]
pub struct RawTarget {
    /// Unique id within this agent.
    pub id: Option<String>,
    /// internet, intranet, datacenter, jip or app.
    pub group: Option<String>,
    /// icmp, tcp, http, dns, bandwidth, link or traceroute.
    pub kind: Option<String>,
    /// IP or host (icmp, traceroute), host:port (tcp), URL (http, bandwidth),
    /// name to resolve (dns), router or interface (link).
    pub address: Option<String>,
    /// Human label for reports.
    pub label: Option<String>,
    /// Overrides `defaults.interval`.
    pub interval: Option<String>,
    /// Overrides `defaults.timeout`.
    pub timeout: Option<String>,
    /// The keys that belong to one kind (`count`, `[targets.link]`, ...).
    pub settings: RawSettings,
}

/// The keys of every kind as written in one target; only the target's own
/// kind may have any set.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    /// `count`.
    pub icmp: <IcmpSpec as KindConfig>::Keys,
    /// None.
    pub tcp: <TcpSpec as KindConfig>::Keys,
    /// `expect_status`.
    pub http: <HttpSpec as KindConfig>::Keys,
    /// `server`, `record`.
    pub dns: <DnsSpec as KindConfig>::Keys,
    /// `[targets.bandwidth]`.
    pub bandwidth: <BandwidthSpec as KindConfig>::Keys,
    /// `[targets.link]`.
    pub link: <LinkSpec as KindConfig>::Keys,
    /// None.
    pub traceroute: <TracerouteSpec as KindConfig>::Keys,
}

impl RawSettings {
    /// Offer `key` to each kind; true when one took it.
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        Ok(self.icmp.take(key, map)?
            || self.tcp.take(key, map)?
            || self.http.take(key, map)?
            || self.dns.take(key, map)?
            || self.bandwidth.take(key, map)?
            || self.link.take(key, map)?
            || self.traceroute.take(key, map)?)
    }

    /// For each kind (in [`ProbeKind::ALL`] order) the key to name if any of
    /// its keys is set, and what it takes.
    /// The length follows [`ProbeKind::ALL`], so a new kind must be listed.
    fn set_keys(
        &self,
    ) -> [(ProbeKind, Option<(&'static str, &'static str)>); ProbeKind::ALL.len()] {
        [
            (IcmpSpec::KIND, self.icmp.set_key()),
            (TcpSpec::KIND, self.tcp.set_key()),
            (HttpSpec::KIND, self.http.set_key()),
            (DnsSpec::KIND, self.dns.set_key()),
            (BandwidthSpec::KIND, self.bandwidth.set_key()),
            (LinkSpec::KIND, self.link.set_key()),
            (TracerouteSpec::KIND, self.traceroute.set_key()),
        ]
    }

    /// Validate the keys of `kind` into its spec.
    fn validate(
        self,
        kind: ProbeKind,
        cx: &TargetContext<'_>,
        p: &mut Vec<Problem>,
    ) -> Option<ProbeSpec> {
        Some(match kind {
            ProbeKind::Icmp => ProbeSpec::Icmp(IcmpSpec::validate(self.icmp, cx, p)?),
            ProbeKind::Tcp => ProbeSpec::Tcp(TcpSpec::validate(self.tcp, cx, p)?),
            ProbeKind::Http => ProbeSpec::Http(HttpSpec::validate(self.http, cx, p)?),
            ProbeKind::Dns => ProbeSpec::Dns(DnsSpec::validate(self.dns, cx, p)?),
            ProbeKind::Bandwidth => {
                ProbeSpec::Bandwidth(BandwidthSpec::validate(self.bandwidth, cx, p)?)
            }
            ProbeKind::Link => ProbeSpec::Link(LinkSpec::validate(self.link, cx, p)?),
            ProbeKind::Traceroute => {
                ProbeSpec::Traceroute(TracerouteSpec::validate(self.traceroute, cx, p)?)
            }
        })
    }
}

/// What a probe kind declares about its configuration; implemented by its spec.
pub trait KindConfig: Sized {
    /// The kind.
    const KIND: ProbeKind;
    /// The kind's own keys in a `[[targets]]` table, as written.
    type Keys: KindKeys;
    /// Check the target's address; the error says what form is expected.
    fn check_address(address: &str) -> Result<(), BadAddress>;
    /// Validate the kind's keys into its spec, pushing every problem found.
    fn validate(keys: Self::Keys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self>;
}

/// The raw keys one kind adds to a `[[targets]]` table.
pub trait KindKeys: fmt::Debug + Clone + Default {
    /// If `key` is one of this kind's, read its value from `map` and say so.
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
    /// When any key is set: the key to name in a problem and what the kind
    /// takes, as in "only link targets take [targets.link]".
    fn set_key(&self) -> Option<(&'static str, &'static str)>;
}

/// The keys of a kind that has none of its own (tcp, traceroute).
#[derive(Debug, Clone, Default)]
pub struct NoKeys;

impl KindKeys for NoKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, _: &str, _: &mut A) -> Result<bool, A::Error> {
        Ok(false)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        None
    }
}

/// What a kind's validation knows about its target.
#[derive(Debug)]
pub struct TargetContext<'a> {
    /// Position in the targets list, for problem keys.
    pub index: usize,
    /// The target's address as configured.
    pub address: &'a str,
    /// `[defaults]`.
    pub defaults: &'a Defaults,
}

impl TargetContext<'_> {
    /// The problem key of `k` in this target: `targets[N].k`.
    pub fn key(&self, k: &str) -> String {
        format!("targets[{}].{k}", self.index)
    }
}

/// `[defaults]`, validated: applied to every target that does not set its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Probe interval.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// ICMP echoes per round.
    pub icmp_count: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            icmp_count: 5,
        }
    }
}

/// What a target probes, by kind, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// ICMP echo.
    Icmp(IcmpSpec),
    /// TCP connect.
    Tcp(TcpSpec),
    /// HTTP(S) request.
    Http(HttpSpec),
    /// DNS resolution.
    Dns(DnsSpec),
    /// Throughput test.
    Bandwidth(BandwidthSpec),
    /// Link utilisation.
    Link(LinkSpec),
    /// Path discovery.
    Traceroute(TracerouteSpec),
}

impl ProbeSpec {
    /// The kind of probe.
    pub fn kind(&self) -> ProbeKind {
        match self {
            ProbeSpec::Icmp(_) => IcmpSpec::KIND,
            ProbeSpec::Tcp(_) => TcpSpec::KIND,
            ProbeSpec::Http(_) => HttpSpec::KIND,
            ProbeSpec::Dns(_) => DnsSpec::KIND,
            ProbeSpec::Bandwidth(_) => BandwidthSpec::KIND,
            ProbeSpec::Link(_) => LinkSpec::KIND,
            ProbeSpec::Traceroute(_) => TracerouteSpec::KIND,
        }
    }
}

/// One validated target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Unique id.
    pub id: String,
    /// Group.
    pub group: Group,
    /// Address as configured.
    pub address: String,
    /// Label (may be empty).
    pub label: String,
    /// Interval.
    pub interval: Duration,
    /// Timeout.
    pub timeout: Duration,
    /// What to probe, by kind.
    pub spec: ProbeSpec,
}

impl Target {
    /// The kind of probe.
    pub fn kind(&self) -> ProbeKind {
        self.spec.kind()
    }
}

/// An address that does not have the form its kind needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{address}` is not {expected}")]
pub struct BadAddress {
    /// The address as configured.
    pub address: String,
    /// The form expected, e.g. "an IP address or host name".
    pub expected: &'static str,
}

impl BadAddress {
    fn unless(ok: bool, address: &str, expected: &'static str) -> Result<(), BadAddress> {
        if ok {
            Ok(())
        } else {
            Err(BadAddress {
                address: address.to_string(),
                expected,
            })
        }
    }
}

/// Check an address for a probe kind; the error says what form is expected.
pub fn check_address(kind: ProbeKind, a: &str) -> Result<(), BadAddress> {
    match kind {
        ProbeKind::Icmp => IcmpSpec::check_address(a),
        ProbeKind::Tcp => TcpSpec::check_address(a),
        ProbeKind::Http => HttpSpec::check_address(a),
        ProbeKind::Dns => DnsSpec::check_address(a),
        ProbeKind::Bandwidth => BandwidthSpec::check_address(a),
        ProbeKind::Link => LinkSpec::check_address(a),
        ProbeKind::Traceroute => TracerouteSpec::check_address(a),
    }
}

/// An IP address or a DNS host name.
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && (h.parse::<std::net::IpAddr>().is_ok()
            || h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

/// An `http://` or `https://` URL that parses.
pub fn valid_http_url(a: &str) -> bool {
    (a.starts_with("http://") || a.starts_with("https://")) && url::Url::parse(a).is_ok()
}

/// A Linux interface name: 1-15 characters, no '/', ':' or whitespace.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
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

/// The envelope keys, read by [`RawTarget`] itself.
const ENVELOPE_KEYS: &[&str] = &[
    "id", "group", "kind", "address", "label", "interval", "timeout",
];

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RawTarget;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct RawTarget")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTarget, A::Error> {
                let mut t = RawTarget::default();
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "id" => &mut t.id,
                        "group" => &mut t.group,
                        "kind" => &mut t.kind,
                        "address" => &mut t.address,
                        "label" => &mut t.label,
                        "interval" => &mut t.interval,
                        "timeout" => &mut t.timeout,
                        other => {
                            if !t.settings.take(other, &mut map)? {
                                // Through IgnoredAny, so the loader reports it
                                // as an unknown key with its path.
                                map.next_value::<IgnoredAny>()?;
                            }
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(t)
            }
        }
        d.deserialize_struct("RawTarget", ENVELOPE_KEYS, Fields)
    }
}

/// Validate every target, collecting all problems; ids must be unique.
pub fn validate_targets(
    raw: Vec<RawTarget>,
    defaults: &Defaults,
    p: &mut Vec<Problem>,
) -> Vec<Target> {
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, t)| validate_target(i, t, defaults, &mut seen, p))
        .collect()
}

/// The message for an id that breaks the rule.
fn invalid_id(id: &str) -> String {
    InvalidId {
        what: TargetId::WHAT,
        value: id.to_string(),
    }
    .to_string()
}

/// The envelope first (id, group, kind, address, keys of other kinds,
/// interval, timeout), then the kind's own keys.
fn validate_target(
    i: usize,
    t: RawTarget,
    d: &Defaults,
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
            let allowed: Vec<&str> = ProbeKind::ALL.iter().map(|k| k.as_str()).collect();
            p.push(Problem::new(
                key("kind"),
                format!(
                    "`{}` is not a probe kind; allowed: {}",
                    t.kind.clone().unwrap_or_default(),
                    allowed.join(", ")
                ),
            ));
            None
        }
    };
    let address = t.address.unwrap_or_default();
    if let Some(kind) = kind {
        if let Err(e) = check_address(kind, &address) {
            p.push(Problem::new(key("address"), e.to_string()));
        }
        for (owner, set) in t.settings.set_keys() {
            if let Some((k, what)) = set.filter(|_| owner != kind) {
                p.push(Problem::new(
                    key(k),
                    format!("only {owner} targets take {what}"),
                ));
            }
        }
    }
    let interval = match &t.interval {
        Some(s) => confload::duration(&key("interval"), s, MIN_INTERVAL, MAX_INTERVAL, p),
        None => Some(d.interval),
    };
    let timeout = match &t.timeout {
        Some(s) => confload::duration(&key("timeout"), s, MIN_TIMEOUT, MAX_TIMEOUT, p),
        None => Some(d.timeout),
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
    let cx = TargetContext {
        index: i,
        address: &address,
        defaults: d,
    };
    let spec = kind.and_then(|k| t.settings.validate(k, &cx, p));
    if p.len() > before {
        return None;
    }
    Some(Target {
        id,
        group: group?,
        address,
        label: t.label.unwrap_or_default(),
        interval: interval?,
        timeout: timeout?,
        spec: spec?,
    })
}

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
        TomlValue::Array(tables.into_iter().map(TomlValue::Table).collect()),
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
    let (raw, mut problems) = raw_targets_from_toml(fragment)?;
    let targets = validate_targets(raw, &Defaults::default(), &mut problems);
    if problems.is_empty() {
        Ok(targets)
    } else {
        Err(problems)
    }
}

/// The `[[targets]]` tables of a TOML fragment before validation, with a
/// problem for every unknown key (the agent validates central targets with
/// its own defaults and file checks).
pub fn raw_targets_from_toml(
    fragment: &str,
) -> Result<(Vec<RawTarget>, Vec<Problem>), Vec<Problem>> {
    #[derive(serde::Deserialize)]
    struct Fragment {
        #[serde(default)]
        targets: Vec<RawTarget>,
    }
    let value: TomlValue = toml::from_str(fragment)
        .map_err(|e| vec![Problem::new("targets", format!("not valid TOML: {e}"))])?;
    let mut unknown = Vec::new();
    let parsed: Result<Fragment, _> = serde_ignored::deserialize(value, |path| {
        unknown.push(confload::key_of(&path));
    });
    let fragment = parsed.map_err(|e| vec![Problem::new("targets", e.to_string())])?;
    let problems: Vec<Problem> = unknown
        .into_iter()
        .map(|k| Problem::new(k, "unknown key (check the spelling against docs/CONFIG.md)"))
        .collect();
    Ok((fragment.targets, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_declaration_order() {
        // Problems for keys of another kind come out in this order.
        let listed: Vec<ProbeKind> = RawSettings::default()
            .set_keys()
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(listed, ProbeKind::ALL);
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
        assert_eq!(
            check_address(ProbeKind::Tcp, "10.0.0.1")
                .unwrap_err()
                .to_string(),
            "`10.0.0.1` is not host:port (IPv6: [addr]:port)"
        );
    }

    fn problems(fragment: &str) -> Vec<(String, String)> {
        targets_from_toml(fragment)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    #[test]
    fn each_kind_takes_its_own_keys_from_the_flat_table() {
        let targets = targets_from_toml(
            "[[targets]]\nid = \"i\"\ngroup = \"app\"\nkind = \"icmp\"\naddress = \"10.0.0.1\"\ncount = 3\n\
             [[targets]]\nid = \"d\"\ngroup = \"app\"\nkind = \"dns\"\naddress = \"go.id\"\nserver = \"10.0.0.53\"\nrecord = \"AAAA\"\n\
             [[targets]]\nid = \"t\"\ngroup = \"app\"\nkind = \"traceroute\"\naddress = \"10.0.0.1\"\n",
        )
        .unwrap();
        let specs: Vec<&ProbeSpec> = targets.iter().map(|t| &t.spec).collect();
        assert_eq!(
            specs,
            [
                &ProbeSpec::Icmp(IcmpSpec { count: 3 }),
                &ProbeSpec::Dns(DnsSpec {
                    server: Some("10.0.0.53:53".parse().unwrap()),
                    aaaa: true
                }),
                &ProbeSpec::Traceroute(TracerouteSpec),
            ]
        );
        assert_eq!(targets[2].kind(), ProbeKind::Traceroute);
    }

    #[test]
    fn keys_of_another_kind_and_unknown_keys_are_named() {
        let got = problems(
            "[[targets]]\nid = \"t\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"10.0.0.1:80\"\n\
             count = 3\nexpect_status = [200]\nrecord = \"A\"\ncolour = 1\n[targets.link]\nsource = \"local\"\n",
        );
        assert_eq!(
            got,
            [
                (
                    "targets[0].colour".to_string(),
                    "unknown key (check the spelling against docs/CONFIG.md)".to_string()
                ),
                (
                    "targets[0].count".to_string(),
                    "only icmp targets take count".to_string()
                ),
                (
                    "targets[0].expect_status".to_string(),
                    "only http targets take expect_status".to_string()
                ),
                (
                    "targets[0].server".to_string(),
                    "only dns targets take server and record".to_string()
                ),
                (
                    "targets[0].link".to_string(),
                    "only link targets take [targets.link]".to_string()
                ),
            ]
        );
        let kind =
            problems("[[targets]]\nid = \"t\"\ngroup = \"app\"\nkind = \"ftp\"\naddress = \"x\"\n");
        assert_eq!(
            kind[0].1,
            "`ftp` is not a probe kind; allowed: icmp, tcp, http, dns, bandwidth, link, traceroute"
        );
    }
}
