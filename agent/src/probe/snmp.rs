//! A minimal SNMP client: one GetRequest for a handful of OIDs over UDP,
//! with just enough BER to encode the request and decode the response.
//! v2c with a community ([`get`]) and v3 with USM authPriv ([`get_v3`]:
//! engine discovery, HMAC-SHA-96 or HMAC-SHA-256-192, AES-128-CFB, time
//! window re-sync; the crypto is in [`super::usm`]).
//!
//! Why our own, although snmp2 (0.5, `crypto-rust`) now does v3 authPriv in
//! pure Rust: its errors lose what an OPD's IT staff need to fix a router's
//! USM settings. Measured against net-snmp's snmpd (SHA-256 + AES user,
//! 2026-12-04): an unknown user and a wrong authentication password both
//! come back as `AuthFailure(NotAuthenticated)` (the Report PDU's usmStats
//! OID is dropped: `Pdu::validate` wants a Response), and a wrong privacy
//! password as `Receive`. This client names each (usmStatsUnknownUserNames
//! → check `user`, usmStatsWrongDigests → check `auth_password`,
//! usmStatsDecryptionErrors or silence → check `priv_password`), and a GET
//! is small enough to own and to fuzz (snmp_fuzz.rs).

use std::net::SocketAddr;
use std::time::Duration;

use super::usm::{self, LocalKeys, UserKeys};

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
    #[error("snmp {peer}: no response within {timeout:?} ({hint})")]
    Timeout {
        /// Router.
        peer: SocketAddr,
        /// How long we waited.
        timeout: Duration,
        /// What to check.
        hint: &'static str,
    },
    /// The router refused an SNMP v3 request with a USM report, or its
    /// answer failed our own checks.
    #[error("snmp {peer}: {failure}")]
    Usm {
        /// Router.
        peer: SocketAddr,
        /// Which check failed.
        failure: UsmFailure,
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

/// Why received bytes are not the SNMP message we expect. Responses that
/// fail to decode are skipped while waiting, so these rarely reach a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The PDU body (request id, status, varbinds) is not valid BER.
    #[error("malformed SNMP PDU")]
    Pdu,
    /// The v2c message around the PDU is not valid BER.
    #[error("malformed SNMP response")]
    Response,
    /// A v3 ScopedPDU is not valid BER.
    #[error("malformed ScopedPDU")]
    Scoped,
    /// A v3 message field is missing or invalid; names the field.
    #[error("malformed SNMP v3 message ({0})")]
    V3(&'static str),
    /// Another SNMP version than the one asked.
    #[error("SNMP version {found} in response, expected {expected}")]
    Version {
        /// The version number in the message.
        found: i64,
        /// "v2c" or "v3".
        expected: &'static str,
    },
    /// A v2c message whose PDU is not a Response.
    #[error("not a Response PDU")]
    NotResponse,
    /// A v3 message of another security model than USM.
    #[error("security model {0}, expected USM (3)")]
    SecurityModel(i64),
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

/// The values of a Response PDU to a GET of `asked` OIDs (v2c and v3 alike):
/// a non-zero error-status or a different count is a protocol error.
fn response_values(
    peer: SocketAddr,
    status: i64,
    vbs: Vec<VarBind>,
    asked: usize,
) -> Result<Vec<Value>, SnmpError> {
    if status != 0 {
        return Err(SnmpError::Protocol {
            peer,
            what: format!("error-status {status} in response"),
        });
    }
    if vbs.len() != asked {
        return Err(SnmpError::Protocol {
            peer,
            what: format!("{} values for {asked} OIDs", vbs.len()),
        });
    }
    Ok(vbs.into_iter().map(|(_, v)| v).collect())
}

/// Decode a PDU body (request id, error status, varbinds).
fn decode_pdu(pdu: &[u8]) -> Result<(i32, i64, Vec<VarBind>), DecodeError> {
    let bad = || DecodeError::Pdu;
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

/// Decode a v2c Response: (request id, error status, varbinds).
pub fn decode_response(msg: &[u8]) -> Result<(i32, i64, Vec<VarBind>), DecodeError> {
    let bad = || DecodeError::Response;
    let mut top = Reader { b: msg };
    let seq = top.expect(0x30).ok_or_else(bad)?;
    let mut r = Reader { b: seq };
    let version = r.expect(0x02).and_then(decode_int).ok_or_else(bad)?;
    if version != 1 {
        return Err(DecodeError::Version {
            found: version,
            expected: "v2c",
        });
    }
    r.expect(0x04).ok_or_else(bad)?;
    let pdu = r.expect(0xa2).ok_or(DecodeError::NotResponse)?;
    decode_pdu(pdu)
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
            return response_values(peer, status, vbs, oids.len());
        }
    }
    Err(SnmpError::Timeout {
        peer,
        timeout,
        hint: "check the community, the router's SNMP ACL and UDP 161",
    })
}

// ---------------------------------------------------------------- SNMP v3

/// Why an SNMP v3 request failed the User-based Security Model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsmFailure {
    /// usmStatsUnknownUserNames: the router has no such user.
    #[error(
        "SNMP v3 user `{0}` is unknown to the router (usmStatsUnknownUserNames; check `user` and the router's SNMP v3 users)"
    )]
    UnknownUser(String),
    /// usmStatsWrongDigests: our HMAC did not match the router's key.
    #[error(
        "the router rejected our SNMP v3 authentication (usmStatsWrongDigests; check auth_password and auth_protocol)"
    )]
    WrongDigest,
    /// usmStatsDecryptionErrors: the router could not decrypt our request.
    #[error(
        "the router could not decrypt our SNMP v3 request (usmStatsDecryptionErrors; check priv_password and priv_protocol)"
    )]
    RouterCannotDecrypt,
    /// The router's answer authenticated but did not decrypt into a PDU.
    #[error("cannot decrypt the router's SNMP v3 response (check priv_password and priv_protocol)")]
    CannotDecrypt,
    /// usmStatsUnsupportedSecLevels: the user may not use authPriv.
    #[error(
        "the router does not allow authPriv for this SNMP v3 user (usmStatsUnsupportedSecLevels; create the user with SHA/SHA-256 and AES)"
    )]
    UnsupportedSecLevel,
    /// usmStatsUnknownEngineIDs, still after a fresh discovery.
    #[error("the router keeps answering usmStatsUnknownEngineIDs after engine discovery")]
    UnknownEngine,
    /// usmStatsNotInTimeWindows, still after re-synchronising.
    #[error("the router keeps answering usmStatsNotInTimeWindows after time re-synchronisation")]
    NotInTimeWindow,
    /// Engine discovery answered without an engine ID.
    #[error("SNMP v3 engine discovery: the router's report carries no engine ID")]
    NoEngineId,
    /// Another report.
    #[error("SNMP v3 report {0}")]
    Report(String),
}

