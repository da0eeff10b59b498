//! A minimal SNMP v2c client: one GetRequest for a handful of OIDs over UDP,
//! with just enough BER to encode the request and decode the response.
//!
//! Why our own: the pure-Rust SNMP crates either lack v3 authPriv or need
//! OpenSSL for it; v2c GET is small enough to own and test. SNMP v3 is not
//! implemented (the config refuses `version = "3"` and says so).

use std::net::SocketAddr;
use std::time::Duration;

/// A value in a response varbind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// INTEGER.
    Int(i64),
    /// Counter32, Gauge32, TimeTicks, Counter64 (all unsigned).
    Unsigned(u64),
    /// OCTET STRING.
    Bytes(Vec<u8>),
    /// noSuchObject, noSuchInstance, endOfMibView, NULL: the device has no value.
    Missing,
    /// Anything else (OID, IpAddress, ...), not used here.
    Other,
}

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// Socket trouble.
    #[error("snmp {peer}: {source}")]
    Io {
        /// Router.
        peer: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// No response in time (wrong community, ACL, host down).
    #[error(
        "snmp {peer}: no response within {timeout:?} (check the community, the router's SNMP ACL and UDP 161)"
    )]
    Timeout {
        /// Router.
        peer: SocketAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// A response we cannot read, or an SNMP error status.
    #[error("snmp {peer}: {what}")]
    Protocol {
        /// Router.
        peer: SocketAddr,
        /// What was wrong.
        what: String,
    },
}

/// Parse a dotted OID.
pub fn oid(s: &str) -> Vec<u32> {
    s.split('.').filter_map(|p| p.parse().ok()).collect()
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

fn int(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(0x02, &bytes[start..])
}

fn encode_oid(o: &[u32]) -> Vec<u8> {
    let mut body = Vec::new();
    if o.len() >= 2 {
        body.push((o[0] * 40 + o[1]) as u8);
    }
    for &arc in o.iter().skip(2) {
        let mut tmp = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend(tmp);
    }
    tlv(0x06, &body)
}

/// Encode a v2c GetRequest.
pub fn encode_get(community: &str, request_id: i32, oids: &[Vec<u32>]) -> Vec<u8> {
    let mut vbs = Vec::new();
    for o in oids {
        let mut vb = encode_oid(o);
        vb.extend(tlv(0x05, &[]));
        vbs.extend(tlv(0x30, &vb));
    }
    let mut pdu = int(i64::from(request_id));
    pdu.extend(int(0));
    pdu.extend(int(0));
    pdu.extend(tlv(0x30, &vbs));
    let mut msg = int(1); // version: 1 = v2c
    msg.extend(tlv(0x04, community.as_bytes()));
    msg.extend(tlv(0xa0, &pdu));
    tlv(0x30, &msg)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.b.split_first()?;
        let (&l0, mut rest) = rest.split_first()?;
        let len = if l0 & 0x80 == 0 {
            usize::from(l0)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let v = rest[..n]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b));
            rest = &rest[n..];
            v
        };
        if rest.len() < len {
            return None;
        }
        let (body, rest) = rest.split_at(len);
        self.b = rest;
        Some((tag, body))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, body) if t == tag => Some(body),
            _ => None,
        }
    }
}

fn decode_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
    for &x in b {
        v = (v << 8) | i64::from(x);
    }
    Some(v)
}

fn decode_unsigned(b: &[u8]) -> Option<u64> {
    let b = if b.len() == 9 && b[0] == 0 {
        &b[1..]
    } else {
        b
    };
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
}

fn decode_oid(b: &[u8]) -> Option<Vec<u32>> {
    let (&first, rest) = b.split_first()?;
    let mut out = vec![u32::from(first / 40), u32::from(first % 40)];
    let mut v: u32 = 0;
    for &x in rest {
        v = v.checked_mul(128)? | u32::from(x & 0x7f);
        if x & 0x80 == 0 {
            out.push(v);
            v = 0;
        }
    }
    Some(out)
}

/// A decoded varbind: OID and value.
pub type VarBind = (Vec<u32>, Value);

