//! Traceroute probe: ICMP echo requests with TTL 1, 2, ... sent in one burst
//! (one per TTL, 10 ms apart); routers answer with ICMP time exceeded, the
//! target with an echo reply. The hops up to the first TTL the target
//! answered form the path. Needs a raw ICMP socket (CAP_NET_RAW): ping
//! sockets do not deliver time-exceeded messages as packets.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::icmp::{EchoSocket, PERMISSION_HINT};
use super::us;
use super::{failed, io_outcome, ok, resolve_one};
use crate::model::{Hop, Measurement, Observation, Outcome, PathTrace};
use pantau_core::probe::Target;
use pantau_proto::v1 as pb;

/// Highest TTL tried.
pub const MAX_HOPS: u8 = 30;
/// Gap between probes of successive TTLs, so routers' ICMP rate limits are
/// not hit by a burst.
const SPACING: Duration = Duration::from_millis(10);

/// What an ICMP packet says about one of our probes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// The target answered: echo reply (ident, seq).
    Reached(u16, u16),
    /// A router dropped the probe at TTL 0: time exceeded quoting (ident, seq).
    Expired(u16, u16),
    /// Destination unreachable quoting (ident, seq): the path ends there.
    Unreachable(u16, u16),
}

/// Parse an ICMP message (from its ICMP header on).
pub(super) fn parse(v6: bool, icmp: &[u8]) -> Option<Answer> {
    let id_seq = |b: &[u8]| {
        Some((
            u16::from_be_bytes([*b.get(4)?, *b.get(5)?]),
            u16::from_be_bytes([*b.get(6)?, *b.get(7)?]),
        ))
    };
    let (echo_reply, exceeded, unreachable) = if v6 { (129, 3, 1) } else { (0, 11, 3) };
    let t = *icmp.first()?;
    if t == echo_reply {
        let (i, s) = id_seq(icmp)?;
        return Some(Answer::Reached(i, s));
    }
    if t != exceeded && t != unreachable {
        return None;
    }
    // The error quotes the original IP header, then our echo request header.
    let quoted = icmp.get(8..)?;
    let inner = if v6 {
        quoted.get(40..)?
    } else {
        quoted.get(usize::from(quoted.first()? & 0x0f) * 4..)?
    };
    let request = if v6 { 128 } else { 8 };
    if *inner.first()? != request {
        return None;
    }
    let (i, s) = id_seq(inner)?;
    Some(if t == exceeded {
        Answer::Expired(i, s)
    } else {
        Answer::Unreachable(i, s)
    })
}

/// Trace the path to the target once.
pub async fn probe(t: &Target) -> Observation {
    let none = Measurement::Path(PathTrace::default());
    let ip = match resolve_one(&t.address, 0).await {
        Ok(a) => a.ip(),
        Err(e) => return failed(Outcome::DnsError, e, none),
    };
    let sock = match EchoSocket::open(ip) {
        Ok(s) if s.is_raw() => s,
        Ok(_) => {
            return failed(
                Outcome::Other,
                format!("traceroute needs a raw ICMP socket. {PERMISSION_HINT}"),
                none,
            );
        }
        Err(e) => return failed(Outcome::Other, e, none),
    };
    match trace(&sock, ip, t.timeout).await {
        Ok(path) if path.reached => ok(Measurement::Path(path)),
        Ok(path) => failed(
            Outcome::Timeout,
            format!(
                "{ip} not reached within {} hops",
                path.hops.len().max(usize::from(MAX_HOPS))
            ),
            Measurement::Path(path),
        ),
        Err((outcome, detail, path)) => failed(outcome, detail, Measurement::Path(path)),
    }
}

type TraceError = (Outcome, String, PathTrace);