const USM_STATS: &str = "1.3.6.1.6.3.15.1.1";
const SNMP_V3: i64 = 3;
const USM_MODEL: i64 = 3;
const FLAG_AUTH: u8 = 1;
const FLAG_PRIV: u8 = 2;
const FLAG_REPORTABLE: u8 = 4;
/// Largest message we accept (msgMaxSize).
const MAX_SIZE: i64 = 65507;
/// RFC 3414 3.2 step 7: messages more than 150 s out of step are refused.
const TIME_WINDOW: u32 = 150;

/// What the agent knows of the router's authoritative SNMP engine.
#[derive(Clone)]
pub struct Engine {
    /// snmpEngineID.
    pub id: Vec<u8>,
    /// snmpEngineBoots.
    pub boots: u32,
    /// snmpEngineTime when `at` was taken.
    pub time: u32,
    /// When `time` was learned.
    pub at: std::time::Instant,
    keys: LocalKeys,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &hex::encode(&self.id))
            .field("boots", &self.boots)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Engine {
    fn time_now(&self) -> u32 {
        let elapsed = self.at.elapsed().as_secs().min(u64::from(u32::MAX)) as u32;
        self.time.saturating_add(elapsed)
    }

    /// RFC 3414 3.2 step 7b: take newer boots/time from an authenticated
    /// message; refuse one too far behind what we know.
    fn check_and_update(&mut self, boots: u32, time: u32) -> bool {
        let now = self.time_now();
        if boots > self.boots || (boots == self.boots && time > now) {
            self.boots = boots;
            self.time = time;
            self.at = std::time::Instant::now();
            return true;
        }
        boots == self.boots && now.saturating_sub(time) <= TIME_WINDOW && boots != i32::MAX as u32
    }
}

/// One router's SNMP v3 state: the user's keys, the engine once
/// discovered, and the salt counter. Keep it between polls.
#[derive(Debug)]
pub struct V3Session {
    user: std::sync::Arc<UserKeys>,
    engine: Option<Engine>,
    salt: u64,
}

impl V3Session {
    /// A session that discovers the engine on its first request.
    pub fn new(user: std::sync::Arc<UserKeys>) -> Self {
        V3Session {
            user,
            engine: None,
            salt: rand::random(),
        }
    }

