//! ICMP echo probe. One round sends `count` echoes spaced out within the
//! timeout and reports loss and RTT statistics.
//!
//! Each reply is stamped by the kernel as it arrives (SO_TIMESTAMPNS), not
//! when the async runtime gets round to reading it: the accuracy tests
//! (tests/tests/accuracy.rs, docs/ACCURACY.md) saw user-space stamps
//! (surge-ping) drift past the 1 ms bar at 300 ms RTT on a busy machine. The
//! send time is read right before `sendto` from the same clock
//! (CLOCK_REALTIME), so RTT = kernel receive stamp - send stamp. Sockets come
//! from `nix`, whose safe wrappers keep this crate free of `unsafe`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrStorage, recvmsg, sendto, setsockopt, socket, sockopt,
};
use tokio::io::unix::AsyncFd;

use super::us;
use super::{failed, io_outcome, ok, resolve_one};
use crate::model::{Measurement, Observation, Outcome, PingStats};
use crate::stats::ping_stats;
use pantau_core::probe::{IcmpSpec, Target};
use pantau_proto::v1 as pb;

/// Plain-words fix shown when the ICMP socket cannot be opened.
pub const PERMISSION_HINT: &str = "ICMP needs permission to open a ping socket. Fix one of: \
run `setcap cap_net_raw+ep $(command -v pantau-agent)`; or add AmbientCapabilities=CAP_NET_RAW \
to the systemd unit; or allow ping sockets with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`. \
Other probes keep running.";

/// Why an ICMP socket could not be opened. The messages are what `check`
/// shows and what a failed probe carries as its detail.
#[derive(Debug, thiserror::Error)]
pub enum IcmpError {
    /// Neither a raw nor a ping socket is allowed: the fix is in the text.
    #[error("cannot open ICMP socket ({0}). {hint}", hint = PERMISSION_HINT)]
    Permission(Errno),
    /// Another socket error.
    #[error("cannot open ICMP socket: {0}")]
    Open(Errno),
    /// SO_TIMESTAMPNS refused.
    #[error("cannot enable kernel timestamps on the ICMP socket: {0}")]
    Timestamps(Errno),
    /// The socket cannot join the runtime's reactor.
    #[error("cannot register ICMP socket: {0}")]
    Register(#[source] io::Error),
}

/// Echo payload length (bytes after the 8-byte ICMP header).
const PAYLOAD: usize = 32;

/// The ICMP echo prober. Each round opens its own socket, so concurrent
/// rounds never see each other's replies.
#[derive(Debug, Default)]
pub struct IcmpProber {
    _private: (),
}

/// An ICMP socket: raw when the agent has CAP_NET_RAW, otherwise a ping
/// (datagram) socket, with kernel receive timestamps on.
pub(crate) struct EchoSocket {
    fd: AsyncFd<OwnedFd>,
    /// Raw IPv4 sockets hand over the IP header too; raw sockets also see
    /// every ICMP packet of the host, so replies are matched on the ident.
    raw: bool,
    v6: bool,
}

impl EchoSocket {
    /// Open a socket for `ip`'s family. Must run inside a tokio runtime.
    pub(crate) fn open(ip: IpAddr) -> Result<Self, IcmpError> {
        let (fd, raw) = open_fd(ip)?;
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true).map_err(IcmpError::Timestamps)?;
        // `new` is deprecated because a `T` could close or swap its fd while
        // registered; an `OwnedFd` moved into the AsyncFd cannot, and the
        // safe alternative (`register`) is an `unsafe fn`.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd).map_err(IcmpError::Register)?;
        Ok(EchoSocket {
            fd,
            raw,
            v6: ip.is_ipv6(),
        })
    }