async fn trace(sock: &EchoSocket, ip: IpAddr, timeout: Duration) -> Result<PathTrace, TraceError> {
    let ident: u16 = rand::random();
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let n = usize::from(MAX_HOPS);
    let mut sent_at: Vec<Option<SystemTime>> = vec![None; n + 1];
    let mut hops: Vec<Hop> = (1..=MAX_HOPS)
        .map(|ttl| Hop {
            ttl,
            addr: None,
            rtt: None,
        })
        .collect();
    // Smallest TTL at which the target answered (or a router said unreachable).
    let mut end: Option<(u8, bool)> = None;
    let mut next: u8 = 1;
    let mut buf = [0u8; 1500];
    loop {
        let all_in =
            end.is_some_and(|(e, _)| hops[..usize::from(e)].iter().all(|h| h.addr.is_some()));
        if all_in {
            break;
        }
        let send_at = start + SPACING * u32::from(next - 1);
        let sending = next <= MAX_HOPS && end.is_none_or(|(e, _)| next <= e);
        tokio::select! {
            biased;
            r = sock.recv(&mut buf) => {
                let (off, len, from, at) = r.map_err(|e| {
                    (io_outcome(&e), format!("traceroute to {ip}: {e}"), PathTrace::default())
                })?;
                let Some(answer) = parse(sock.is_v6(), &buf[off..len]) else { continue };
                let (id, seq, kind) = match answer {
                    Answer::Reached(i, s) if from == ip => (i, s, Some(true)),
                    Answer::Reached(..) => continue,
                    Answer::Expired(i, s) => (i, s, None),
                    Answer::Unreachable(i, s) => (i, s, Some(false)),
                };
                let ttl = usize::from(seq);
                if id != ident || ttl == 0 || ttl > n {
                    continue;
                }
                let Some(sent) = sent_at[ttl] else { continue };
                let hop = &mut hops[ttl - 1];
                if hop.addr.is_none() {
                    hop.addr = Some(from);
                    hop.rtt = Some(at.duration_since(sent).unwrap_or(Duration::ZERO));
                }
                if let Some(reached) = kind
                    && end.is_none_or(|(e, _)| usize::from(e) > ttl)
                {
                    end = Some((seq as u8, reached));
                }
            }
            _ = tokio::time::sleep_until(send_at), if sending => {
                let sent = sock.set_ttl(next).and_then(|()| sock.send(ip, ident, u16::from(next)));
                match sent {
                    Ok(at) => sent_at[usize::from(next)] = Some(at),
                    Err(e) => {
                        return Err((io_outcome(&e), format!("traceroute to {ip}: {e}"), PathTrace::default()));
                    }
                }
                next += 1;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let (len, reached) = match end {
        Some((e, reached)) => (usize::from(e), reached),
        // Trailing silent hops say nothing about the path: cut after the last answer.
        None => (
            hops.iter()
                .rposition(|h| h.addr.is_some())
                .map_or(0, |i| i + 1),
            false,
        ),
    };
    hops.truncate(len);
    Ok(PathTrace { hops, reached })
}

/// The wire form of one path.
pub(crate) fn to_wire(p: &PathTrace) -> pb::TracerouteMeasurement {
    pb::TracerouteMeasurement {
        hops: p
            .hops
            .iter()
            .map(|h| pb::TracerouteHop {
                ttl: u32::from(h.ttl),
                address: h.addr.map(|a| a.to_string()).unwrap_or_default(),
                rtt_us: h.rtt.map_or(0, us),
            })
            .collect(),
        reached: p.reached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_packet(icmp_type: u8, ident: u16, seq: u16) -> Vec<u8> {
        let mut p = vec![icmp_type, 0, 0, 0, 0, 0, 0, 0];
        // Quoted IPv4 header (20 bytes, IHL 5), then the echo request header.
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        p.extend(ip);
        p.extend([8, 0, 0, 0]);
        p.extend(ident.to_be_bytes());
        p.extend(seq.to_be_bytes());
        p
    }

    #[test]
    fn parses_time_exceeded_unreachable_and_reply() {
        assert_eq!(
            parse(false, &error_packet(11, 7, 3)),
            Some(Answer::Expired(7, 3))
        );
        assert_eq!(
            parse(false, &error_packet(3, 7, 4)),
            Some(Answer::Unreachable(7, 4))
        );
        assert_eq!(
            parse(false, &[0, 0, 0, 0, 0, 7, 0, 5]),
            Some(Answer::Reached(7, 5))
        );
        // Someone else's echo request is not an answer.
        assert_eq!(parse(false, &[8, 0, 0, 0, 0, 7, 0, 5]), None);
        // A truncated quote is ignored, not a panic.
        assert_eq!(parse(false, &error_packet(11, 7, 3)[..20]), None);
    }
}
