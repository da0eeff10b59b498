//! ICMP echo probe (surge-ping). One round sends `count` echoes spaced out
//! within the timeout and reports loss and RTT statistics.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

use super::{failed, io_outcome, ok, resolve_one};
use crate::config::Target;
use crate::model::{Measurement, Observation, Outcome, PingStats};
use crate::stats::ping_stats;

/// Plain-words fix shown when the ICMP socket cannot be opened.
pub const PERMISSION_HINT: &str = "ICMP needs permission to open a ping socket. Fix one of: \
run `setcap cap_net_raw+ep $(command -v pantau-agent)`; or add AmbientCapabilities=CAP_NET_RAW \
to the systemd unit; or allow ping sockets with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`. \
Other probes keep running.";

/// Lazily opened ICMP clients, one per address family, shared by all targets.
#[derive(Default)]
pub struct IcmpProber {
    // Arc, not Client::clone: dropping any Client clone marks the shared
    // reply map destroyed in surge-ping 0.8.
    v4: OnceLock<Result<Arc<Client>, String>>,
    v6: OnceLock<Result<Arc<Client>, String>>,
}

impl std::fmt::Debug for IcmpProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpProber").finish_non_exhaustive()
    }
}

fn open(kind: ICMP) -> Result<Arc<Client>, String> {
    Client::new(&Config::builder().kind(kind).build())
        .map(Arc::new)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!("cannot open ICMP socket ({e}). {PERMISSION_HINT}")
            } else {
                format!("cannot open ICMP socket: {e}")
            }
        })
}

impl IcmpProber {
    /// Open the IPv4 socket now, so a missing permission is reported at
    /// start-up rather than at the first probe.
    pub fn preflight(&self) -> Result<(), String> {
        self.client(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            .map(|_| ())
    }

    fn client(&self, ip: IpAddr) -> Result<Arc<Client>, String> {
        let cell = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        cell.get_or_init(|| open(if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 }))
            .clone()
    }

    /// Run one round against the target.
    pub async fn probe(&self, t: &Target) -> Observation {
        let none = |sent| {
            Measurement::Ping(PingStats {
                sent,
                ..PingStats::default()
            })
        };
        let ip = match resolve_one(&t.address, 0).await {
            Ok(a) => a.ip(),
            Err(e) => return failed(Outcome::DnsError, e, none(0)),
        };
        let client = match self.client(ip) {
            Ok(c) => c,
            Err(e) => return failed(Outcome::Other, e, none(0)),
        };
        let round = echo_round(&client, ip, t.count, t.timeout).await;
        let stats = ping_stats(t.count, round.samples);
        if stats.received > 0 {
            ok(Measurement::Ping(stats))
        } else if let Some((outcome, detail)) = round.error {
            failed(outcome, detail, Measurement::Ping(stats))
        } else {
            failed(
                Outcome::Timeout,
                format!("no echo reply from {ip} ({} sent)", t.count),
                Measurement::Ping(stats),
            )
        }
    }
}

struct Round {
    samples: Vec<Duration>,
    error: Option<(Outcome, String)>,
}

/// Send `count` echoes, spaced evenly over the first half of `timeout`, each
/// waiting at most until the round's deadline.
async fn echo_round(client: &Arc<Client>, ip: IpAddr, count: u32, timeout: Duration) -> Round {
    let spacing = (timeout / 2 / count.max(1)).min(Duration::from_millis(200));
    let deadline = Instant::now() + timeout;
    let ident = PingIdentifier(rand::random());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = Arc::clone(client);
        set.spawn(async move {
            tokio::time::sleep(spacing * i).await;
            let mut pinger = client.pinger(ip, ident).await;
            pinger.timeout(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            );
            (i, pinger.ping(PingSequence(i as u16), &[0x50; 32]).await)
        });
    }
    let mut replies = Vec::new();
    let mut error = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok((_packet, rtt)))) => replies.push((i, rtt)),
            Ok((_, Err(SurgeError::Timeout { .. }))) => {}
            Ok((_, Err(SurgeError::IOError(e)))) => {
                error = Some((io_outcome(&e), format!("echo to {ip}: {e}")));
            }
            Ok((_, Err(e))) => error = Some((Outcome::Other, format!("echo to {ip}: {e}"))),
            Err(e) => error = Some((Outcome::Other, format!("echo task failed: {e}"))),
        }
    }
    replies.sort_by_key(|(i, _)| *i);
    Round {
        samples: replies.into_iter().map(|(_, d)| d).collect(),
        error,
    }
}
