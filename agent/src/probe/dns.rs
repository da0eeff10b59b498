//! DNS probe: one A or AAAA query over UDP to a configured resolver (or the
//! first `nameserver` of /etc/resolv.conf), timing the answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::us;
use super::{failed, io_outcome, ok};
use crate::model::{Measurement, Observation, Outcome};
use pantau_core::probe::{DnsSpec, Target};
use pantau_proto::v1 as pb;

/// Run one query.
pub async fn probe(t: &Target, spec: &DnsSpec) -> Observation {
    let none = |rcode| Measurement::Dns {
        resolve: Duration::ZERO,
        answers: 0,
        rcode,
    };
    let server = match spec.server.or_else(system_resolver) {
        Some(s) => s,
        None => {
            return failed(
                Outcome::DnsError,
                "no resolver: set server in the target or a nameserver in /etc/resolv.conf",
                none(0),
            );
        }
    };
    let id: u16 = rand::random();
    let Some(query) = build_query(id, &t.address, if spec.aaaa { 28 } else { 1 }) else {
        return failed(
            Outcome::Other,
            format!("`{}` is not a valid DNS name", t.address),
            none(0),
        );
    };
    let start = Instant::now();
    let exchange = async {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("literal");
        let sock = UdpSocket::bind(bind).await?;
        sock.connect(server).await?;
        sock.send(&query).await?;
        let mut buf = [0u8; 1500];
        loop {
            let n = sock.recv(&mut buf).await?;
            if let Some(h) = parse_header(&buf[..n], id) {
                return Ok::<_, std::io::Error>(h);
            }
        }
    };
    match tokio::time::timeout(t.timeout, exchange).await {
        Err(_) => failed(
            Outcome::Timeout,
            format!("no answer from {server} in {:?}", t.timeout),
            none(0),
        ),
        Ok(Err(e)) => failed(io_outcome(&e), format!("query to {server}: {e}"), none(0)),
        Ok(Ok(h)) => {
            let m = Measurement::Dns {
                resolve: start.elapsed(),
                answers: h.answers,
                rcode: h.rcode,
            };
            match (h.rcode, h.answers) {
                (0, n) if n > 0 => ok(m),
                (0, _) => failed(
                    Outcome::DnsError,
                    format!("{} has no records of that type", t.address),
                    m,
                ),
                (rc, _) => failed(
                    Outcome::DnsError,
                    format!("{server} answered {}", rcode_name(rc)),
                    m,
                ),
            }
        }
    }
}

fn rcode_name(rc: u8) -> String {
    match rc {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN (name does not exist)".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

/// First `nameserver` in /etc/resolv.conf.
fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

/// A standard recursive query for `name` and `qtype`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; QDCOUNT=1
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    Some(q)
}

/// The parts of a response header the probe reports.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    /// Response code.
    pub rcode: u8,
    /// ANCOUNT.
    pub answers: u32,
}

/// Parse a response header; `None` if it is not a response to `id`.
pub fn parse_header(b: &[u8], id: u16) -> Option<Header> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
        return None;
    }
    Some(Header {
        rcode: b[3] & 0x0f,
        answers: u32::from(u16::from_be_bytes([b[6], b[7]])),
    })
}

/// The wire form of one lookup (`None` for another kind's measurement).
pub(crate) fn to_wire(m: &Measurement) -> Option<pb::DnsMeasurement> {
    let Measurement::Dns {
        resolve,
        answers,
        rcode,
    } = m
    else {
        return None;
    };
    Some(pb::DnsMeasurement {
        resolve_us: us(*resolve),
        answers: *answers,
        rcode: u32::from(*rcode),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = build_query(0x1234, "sulbarprov.go.id", 1).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..26], b"\x0asulbarprov\x02go");
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        assert!(build_query(1, "a..b", 1).is_none());
    }

    #[test]
    fn header_parsing() {
        let mut r = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_header(&r, 0x1234),
            Some(Header {
                rcode: 3,
                answers: 0
            })
        );
        assert_eq!(parse_header(&r, 0x9999), None);
        r[2] = 0x01; // a query, not a response
        assert_eq!(parse_header(&r, 0x1234), None);
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2;
        assert_eq!(
            parse_header(&r, 0x1234),
            Some(Header {
                rcode: 0,
                answers: 2
            })
        );
    }
}