    /// Set the TTL (IPv4) or hop limit (IPv6) of outgoing packets.
    pub(crate) fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        let ttl = i32::from(ttl);
        if self.v6 {
            setsockopt(self.fd.get_ref(), sockopt::Ipv6Ttl, &ttl)?;
        } else {
            setsockopt(self.fd.get_ref(), sockopt::Ipv4Ttl, &ttl)?;
        }
        Ok(())
    }

    /// Whether this is an IPv6 socket.
    pub(crate) fn is_v6(&self) -> bool {
        self.v6
    }

    /// Send one echo request; returns the send time.
    pub(crate) fn send(&self, ip: IpAddr, ident: u16, seq: u16) -> io::Result<SystemTime> {
        let pkt = echo_request(self.v6, ident, seq);
        let addr = SockaddrStorage::from(SocketAddr::new(ip, 0));
        let at = SystemTime::now();
        sendto(
            self.fd.get_ref().as_raw_fd(),
            &pkt,
            &addr,
            MsgFlags::empty(),
        )?;
        Ok(at)
    }

    /// Wait for the next ICMP packet; returns its bytes from the ICMP header
    /// on, its source and the kernel's receive stamp.
    pub(crate) async fn recv(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, usize, IpAddr, SystemTime)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_one(fd.get_ref(), buf)) {
                Ok(Ok((n, from, at))) => {
                    if let Some(start) = icmp_start(self.raw && !self.v6, &buf[..n]) {
                        return Ok((start, n, from, at));
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Parse an echo reply: (ident, seq). The ident is only meaningful on raw
    /// sockets (ping sockets rewrite it and demultiplex in the kernel).
    pub(crate) fn echo_reply(&self, icmp: &[u8]) -> Option<(Option<u16>, u16)> {
        parse_echo_reply(self.v6, self.raw, icmp)
    }

    /// Whether replies on this socket carry the ident we sent.
    pub(crate) fn is_raw(&self) -> bool {
        self.raw
    }
}

/// Where the ICMP message starts in received bytes: raw IPv4 sockets hand
/// over the IP header first (IHL words). `None` when no ICMP byte follows.
pub(crate) fn icmp_start(raw_v4: bool, pkt: &[u8]) -> Option<usize> {
    let start = if raw_v4 {
        usize::from(pkt.first().copied().unwrap_or(0) & 0x0f) * 4
    } else {
        0
    };
    (start < pkt.len()).then_some(start)
}

/// Parse an echo reply (from its ICMP header on): (ident, seq), the ident
/// only for raw sockets.
pub(crate) fn parse_echo_reply(v6: bool, raw: bool, icmp: &[u8]) -> Option<(Option<u16>, u16)> {
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type {
        return None;
    }
    let ident = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((raw.then_some(ident), seq))
}

/// Open a raw ICMP socket, or a ping socket without CAP_NET_RAW.
fn open_fd(ip: IpAddr) -> Result<(OwnedFd, bool), IcmpError> {
    let (family, proto) = if ip.is_ipv4() {
        (AddressFamily::Inet, SockProtocol::Icmp)
    } else {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    match socket(family, SockType::Raw, flags, proto) {
        Ok(fd) => Ok((fd, true)),
        Err(Errno::EPERM | Errno::EACCES) => match socket(family, SockType::Datagram, flags, proto)
        {
            Ok(fd) => Ok((fd, false)),
            Err(e @ (Errno::EPERM | Errno::EACCES)) => Err(IcmpError::Permission(e)),
            Err(e) => Err(IcmpError::Open(e)),
        },
        Err(e) => Err(IcmpError::Open(e)),
    }
}

fn recv_one(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, IpAddr, SystemTime)> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg =
        recvmsg::<SockaddrStorage>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let mut at = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                at = Some(
                    UNIX_EPOCH
                        + Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().max(0) as u32),
                );
            }
        }
    }
    let from = msg
        .address
        .and_then(|a: SockaddrStorage| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        })
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    // Without a kernel stamp (never seen on Linux) fall back to now.
    Ok((msg.bytes, from, at.unwrap_or_else(SystemTime::now)))
}

