//! `kind = "dns"`: resolve the address at `server` (default: the system
//! resolver), asking for `record` A or AAAA.

use std::net::{IpAddr, SocketAddr};

use serde::de::MapAccess;

use super::{BadAddress, KindConfig, KindKeys, TargetContext, valid_host};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// The dns keys of a target.
#[derive(Debug, Clone, Default)]
pub struct DnsKeys {
    /// Resolver `ip:port` (default: first nameserver in /etc/resolv.conf).
    pub server: Option<String>,
    /// Record type, A or AAAA.
    pub record: Option<String>,
}

impl KindKeys for DnsKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "server" => self.server = map.next_value()?,
            "record" => self.record = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        (self.server.is_some() || self.record.is_some()).then_some(("server", "server and record"))
    }
}

/// A validated dns target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DnsSpec {
    /// The resolver; `None` means the system's.
    pub server: Option<SocketAddr>,
    /// Ask for AAAA rather than A.
    pub aaaa: bool,
}

fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

impl KindConfig for DnsSpec {
    const KIND: ProbeKind = ProbeKind::Dns;
    type Keys = DnsKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_host(a), a, "a host name to resolve")
    }

    fn validate(keys: DnsKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let before = p.len();
        let server = match &keys.server {
            None => None,
            Some(s) => match parse_server(s) {
                Some(a) => Some(a),
                None => {
                    p.push(Problem::new(
                        cx.key("server"),
                        format!("`{s}` is not an ip or ip:port"),
                    ));
                    None
                }
            },
        };
        let aaaa = match keys.record.as_deref() {
            None | Some("A") | Some("a") => false,
            Some("AAAA") | Some("aaaa") => true,
            Some(other) => {
                p.push(Problem::new(
                    cx.key("record"),
                    format!("`{other}` is not supported; allowed: A, AAAA"),
                ));
                false
            }
        };
        (p.len() == before).then_some(DnsSpec { server, aaaa })
    }
}
