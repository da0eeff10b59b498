//! `kind = "link"`: utilisation of a link from its interface counters, read
//! by SNMP (v2c, or v3 authPriv only) from a router or locally from
//! /proc/net/dev, set up in `[targets.link]`.

/// The `direction` label of each rate a link result carries, in the one
/// vocabulary of every Pantau metric: seen from the office, octets into its
/// uplink interface (ifInOctets) are downloads, octets out are uploads.
pub const RATE_KEYS: [(&str, &str); 2] = [("download", "in_bps"), ("upload", "out_bps")];

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::MapAccess;

use super::{
    BadAddress, KindConfig, KindKeys, TargetContext, split_host_port, valid_host, valid_ifname,
};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// `[targets.link]` (its name appears in type errors, so it stays).
#[derive(Debug, Clone, Deserialize, Default)]
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

/// The link keys of a target.
#[derive(Debug, Clone, Default)]
pub struct LinkKeys {
    /// `[targets.link]`.
    pub table: Option<RawLink>,
}

impl KindKeys for LinkKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "link" => self.table = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        self.table.is_some().then_some(("link", "[targets.link]"))
    }
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

/// SNMP v3 authentication protocol of a USM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// usmHMACSHAAuthProtocol: HMAC-SHA-1 truncated to 96 bits ("sha").
    Sha1,
    /// usmHMAC192SHA256AuthProtocol: HMAC-SHA-256 truncated to 192 bits ("sha256").
    Sha256,
}

/// SNMP v3 privacy protocol of a USM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    /// usmAesCfb128Protocol ("aes").
    Aes128,
}

/// An SNMP v3 USM user (always authPriv), passwords already read.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmpV3User {
    /// User name.
    pub user: String,
    /// Authentication protocol.
    pub auth_protocol: AuthProtocol,
    /// Authentication password.
    pub auth_password: Secret,
    /// Privacy protocol.
    pub priv_protocol: PrivProtocol,
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

impl KindConfig for LinkSpec {
    const KIND: ProbeKind = ProbeKind::Link;
    type Keys = LinkKeys;

    /// Checked in [`LinkSpec::validate`] with the source: a router host or
    /// an interface name.
    fn check_address(_: &str) -> Result<(), BadAddress> {
        Ok(())
    }

    fn validate(keys: LinkKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let raw = keys.table.unwrap_or_default();
        let before = p.len();
        let k = |s: &str| cx.key(&format!("link.{s}"));
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
        let source = match raw.source.as_deref().unwrap_or("snmp") {
            "snmp" => snmp_source(&k, cx, &raw, p),
            "local" => {
                if raw.if_index.is_some()
                    || raw.community.is_some()
                    || raw.version.is_some()
                    || has_v3_keys(&raw)
                {
                    p.push(Problem::new(
                        k("source"),
                        "local links take no if_index, version, community or SNMP v3 settings",
                    ));
                }
                if !valid_ifname(cx.address) {
                    p.push(Problem::new(
                        cx.key("address"),
                        format!("`{}` is not an interface name", cx.address),
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
}

fn has_v3_keys(raw: &RawLink) -> bool {
    raw.user.is_some()
        || raw.auth_protocol.is_some()
        || raw.auth_password.is_some()
        || raw.auth_password_file.is_some()
        || raw.priv_protocol.is_some()
        || raw.priv_password.is_some()
        || raw.priv_password_file.is_some()
}

/// `source = "snmp"`: version and credentials, the router's address, ifIndex.
fn snmp_source(
    k: &dyn Fn(&str) -> String,
    cx: &TargetContext<'_>,
    raw: &RawLink,
    p: &mut Vec<Problem>,
) -> LinkSource {
    let auth = match raw.version.as_deref().unwrap_or("2c") {
        "2c" => {
            if has_v3_keys(raw) {
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
            validate_v3(k, raw, p)
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
    let address = cx.address;
    if split_host_port(address).is_none_or(|(h, _)| !valid_host(h)) && !valid_host(address) {
        p.push(Problem::new(
            cx.key("address"),
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

/// The v3 half of the SNMP source: authPriv only, every key checked.
fn validate_v3(k: &dyn Fn(&str) -> String, raw: &RawLink, p: &mut Vec<Problem>) -> SnmpAuth {
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