/// An echo request: header, ident, seq, payload; IPv4 checksum filled in
/// (the kernel computes ICMPv6 checksums).
fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..].fill(0x50);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl IcmpProber {
    /// Open an IPv4 socket now, so a missing permission is reported at
    /// start-up rather than at the first probe.
    pub fn preflight(&self) -> Result<(), IcmpError> {
        open_fd(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)).map(|_| ())
    }

    /// Run one round against the target.
    pub async fn probe(&self, t: &Target, spec: &IcmpSpec) -> Observation {
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
        let sock = match EchoSocket::open(ip) {
            Ok(s) => s,
            Err(e) => return failed(Outcome::Other, e, none(0)),
        };
        let round = echo_round(&sock, ip, spec.count, t.timeout).await;
        let stats = ping_stats(round.sent, round.samples);
        if stats.received > 0 {
            ok(Measurement::Ping(stats))
        } else if let Some((outcome, detail)) = round.error {
            failed(outcome, detail, Measurement::Ping(stats))
        } else {
            failed(
                Outcome::Timeout,
                format!("no echo reply from {ip} ({} sent)", spec.count),
                Measurement::Ping(stats),
            )
        }
    }
}

struct Round {
    sent: u32,
    samples: Vec<Duration>,
    error: Option<(Outcome, String)>,
}

/// Send `count` echoes, spaced evenly over the first half of `timeout`, and
/// collect replies until they are all in or the round's deadline passes.
async fn echo_round(sock: &EchoSocket, ip: IpAddr, count: u32, timeout: Duration) -> Round {
    let count = count.min(u32::from(u16::MAX));
    let spacing = (timeout / 2 / count.max(1)).min(Duration::from_millis(200));
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let ident: u16 = rand::random();
    let mut sent_at: Vec<Option<SystemTime>> = vec![None; count as usize];
    let mut rtt: Vec<Option<Duration>> = vec![None; count as usize];
    let mut error = None;
    let mut next = 0u32;
    let mut got = 0u32;
    let mut buf = [0u8; 1500];
    while got < count {
        let send_at = start + spacing * next;
        tokio::select! {
            biased;
            r = sock.recv(&mut buf) => match r {
                Ok((from_off, n, from, at)) => {
                    if from != ip && !(from.is_unspecified()) {
                        continue;
                    }
                    let Some((id, seq)) = sock.echo_reply(&buf[from_off..n]) else { continue };
                    if sock.is_raw() && id != Some(ident) {
                        continue;
                    }
                    let i = usize::from(seq);
                    if let (Some(Some(s)), Some(slot @ None)) = (sent_at.get(i), rtt.get_mut(i)) {
                        *slot = Some(at.duration_since(*s).unwrap_or(Duration::ZERO));
                        got += 1;
                    }
                }
                Err(e) => {
                    error = Some((io_outcome(&e), format!("echo from {ip}: {e}")));
                    break;
                }
            },
            _ = tokio::time::sleep_until(send_at), if next < count => {
                match sock.send(ip, ident, next as u16) {
                    Ok(at) => sent_at[next as usize] = Some(at),
                    Err(e) => error = Some((io_outcome(&e), format!("echo to {ip}: {e}"))),
                }
                next += 1;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Round {
        sent: count,
        samples: rtt.into_iter().flatten().collect(),
        error,
    }
}

/// The wire form of one round.
pub(crate) fn to_wire(p: &PingStats) -> pb::PingMeasurement {
    pb::PingMeasurement {
        sent: p.sent,
        received: p.received,
        rtt_min_us: us(p.min),
        rtt_avg_us: us(p.avg),
        rtt_max_us: us(p.max),
        rtt_stddev_us: us(p.stddev),
        samples_us: p.samples.iter().map(|d| us(*d)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_read_as_before_and_carry_the_fix() {
        assert_eq!(
            IcmpError::Permission(Errno::EPERM).to_string(),
            format!("cannot open ICMP socket (EPERM: Operation not permitted). {PERMISSION_HINT}")
        );
        assert_eq!(
            IcmpError::Open(Errno::EMFILE).to_string(),
            "cannot open ICMP socket: EMFILE: Too many open files"
        );
    }

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(p.len(), 8 + PAYLOAD);
        assert_eq!((p[0], p[4], p[5], p[7]), (8, 0x12, 0x34, 7));
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
    }
}