    /// The engine, once discovered.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }
}

/// msgSecurityParameters (UsmSecurityParameters) and the rest of a v3
/// message, borrowed from the received bytes.
#[derive(Debug)]
pub struct V3Message<'a> {
    /// msgID.
    pub msg_id: i32,
    /// msgFlags.
    pub flags: u8,
    /// msgAuthoritativeEngineID.
    pub engine_id: &'a [u8],
    /// msgAuthoritativeEngineBoots.
    pub boots: u32,
    /// msgAuthoritativeEngineTime.
    pub time: u32,
    /// msgUserName.
    pub user: &'a [u8],
    /// msgAuthenticationParameters.
    pub auth: &'a [u8],
    /// msgPrivacyParameters.
    pub privacy: &'a [u8],
    /// msgData: a plaintext ScopedPDU (tag 0x30) or an encryptedPDU (0x04).
    pub data_tag: u8,
    /// Its body.
    pub data: &'a [u8],
}

fn u31(v: i64) -> Option<u32> {
    (0..=i64::from(i32::MAX)).contains(&v).then_some(v as u32)
}

/// Decode a v3 message down to msgData.
pub fn decode_v3(msg: &[u8]) -> Result<V3Message<'_>, DecodeError> {
    let bad = DecodeError::V3;
    let mut top = Reader { b: msg };
    let seq = top.expect(0x30).ok_or_else(|| bad("sequence"))?;
    let mut r = Reader { b: seq };
    let version = r
        .expect(0x02)
        .and_then(decode_int)
        .ok_or_else(|| bad("version"))?;
    if version != SNMP_V3 {
        return Err(DecodeError::Version {
            found: version,
            expected: "v3",
        });
    }
    let global = r.expect(0x30).ok_or_else(|| bad("msgGlobalData"))?;
    let mut g = Reader { b: global };
    let msg_id = g
        .expect(0x02)
        .and_then(decode_int)
        .and_then(u31)
        .ok_or_else(|| bad("msgID"))?;
    g.expect(0x02).ok_or_else(|| bad("msgMaxSize"))?;
    let flags = match g.expect(0x04) {
        Some([f]) => *f,
        _ => return Err(bad("msgFlags")),
    };
    let model = g
        .expect(0x02)
        .and_then(decode_int)
        .ok_or_else(|| bad("msgSecurityModel"))?;
    if model != USM_MODEL {
        return Err(DecodeError::SecurityModel(model));
    }
    let sp = r.expect(0x04).ok_or_else(|| bad("msgSecurityParameters"))?;
    let mut s = Reader {
        b: Reader { b: sp }
            .expect(0x30)
            .ok_or_else(|| bad("UsmSecurityParameters"))?,
    };
    let engine_id = s.expect(0x04).ok_or_else(|| bad("engine ID"))?;
    let boots = s
        .expect(0x02)
        .and_then(decode_int)
        .and_then(u31)
        .ok_or_else(|| bad("boots"))?;
    let time = s
        .expect(0x02)
        .and_then(decode_int)
        .and_then(u31)
        .ok_or_else(|| bad("time"))?;
    let user = s.expect(0x04).ok_or_else(|| bad("user"))?;
    let auth = s.expect(0x04).ok_or_else(|| bad("auth parameters"))?;
    let privacy = s.expect(0x04).ok_or_else(|| bad("privacy parameters"))?;
    let (data_tag, data) = r.next().ok_or_else(|| bad("msgData"))?;
    if data_tag != 0x30 && data_tag != 0x04 {
        return Err(bad("msgData"));
    }
    Ok(V3Message {
        msg_id: msg_id as i32,
        flags,
        engine_id,
        boots,
        time,
        user,
        auth,
        privacy,
        data_tag,
        data,
    })
}

/// A ScopedPDU with a GetRequest (0xa0) for `oids`.
fn scoped_get(context_engine: &[u8], request_id: i32, oids: &[Vec<u32>]) -> Vec<u8> {
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
    let mut sc = tlv(0x04, context_engine);
    sc.extend(tlv(0x04, b""));
    sc.extend(tlv(0xa0, &pdu));
    tlv(0x30, &sc)
}

