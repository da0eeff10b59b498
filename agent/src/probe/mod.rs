//! Probes: one module per kind, all behind [`Probe`] so the scheduler can be
//! tested with a fake. Every probe returns an [`Observation`], never an error:
//! a failure is a measurement too.

pub mod bandwidth;
pub mod dns;
#[cfg(test)]
pub(crate) mod fuzz;
#[cfg(test)]
mod fuzz_kit;
pub mod http;
pub mod icmp;
pub mod link;
pub mod snmp;
pub mod tcp;
pub mod traceroute;
pub mod usm;

use std::future::Future;
use std::io;
use std::time::SystemTime;

use crate::model::{Measurement, Observation, Outcome};
use pantau_core::probe::{ProbeSpec, Target};

/// Something that can probe a target.
pub trait Probe: Send + Sync + 'static {
    /// Probe `target` once. Must finish within about `target.timeout`.
    fn probe(&self, target: &Target) -> impl Future<Output = Observation> + Send;
}

/// Why the probes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// The HTTP client (HTTP or bandwidth probes) could not be built: TLS
    /// setup failed.
    #[error("cannot build HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// `collector.ca` (trusted for the collector's bandwidth endpoint)
    /// cannot be read.
    #[error("collector.ca {}: {source}", path.display())]
    CollectorCa {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// `collector.ca` holds no usable PEM certificate.
    #[error("collector.ca {}: not a PEM certificate: {source}", path.display())]
    CollectorCaPem {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: reqwest::Error,
    },
}

/// Why a host name gave no address to probe.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The lookup itself failed.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// Cause.
        source: io::Error,
    },
    /// The name exists but has no address.
    #[error("{host} has no address")]
    NoAddress {
        /// The name looked up.
        host: String,
    },
}

/// The real probes.
#[derive(Debug)]
pub struct Prober {
    icmp: icmp::IcmpProber,
    http: http::HttpProber,
    bandwidth: bandwidth::BandwidthProber,
    link: link::LinkProber,
}

impl Prober {
    /// Build the probes. Fails only if the HTTP client cannot be built (TLS
    /// setup); ICMP socket problems surface per probe with a fix in the detail.
    pub fn new() -> Result<Self, ProbeSetupError> {
        Ok(Prober {
            icmp: icmp::IcmpProber::default(),
            http: http::HttpProber::new()?,
            bandwidth: bandwidth::BandwidthProber::new()?,
            link: link::LinkProber::default(),
        })
    }

    /// Give bandwidth tests the collector token, how to trust the
    /// collector's HTTPS port (`collector.ca`, `collector.insecure`) and the
    /// shared limits (minimum gap, monthly budget and where it is kept).
    pub fn configure_bandwidth(
        &mut self,
        token: Option<String>,
        tls: &crate::config::CollectorTls,
        policy: crate::config::BandwidthPolicy,
    ) -> Result<(), ProbeSetupError> {
        self.bandwidth.configure(token, tls, policy)
    }

    /// Check that ICMP sockets can be opened; the error carries the fix.
    pub fn icmp_preflight(&self) -> Result<(), icmp::IcmpError> {
        self.icmp.preflight()
    }
}

impl Probe for Prober {
    async fn probe(&self, target: &Target) -> Observation {
        let started = SystemTime::now();
        let mut obs = match &target.spec {
            ProbeSpec::Icmp(spec) => self.icmp.probe(target, spec).await,
            ProbeSpec::Tcp(_) => tcp::probe(target).await,
            ProbeSpec::Http(spec) => self.http.probe(target, spec).await,
            ProbeSpec::Dns(spec) => dns::probe(target, spec).await,
            ProbeSpec::Bandwidth(spec) => self.bandwidth.probe(target, spec).await,
            ProbeSpec::Link(spec) => self.link.probe(target, spec).await,
            ProbeSpec::Traceroute(_) => traceroute::probe(target).await,
        };
        obs.observed_at = started;
        obs.target_id.clone_from(&target.id);
        obs
    }
}

/// Microseconds, saturating: the wire's unit for durations. Here rather than
/// in `wire` because each probe converts its own measurement, and `wire`
/// calls the probes, not the other way round.
pub(crate) fn us(d: std::time::Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// A wire timestamp.
pub(crate) fn ts(t: SystemTime) -> prost_types::Timestamp {
    pantau_proto::timestamp_from_millis(crate::model::unix_ms(t))
}

/// An observation that failed before measuring anything; `detail` is a
/// message or an error, kept as its text.
pub(crate) fn failed(
    outcome: Outcome,
    detail: impl std::fmt::Display,
    m: Measurement,
) -> Observation {
    let mut detail = detail.to_string();
    truncate(&mut detail, 512);
    Observation {
        target_id: String::new(),
        observed_at: SystemTime::now(),
        outcome,
        detail,
        measurement: m,
    }
}

/// A successful observation.
pub(crate) fn ok(m: Measurement) -> Observation {
    Observation {
        target_id: String::new(),
        observed_at: SystemTime::now(),
        outcome: Outcome::Ok,
        detail: String::new(),
        measurement: m,
    }
}

/// Cut a string to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Classify a socket error.
pub(crate) fn io_outcome(e: &io::Error) -> Outcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Outcome::Refused,
        io::ErrorKind::TimedOut => Outcome::Timeout,
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::NetworkDown => Outcome::Unreachable,
        _ => match e.raw_os_error() {
            // EHOSTUNREACH, ENETUNREACH, ENETDOWN on Linux.
            Some(113) | Some(101) | Some(100) => Outcome::Unreachable,
            _ => Outcome::Other,
        },
    }
}

/// Resolve a host name or IP literal to one address, preferring IPv4.
pub(crate) async fn resolve_one(
    host: &str,
    port: u16,
) -> Result<std::net::SocketAddr, ResolveError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ResolveError::Lookup {
            host: host.to_string(),
            source,
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ResolveError::NoAddress {
            host: host.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "gangguanñ".to_string();
        truncate(&mut s, 9);
        assert_eq!(s, "gangguan");
    }

    #[test]
    fn io_errors_are_classified() {
        assert_eq!(
            io_outcome(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            Outcome::Refused
        );
        assert_eq!(
            io_outcome(&io::Error::from_raw_os_error(113)),
            Outcome::Unreachable
        );
        assert_eq!(
            io_outcome(&io::Error::from(io::ErrorKind::InvalidData)),
            Outcome::Other
        );
    }
}