/// Decode a v2c Response: (request id, error status, varbinds).
pub fn decode_response(msg: &[u8]) -> Result<(i32, i64, Vec<VarBind>), String> {
    let bad = || "malformed SNMP response".to_string();
    let mut top = Reader { b: msg };
    let seq = top.expect(0x30).ok_or_else(bad)?;
    let mut r = Reader { b: seq };
    let version = r.expect(0x02).and_then(decode_int).ok_or_else(bad)?;
    if version != 1 {
        return Err(format!("SNMP version {version} in response, expected v2c"));
    }
    r.expect(0x04).ok_or_else(bad)?;
    let pdu = r.expect(0xa2).ok_or("not a Response PDU")?;
    let mut p = Reader { b: pdu };
    let id = p.expect(0x02).and_then(decode_int).ok_or_else(bad)? as i32;
    let status = p.expect(0x02).and_then(decode_int).ok_or_else(bad)?;
    p.expect(0x02).ok_or_else(bad)?;
    let list = p.expect(0x30).ok_or_else(bad)?;
    let mut l = Reader { b: list };
    let mut vbs = Vec::new();
    while !l.b.is_empty() {
        let vb = l.expect(0x30).ok_or_else(bad)?;
        let mut v = Reader { b: vb };
        let name = v.expect(0x06).and_then(decode_oid).ok_or_else(bad)?;
        let (tag, body) = v.next().ok_or_else(bad)?;
        let value = match tag {
            0x02 => Value::Int(decode_int(body).ok_or_else(bad)?),
            // Counter32, Gauge32, TimeTicks, Counter64.
            0x41 | 0x42 | 0x43 | 0x46 => Value::Unsigned(decode_unsigned(body).ok_or_else(bad)?),
            0x04 => Value::Bytes(body.to_vec()),
            0x05 | 0x80..=0x82 => Value::Missing,
            _ => Value::Other,
        };
        vbs.push((name, value));
    }
    Ok((id, status, vbs))
}

/// GET `oids` from `peer` with `community`; values in request order. One retry.
pub async fn get(
    peer: SocketAddr,
    community: &str,
    oids: &[Vec<u32>],
    timeout: Duration,
) -> Result<Vec<Value>, SnmpError> {
    let io = |source| SnmpError::Io { peer, source };
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
    sock.connect(peer).await.map_err(io)?;
    let id: i32 = rand::random_range(1..i32::MAX);
    let req = encode_get(community, id, oids);
    let mut buf = vec![0u8; 65535];
    for _attempt in 0..2 {
        sock.send(&req).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + timeout / 2;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(r) => r.map_err(io)?,
            };
            let Ok((rid, status, vbs)) = decode_response(&buf[..n]) else {
                continue;
            };
            if rid != id {
                continue;
            }
            if status != 0 {
                return Err(SnmpError::Protocol {
                    peer,
                    what: format!("error-status {status} in response"),
                });
            }
            if vbs.len() != oids.len() {
                return Err(SnmpError::Protocol {
                    peer,
                    what: format!("{} values for {} OIDs", vbs.len(), oids.len()),
                });
            }
            return Ok(vbs.into_iter().map(|(_, v)| v).collect());
        }
    }
    Err(SnmpError::Timeout { peer, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_matches_a_known_encoding() {
        // snmpget -v2c -c public host 1.3.6.1.2.1.1.3.0 with request-id 1.
        let got = encode_get("public", 1, &[oid("1.3.6.1.2.1.1.3.0")]);
        let want = [
            0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0,
            0x19, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c,
            0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00, 0x05, 0x00,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn response_values_decode_including_counter64_and_exceptions() {
        // Build a response by hand: TimeTicks, Counter64 with the top bit set, noSuchInstance.
        let mut vbs = Vec::new();
        for (o, tag, body) in [
            ("1.3.6.1.2.1.1.3.0", 0x43u8, vec![0x01, 0x00]),
            (
                "1.3.6.1.2.1.31.1.1.1.6.2",
                0x46,
                vec![0x00, 0xff, 0, 0, 0, 0, 0, 0, 0x01],
            ),
            ("1.3.6.1.2.1.31.1.1.1.15.2", 0x81, vec![]),
        ] {
            let mut vb = encode_oid(&oid(o));
            vb.extend(tlv(tag, &body));
            vbs.extend(tlv(0x30, &vb));
        }
        let mut pdu = int(77);
        pdu.extend(int(0));
        pdu.extend(int(0));
        pdu.extend(tlv(0x30, &vbs));
        let mut msg = int(1);
        msg.extend(tlv(0x04, b"public"));
        msg.extend(tlv(0xa2, &pdu));
        let (id, status, v) = decode_response(&tlv(0x30, &msg)).unwrap();
        assert_eq!((id, status), (77, 0));
        assert_eq!(v[0].1, Value::Unsigned(256));
        assert_eq!(v[1].0, oid("1.3.6.1.2.1.31.1.1.1.6.2"));
        assert_eq!(v[1].1, Value::Unsigned(0xff00_0000_0000_0001));
        assert_eq!(v[2].1, Value::Missing);
        assert!(decode_response(&[0x30, 0x05, 0x02]).is_err());
    }

    #[test]
    fn integers_use_minimal_twos_complement() {
        assert_eq!(int(0), [0x02, 0x01, 0x00]);
        assert_eq!(int(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(int(-1), [0x02, 0x01, 0xff]);
        assert_eq!(decode_int(&[0x00, 0x80]), Some(128));
        assert_eq!(decode_int(&[0xff]), Some(-1));
    }
}