/// Decode a ScopedPDU: (PDU tag, request id, error status, varbinds).
fn decode_scoped(b: &[u8]) -> Result<(u8, i32, i64, Vec<VarBind>), DecodeError> {
    let bad = || DecodeError::Scoped;
    let mut top = Reader { b };
    let seq = top.expect(0x30).ok_or_else(bad)?;
    let mut r = Reader { b: seq };
    r.expect(0x04).ok_or_else(bad)?;
    r.expect(0x04).ok_or_else(bad)?;
    let (tag, pdu) = r.next().ok_or_else(bad)?;
    let (id, status, vbs) = decode_pdu(pdu)?;
    Ok((tag, id, status, vbs))
}

/// The fields of an outgoing message's UsmSecurityParameters.
struct OutSec<'a> {
    engine_id: &'a [u8],
    boots: u32,
    time: u32,
    user: &'a [u8],
    mac_len: usize,
    privacy: &'a [u8],
}

/// Encode a v3 message; `data` is the msgData TLV. The authentication
/// parameters are zeros; their offset in the message is returned.
fn encode_v3(msg_id: i32, flags: u8, sec: &OutSec<'_>, data: &[u8]) -> (Vec<u8>, usize) {
    let mut global = int(i64::from(msg_id));
    global.extend(int(MAX_SIZE));
    global.extend(tlv(0x04, &[flags]));
    global.extend(int(USM_MODEL));
    let mut sp = tlv(0x04, sec.engine_id);
    sp.extend(int(i64::from(sec.boots)));
    sp.extend(int(i64::from(sec.time)));
    sp.extend(tlv(0x04, sec.user));
    sp.extend(tlv(0x04, &vec![0u8; sec.mac_len]));
    sp.extend(tlv(0x04, sec.privacy));
    let mut body = int(SNMP_V3);
    body.extend(tlv(0x30, &global));
    body.extend(tlv(0x04, &tlv(0x30, &sp)));
    body.extend_from_slice(data);
    let msg = tlv(0x30, &body);
    let at = decode_v3(&msg)
        .map(|m| offset_in(&msg, m.auth))
        .expect("our own encoding decodes");
    (msg, at)
}

/// Where `part` (a sub-slice of `whole`) starts.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// The discovery request (RFC 3414 4): noAuthNoPriv, reportable, no
/// engine ID, no user, an empty GetRequest.
pub fn encode_discovery(msg_id: i32, request_id: i32) -> Vec<u8> {
    let sec = OutSec {
        engine_id: b"",
        boots: 0,
        time: 0,
        user: b"",
        mac_len: 0,
        privacy: b"",
    };
    encode_v3(
        msg_id,
        FLAG_REPORTABLE,
        &sec,
        &scoped_get(b"", request_id, &[]),
    )
    .0
}

/// An authPriv GetRequest for `oids` to `engine`, signed and encrypted.
pub fn encode_get_v3(
    user: &UserKeys,
    engine: &Engine,
    salt: u64,
    msg_id: i32,
    request_id: i32,
    oids: &[Vec<u32>],
) -> Vec<u8> {
    let (boots, time) = (engine.boots, engine.time_now());
    let plain = scoped_get(&engine.id, request_id, oids);
    seal_v3(user, engine, (boots, time), salt, msg_id, &plain)
}

/// Encrypt `scoped` (a ScopedPDU TLV) and sign the message, authPriv and
/// reportable, with `boots_time` in the security parameters.
fn seal_v3(
    user: &UserKeys,
    engine: &Engine,
    (boots, time): (u32, u32),
    salt: u64,
    msg_id: i32,
    scoped: &[u8],
) -> Vec<u8> {
    let salt = salt.to_be_bytes();
    let enc = usm::aes_encrypt(&engine.keys.privacy, boots, time, &salt, scoped);
    let sec = OutSec {
        engine_id: &engine.id,
        boots,
        time,
        user: user.user.as_bytes(),
        mac_len: user.auth.mac_len(),
        privacy: &salt,
    };
    let (mut msg, at) = encode_v3(
        msg_id,
        FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE,
        &sec,
        &tlv(0x04, &enc),
    );
    let mac = user.auth.mac(&engine.keys.auth, &msg);
    msg[at..at + mac.len()].copy_from_slice(&mac);
    msg
}

/// A received v3 message after the security checks.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A Response PDU: request id, error status, varbinds.
    Response(i32, i64, Vec<VarBind>),
    /// A Report PDU: the first varbind's OID, and whether it was authenticated.
    Report(Vec<u32>, bool),
    /// Not for us, or failed authentication: ignore it.
    Ignore(&'static str),
}

