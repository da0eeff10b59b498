//! HTTP(S) probe (reqwest with rustls): status, time to first byte, total
//! time and the leaf certificate's expiry.

use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime};

use super::{ProbeSetupError, failed, ok};
use super::{ts, us};
use crate::model::{Measurement, Observation, Outcome};
use pantau_core::probe::{HttpSpec, Target};
use pantau_proto::v1 as pb;

/// Most body bytes read per probe; the rest is not downloaded.
const BODY_CAP: u64 = 1024 * 1024;

/// A shared HTTP client.
#[derive(Debug)]
pub struct HttpProber {
    client: reqwest::Client,
}

impl HttpProber {
    /// Build the client: rustls, TLS info kept, at most 5 redirects.
    pub fn new() -> Result<Self, ProbeSetupError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("pantau-agent/", env!("CARGO_PKG_VERSION")))
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::limited(5))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(ProbeSetupError::HttpClient)?;
        Ok(HttpProber { client })
    }

    /// Request the target URL once.
    pub async fn probe(&self, t: &Target, spec: &HttpSpec) -> Observation {
        let start = Instant::now();
        let blank = |status: u16| Measurement::Http {
            status,
            ttfb: Duration::ZERO,
            total: start.elapsed(),
            tls_not_after: None,
            body_bytes: 0,
        };
        let fut = async {
            let mut resp = self.client.get(&t.address).send().await?;
            let ttfb = start.elapsed();
            let status = resp.status().as_u16();
            let not_after = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .and_then(cert_not_after);
            let mut body_bytes = 0u64;
            while body_bytes < BODY_CAP {
                match resp.chunk().await? {
                    Some(c) => body_bytes += c.len() as u64,
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>((status, ttfb, not_after, body_bytes))
        };
        match tokio::time::timeout(t.timeout, fut).await {
            Err(_) => failed(
                Outcome::Timeout,
                format!("no complete answer in {:?}", t.timeout),
                blank(0),
            ),
            Ok(Err(e)) => {
                let (outcome, detail) = classify(&e);
                failed(outcome, detail, blank(e.status().map_or(0, |s| s.as_u16())))
            }
            Ok(Ok((status, ttfb, tls_not_after, body_bytes))) => {
                let m = Measurement::Http {
                    status,
                    ttfb,
                    total: start.elapsed(),
                    tls_not_after,
                    body_bytes,
                };
                if spec.accepts(status) {
                    ok(m)
                } else {
                    failed(Outcome::HttpStatus, format!("HTTP status {status}"), m)
                }
            }
        }
    }
}

/// Map a reqwest error to an outcome by looking through its sources.
fn classify(e: &reqwest::Error) -> (Outcome, String) {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = e.source();
    while let Some(s) = src {
        chain.push(s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            let o = super::io_outcome(io);
            if o != Outcome::Other {
                return (o, format!("{e}: {io}"));
            }
        }
        src = s.source();
    }
    let text = chain.join(": ");
    let lower = text.to_lowercase();
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        Outcome::DnsError
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        Outcome::TlsError
    } else if lower.contains("connection refused") {
        Outcome::Refused
    } else {
        Outcome::Other
    };
    (
        outcome,
        if text.is_empty() {
            e.to_string()
        } else {
            format!("{e}: {text}")
        },
    )
}

/// Read `notAfter` from a DER X.509 certificate without a full parser:
/// Certificate ::= SEQ { tbs SEQ { [0] version?, serial, sigAlg, issuer, validity SEQ { notBefore, notAfter } ... } }
pub fn cert_not_after(der: &[u8]) -> Option<SystemTime> {
    let (cert, _) = der_tlv(der, 0x30)?;
    let (tbs, _) = der_tlv(cert, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest, 0xa0)?.1;
    }
    rest = der_tlv(rest, 0x02)?.1; // serial
    rest = der_tlv(rest, 0x30)?.1; // signature algorithm
    rest = der_tlv(rest, 0x30)?.1; // issuer
    let (validity, _) = der_tlv(rest, 0x30)?;
    let tag = *validity.first()?;
    let (_, after) = der_tlv(validity, tag)?;
    let tag = *after.first()?;
    let (time, _) = der_tlv(after, tag)?;
    parse_der_time(tag, std::str::from_utf8(time).ok()?)
}

/// One DER TLV with the expected tag: (contents, remainder).
fn der_tlv(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *b.first()? != tag {
        return None;
    }
    let first = *b.get(1)? as usize;
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((b.get(hdr..end)?, b.get(end..)?))
}

/// UTCTime (tag 0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ).
fn parse_der_time(tag: u8, s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| rest.get(r)?.parse::<u32>().ok();
    let dt = chrono::NaiveDate::from_ymd_opt(year, num(0..2)?, num(2..4)?)?.and_hms_opt(
        num(4..6)?,
        num(6..8)?,
        num(8..10)?,
    )?;
    let secs = dt.and_utc().timestamp();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The wire form of one request (`None` for another kind's measurement).
pub(crate) fn to_wire(m: &Measurement) -> Option<pb::HttpMeasurement> {
    let Measurement::Http {
        status,
        ttfb,
        total,
        tls_not_after,
        body_bytes,
    } = m
    else {
        return None;
    };
    Some(pb::HttpMeasurement {
        status: u32::from(*status),
        ttfb_us: us(*ttfb),
        total_us: us(*total),
        tls_not_after: tls_not_after.map(ts),
        body_bytes: *body_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times() {
        let t = parse_der_time(0x17, "261128094500Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_795_859_100); // 2026-11-28T09:45:00Z
        let g = parse_der_time(0x18, "20501231235959Z").unwrap();
        assert!(g > t);
        assert!(parse_der_time(0x17, "2611280945").is_none());
    }

    #[test]
    fn not_after_from_hand_built_certificate() {
        // Minimal TBS shape: version, serial, alg, issuer, validity.
        let utc = |s: &str| [&[0x17, s.len() as u8][..], s.as_bytes()].concat();
        let validity = [utc("250101000000Z"), utc("270315120000Z")].concat();
        let seq = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
        let tbs = [
            seq(0xa0, &[0x02, 0x01, 0x02]),
            seq(0x02, &[0x01]),
            seq(0x30, &[0x06, 0x00]),
            seq(0x30, &[]),
            seq(0x30, &validity),
        ]
        .concat();
        let cert = seq(0x30, &seq(0x30, &tbs));
        let t = cert_not_after(&cert).unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_805_112_000); // 2027-03-15T12:00:00Z
        assert!(cert_not_after(&cert[..cert.len() - 3]).is_none());
    }
}