/// Check and open a received message for `msg_id`. Authenticated messages
/// must verify with the engine's key and be in its time window (which they
/// move forward); an unauthenticated one is only believed as a Report.
pub fn open_v3(
    user: &UserKeys,
    engine: Option<&mut Engine>,
    msg_id: i32,
    raw: &[u8],
) -> Result<Incoming, UsmFailure> {
    let Ok(m) = decode_v3(raw) else {
        return Ok(Incoming::Ignore("not an SNMP v3 message"));
    };
    if m.msg_id != msg_id {
        return Ok(Incoming::Ignore("another msgID"));
    }
    let plain;
    let scoped: &[u8] = if m.flags & FLAG_AUTH == 0 {
        if m.data_tag != 0x30 {
            return Ok(Incoming::Ignore("encrypted but not authenticated"));
        }
        // Rebuild the TLV the scoped decoder expects.
        plain = tlv(0x30, m.data);
        &plain
    } else {
        let Some(engine) = engine else {
            return Ok(Incoming::Ignore("authenticated before discovery"));
        };
        if m.engine_id != engine.id.as_slice() || m.user != user.user.as_bytes() {
            return Ok(Incoming::Ignore("another engine or user"));
        }
        let at = offset_in(raw, m.auth);
        let mut zeroed = raw.to_vec();
        zeroed[at..at + m.auth.len()].fill(0);
        if !user.auth.verify(&engine.keys.auth, &zeroed, m.auth) {
            return Ok(Incoming::Ignore("wrong digest on the router's answer"));
        }
        if !engine.check_and_update(m.boots, m.time) {
            // RFC 3414 3.2 7b: out of the window. A notInTimeWindow report
            // itself is exempt: it carries the time we must take.
            let report = m.flags & FLAG_PRIV == 0
                && decode_scoped(&tlv(0x30, m.data))
                    .is_ok_and(|(t, _, _, v)| t == 0xa8 && report_is(&v, 2));
            if !report {
                return Ok(Incoming::Ignore("outside the time window"));
            }
            engine.boots = m.boots;
            engine.time = m.time;
            engine.at = std::time::Instant::now();
        }
        if m.flags & FLAG_PRIV != 0 {
            let salt: [u8; 8] = m
                .privacy
                .try_into()
                .map_err(|_| UsmFailure::CannotDecrypt)?;
            if m.data_tag != 0x04 {
                return Err(UsmFailure::CannotDecrypt);
            }
            plain = usm::aes_decrypt(&engine.keys.privacy, m.boots, m.time, &salt, m.data);
            &plain
        } else {
            plain = tlv(0x30, m.data);
            &plain
        }
    };
    let authenticated = m.flags & FLAG_AUTH != 0;
    let Ok((tag, id, status, vbs)) = decode_scoped(scoped) else {
        return if m.flags & FLAG_PRIV != 0 {
            Err(UsmFailure::CannotDecrypt)
        } else {
            Ok(Incoming::Ignore("malformed ScopedPDU"))
        };
    };
    match tag {
        0xa8 => Ok(Incoming::Report(
            vbs.into_iter().next().map(|(o, _)| o).unwrap_or_default(),
            authenticated,
        )),
        0xa2 if authenticated && m.flags & FLAG_PRIV != 0 => {
            Ok(Incoming::Response(id, status, vbs))
        }
        0xa2 => Ok(Incoming::Ignore("response below authPriv")),
        _ => Ok(Incoming::Ignore("not a Response or Report")),
    }
}

fn report_is(vbs: &[VarBind], n: u32) -> bool {
    vbs.first().is_some_and(|(o, _)| is_usm_stat(o, n))
}

fn is_usm_stat(o: &[u32], n: u32) -> bool {
    let base = oid(USM_STATS);
    o.len() == base.len() + 2 && o.starts_with(&base) && o[base.len()] == n
}

/// The failure a USM report stands for, by its usmStats OID.
pub fn report_failure(o: &[u32], user: &str) -> UsmFailure {
    let base = oid(USM_STATS);
    if o.starts_with(&base) && o.len() == base.len() + 2 {
        match o[base.len()] {
            1 => return UsmFailure::UnsupportedSecLevel,
            2 => return UsmFailure::NotInTimeWindow,
            3 => return UsmFailure::UnknownUser(user.to_string()),
            4 => return UsmFailure::UnknownEngine,
            5 => return UsmFailure::WrongDigest,
            6 => return UsmFailure::RouterCannotDecrypt,
            _ => {}
        }
    }
    UsmFailure::Report(o.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
}

/// Send `req` and wait up to `wait` for a message `handle` accepts
/// (`Some`); one resend halfway.
async fn exchange<T>(
    sock: &tokio::net::UdpSocket,
    peer: SocketAddr,
    req: &[u8],
    wait: Duration,
    mut handle: impl FnMut(&[u8]) -> Option<T>,
) -> Result<Option<T>, SnmpError> {
    let io = |source| SnmpError::Io { peer, source };
    let mut buf = vec![0u8; 65535];
    for _attempt in 0..2 {
        sock.send(req).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + wait / 2;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(r) => r.map_err(io)?,
            };
            if let Some(t) = handle(&buf[..n]) {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// RFC 3414 4: learn the router's engine ID, boots and time.
async fn discover(
    sock: &tokio::net::UdpSocket,
    peer: SocketAddr,
    user: &UserKeys,
    timeout: Duration,
) -> Result<Engine, SnmpError> {
    let msg_id: i32 = rand::random_range(1..i32::MAX);
    let req = encode_discovery(msg_id, rand::random_range(1..i32::MAX));
    let got = exchange(sock, peer, &req, timeout, |raw| {
        let m = decode_v3(raw).ok()?;
        (m.msg_id == msg_id).then(|| (m.engine_id.to_vec(), m.boots, m.time))
    })
    .await?;
    let Some((id, boots, time)) = got else {
        return Err(SnmpError::Timeout {
            peer,
            timeout,
            hint: "no answer to SNMP v3 engine discovery; check that the router speaks SNMP v3, its SNMP ACL and UDP 161",
        });
    };
    if id.is_empty() || id.len() > 32 {
        return Err(SnmpError::Usm {
            peer,
            failure: UsmFailure::NoEngineId,
        });
    }
    Ok(Engine {
        keys: user.localize(&id),
        id,
        boots,
        time,
        at: std::time::Instant::now(),
    })
}

/// GET `oids` from `peer` with SNMP v3 authPriv. Discovers the engine on
/// first use, re-discovers after usmStatsUnknownEngineIDs (the router was
/// replaced or re-keyed) and re-synchronises after usmStatsNotInTimeWindows
/// (it rebooted), each once per call. `timeout` bounds each exchange.
pub async fn get_v3(
    peer: SocketAddr,
    session: &mut V3Session,
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
    let usm_err = |failure| SnmpError::Usm { peer, failure };
    let user = std::sync::Arc::clone(&session.user);
    let (mut rediscovered, mut resynced) = (false, false);
    loop {
        if session.engine.is_none() {
            session.engine = Some(discover(&sock, peer, &user, timeout).await?);
            rediscovered = true;
        }
        let engine = session.engine.as_mut().expect("discovered");
        let msg_id: i32 = rand::random_range(1..i32::MAX);
        let request_id: i32 = rand::random_range(1..i32::MAX);
        session.salt = session.salt.wrapping_add(1);
        let req = encode_get_v3(&user, engine, session.salt, msg_id, request_id, oids);
        let mut ignored = "";
        let got = exchange(&sock, peer, &req, timeout, |raw| {
            match open_v3(&user, Some(&mut *engine), msg_id, raw) {
                Ok(Incoming::Ignore(why)) => {
                    ignored = why;
                    None
                }
                Ok(Incoming::Response(id, ..)) if id != request_id => None,
                other => Some(other),
            }
        })
        .await?;
        match got {
            None => {
                return Err(SnmpError::Timeout {
                    peer,
                    timeout,
                    hint: if ignored == "wrong digest on the router's answer" {
                        "answers did not authenticate: check auth_password and auth_protocol"
                    } else {
                        "the router drops SNMP v3 requests it cannot decrypt: check priv_password and priv_protocol, then its SNMP ACL and UDP 161"
                    },
                });
            }
            Some(Err(f)) => return Err(usm_err(f)),
            Some(Ok(Incoming::Response(_, status, vbs))) => {
                return response_values(peer, status, vbs, oids.len());
            }
            Some(Ok(Incoming::Report(o, authenticated))) => {
                let failure = report_failure(&o, &user.user);
                match failure {
                    // open_v3 already took the router's boots/time from the
                    // authenticated report; send again once.
                    UsmFailure::NotInTimeWindow if authenticated && !resynced => resynced = true,
                    UsmFailure::UnknownEngine if !rediscovered => session.engine = None,
                    other => return Err(usm_err(other)),
                }
            }
            Some(Ok(Incoming::Ignore(_))) => unreachable!("filtered in exchange"),
        }
    }
}

#[cfg(test)]
#[path = "snmp_fuzz.rs"]
mod fuzz;

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
        assert_eq!(
            decode_response(&[0x30, 0x05, 0x02])
                .unwrap_err()
                .to_string(),
            "malformed SNMP response"
        );
        let v1 = tlv(0x30, &[int(0), tlv(0x04, b"public")].concat());
        assert_eq!(
            decode_response(&v1).unwrap_err().to_string(),
            "SNMP version 0 in response, expected v2c"
        );
    }

    #[test]
    fn integers_use_minimal_twos_complement() {
        assert_eq!(int(0), [0x02, 0x01, 0x00]);
        assert_eq!(int(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(int(-1), [0x02, 0x01, 0xff]);
        assert_eq!(decode_int(&[0x00, 0x80]), Some(128));
        assert_eq!(decode_int(&[0xff]), Some(-1));
    }

    // ---- SNMP v3

    fn user(auth: usm::AuthProtocol) -> UserKeys {
        UserKeys::new(
            "pantau",
            auth,
            "maplesyrup",
            usm::PrivProtocol::Aes128,
            "syrupmaple",
        )
    }

    fn engine(u: &UserKeys) -> Engine {
        let id = hex::decode("80001f8880e9630000d61ff449").unwrap();
        Engine {
            keys: u.localize(&id),
            id,
            boots: 7,
            time: 1000,
            at: std::time::Instant::now(),
        }
    }

    /// A router's Response or Report, sealed like snmpd would.
    fn router_msg(u: &UserKeys, e: &Engine, msg_id: i32, tag: u8, id: i32, vbs: &[u8]) -> Vec<u8> {
        let mut pdu = int(i64::from(id));
        pdu.extend(int(0));
        pdu.extend(int(0));
        pdu.extend(tlv(0x30, vbs));
        let mut sc = tlv(0x04, &e.id);
        sc.extend(tlv(0x04, b""));
        sc.extend(tlv(tag, &pdu));
        seal_v3(u, e, (e.boots, e.time_now()), 99, msg_id, &tlv(0x30, &sc))
    }

    fn counter_vb() -> Vec<u8> {
        let mut vb = encode_oid(&oid("1.3.6.1.2.1.31.1.1.1.6.2"));
        vb.extend(tlv(0x46, &[0x01, 0x00, 0x00]));
        tlv(0x30, &vb)
    }

    #[test]
    fn discovery_request_is_unauthenticated_and_reportable() {
        let m = encode_discovery(42, 43);
        let d = decode_v3(&m).unwrap();
        assert_eq!((d.msg_id, d.flags), (42, FLAG_REPORTABLE));
        assert!(d.engine_id.is_empty() && d.user.is_empty() && d.auth.is_empty());
        assert_eq!(d.data_tag, 0x30);
        let (tag, id, _, vbs) = decode_scoped(&tlv(0x30, d.data)).unwrap();
        assert_eq!((tag, id, vbs.len()), (0xa0, 43, 0));
    }

    #[test]
    fn get_request_is_signed_encrypted_and_carries_the_engine_state() {
        for auth in [usm::AuthProtocol::Sha1, usm::AuthProtocol::Sha256] {
            let u = user(auth);
            let e = engine(&u);
            let m = encode_get_v3(&u, &e, 5, 11, 12, &[oid("1.3.6.1.2.1.1.3.0")]);
            let d = decode_v3(&m).unwrap();
            assert_eq!(d.flags, FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE);
            assert_eq!(
                (d.engine_id, d.boots, d.user),
                (e.id.as_slice(), 7, &b"pantau"[..])
            );
            assert!(d.time >= 1000);
            assert_eq!(d.auth.len(), auth.mac_len());
            assert_eq!(d.privacy, 5u64.to_be_bytes());
            assert_eq!(d.data_tag, 0x04, "encrypted");
            // The router's side: the digest verifies over the zeroed message.
            let mut zeroed = m.clone();
            let at = offset_in(&m, d.auth);
            zeroed[at..at + d.auth.len()].fill(0);
            assert!(auth.verify(&e.keys.auth, &zeroed, d.auth));
            let plain = usm::aes_decrypt(
                &e.keys.privacy,
                d.boots,
                d.time,
                d.privacy.try_into().unwrap(),
                d.data,
            );
            let (tag, id, _, vbs) = decode_scoped(&plain).unwrap();
            assert_eq!((tag, id), (0xa0, 12));
            assert_eq!(vbs[0].0, oid("1.3.6.1.2.1.1.3.0"));
        }
    }

    #[test]
    fn responses_must_authenticate_and_decrypt() {
        let u = user(usm::AuthProtocol::Sha256);
        let mut e = engine(&u);
        let good = router_msg(&u, &e, 11, 0xa2, 12, &counter_vb());
        match open_v3(&u, Some(&mut e), 11, &good).unwrap() {
            Incoming::Response(12, 0, vbs) => assert_eq!(vbs[0].1, Value::Unsigned(0x10000)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            open_v3(&u, Some(&mut e), 10, &good).unwrap(),
            Incoming::Ignore("another msgID")
        );
        // One flipped bit anywhere in the ciphertext: the digest fails.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            open_v3(&u, Some(&mut e), 11, &bad).unwrap(),
            Incoming::Ignore("wrong digest on the router's answer")
        );
        // The right auth key but another privacy key: cannot decrypt.
        let other = UserKeys::new(
            "pantau",
            usm::AuthProtocol::Sha256,
            "maplesyrup",
            usm::PrivProtocol::Aes128,
            "wrong-priv-pw",
        );
        let mut e2 = engine(&other);
        e2.keys.auth = e.keys.auth.clone();
        let msg = router_msg(&other, &e2, 11, 0xa2, 12, &counter_vb());
        assert_eq!(
            open_v3(&u, Some(&mut e), 11, &msg),
            Err(UsmFailure::CannotDecrypt)
        );
    }

    #[test]
    fn stale_messages_are_refused_and_newer_time_is_taken() {
        let u = user(usm::AuthProtocol::Sha1);
        let mut e = engine(&u);
        let mut router = e.clone();
        router.time = 500; // 500 s behind what we believe: replayed.
        let old = router_msg(&u, &router, 11, 0xa2, 12, &counter_vb());
        assert_eq!(
            open_v3(&u, Some(&mut e), 11, &old).unwrap(),
            Incoming::Ignore("outside the time window")
        );
        // The router rebooted: higher boots, small time, authenticated.
        router.boots = 8;
        router.time = 3;
        let fresh = router_msg(&u, &router, 11, 0xa2, 12, &counter_vb());
        assert!(matches!(
            open_v3(&u, Some(&mut e), 11, &fresh).unwrap(),
            Incoming::Response(12, 0, _)
        ));
        assert_eq!((e.boots, e.time), (8, 3));
    }

    #[test]
    fn usm_reports_name_the_failure() {
        let u = user(usm::AuthProtocol::Sha1);
        // An unauthenticated Report as snmpd sends for a wrong digest.
        let mut vb = encode_oid(&oid("1.3.6.1.6.3.15.1.1.5.0"));
        vb.extend(tlv(0x41, &[3]));
        let mut pdu = int(0);
        pdu.extend(int(0));
        pdu.extend(int(0));
        pdu.extend(tlv(0x30, &tlv(0x30, &vb)));
        let mut sc = tlv(0x04, b"");
        sc.extend(tlv(0x04, b""));
        sc.extend(tlv(0xa8, &pdu));
        let sec = OutSec {
            engine_id: b"\x80\x00\x1f\x88\x01",
            boots: 1,
            time: 2,
            user: b"pantau",
            mac_len: 0,
            privacy: b"",
        };
        let (m, _) = encode_v3(11, 0, &sec, &tlv(0x30, &sc));
        let got = open_v3(&u, None, 11, &m).unwrap();
        let Incoming::Report(o, false) = got else {
            panic!("{got:?}")
        };
        assert_eq!(report_failure(&o, "pantau"), UsmFailure::WrongDigest);
        assert!(
            UsmFailure::WrongDigest
                .to_string()
                .contains("auth_password")
        );
        assert_eq!(
            report_failure(&oid("1.3.6.1.6.3.15.1.1.3.0"), "pantau"),
            UsmFailure::UnknownUser("pantau".into())
        );
        assert_eq!(
            report_failure(&oid("1.3.6.1.6.3.15.1.1.6.0"), "x"),
            UsmFailure::RouterCannotDecrypt
        );
        assert_eq!(
            report_failure(&oid("1.3.6.1.6.3.15.1.1.2.0"), "x"),
            UsmFailure::NotInTimeWindow
        );
        assert_eq!(
            report_failure(&oid("1.3.6.1.6.3.15.1.1.4.0"), "x"),
            UsmFailure::UnknownEngine
        );
        // An unauthenticated Response is never believed.
        let mut sc = tlv(0x04, b"");
        sc.extend(tlv(0x04, b""));
        sc.extend(tlv(0xa2, &pdu));
        let (m, _) = encode_v3(11, 0, &sec, &tlv(0x30, &sc));
        assert_eq!(
            open_v3(&u, None, 11, &m).unwrap(),
            Incoming::Ignore("response below authPriv")
        );
    }
}
