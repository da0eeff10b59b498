//! Byte-level fuzzing of the SNMP BER decoders: v2c responses
//! ([`decode_response`]), v3 messages ([`decode_v3`]) and the whole v3
//! receive path ([`open_v3`]: USM checks, decryption, ScopedPDU). Seeds
//! are messages built by this module's own encoders, sealed like a router
//! would; see `probe/fuzz.rs` for the budget, seed and mutator.

use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;
use crate::probe::fuzz::{config, input, mutated};

/// A Response's value as the BER a router sends for it.
fn value_tlv(v: &Value) -> Vec<u8> {
    match v {
        Value::Int(i) => int(*i),
        Value::Unsigned(u) => {
            let bytes = u.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
            let mut body = bytes[skip..].to_vec();
            if body[0] & 0x80 != 0 {
                body.insert(0, 0);
            }
            tlv(0x46, &body)
        }
        Value::Bytes(b) => tlv(0x04, b),
        Value::Missing => tlv(0x05, &[]),
        Value::Other => tlv(0x40, &[127, 0, 0, 1]),
    }
}

fn varbinds(vbs: &[VarBind]) -> Vec<u8> {
    let mut out = Vec::new();
    for (o, v) in vbs {
        let mut vb = encode_oid(o);
        vb.extend(value_tlv(v));
        out.extend(tlv(0x30, &vb));
    }
    out
}

fn pdu(tag: u8, id: i32, status: i64, vbs: &[u8]) -> Vec<u8> {
    let mut p = int(i64::from(id));
    p.extend(int(status));
    p.extend(int(0));
    p.extend(tlv(0x30, vbs));
    tlv(tag, &p)
}

/// A v2c Response as a router encodes it.
fn v2c_response(id: i32, status: i64, vbs: &[VarBind]) -> Vec<u8> {
    let mut msg = int(1);
    msg.extend(tlv(0x04, b"public"));
    msg.extend(pdu(0xa2, id, status, &varbinds(vbs)));
    tlv(0x30, &msg)
}

fn sample_varbinds() -> Vec<VarBind> {
    vec![
        (oid("1.3.6.1.2.1.1.3.0"), Value::Unsigned(123_456)),
        (
            oid("1.3.6.1.2.1.31.1.1.1.6.2"),
            Value::Unsigned(0xff00_0000_0000_0001),
        ),
        (oid("1.3.6.1.2.1.2.2.1.8.2"), Value::Int(-2)),
        (
            oid("1.3.6.1.2.1.31.1.1.1.1.2"),
            Value::Bytes(b"GigabitEthernet0/1".to_vec()),
        ),
        (oid("1.3.6.1.2.1.31.1.1.1.15.2"), Value::Missing),
        (oid("1.3.6.1.2.1.4.20.1.1.10"), Value::Other),
    ]
}

fn v2c_corpus() -> Vec<Vec<u8>> {
    let vbs = sample_varbinds();
    vec![
        v2c_response(77, 0, &vbs),
        v2c_response(-5, 2, &vbs[..1]),
        v2c_response(i32::MAX, 0, &[]),
        // A long OCTET STRING: long-form (0x81, 0x82) lengths on every level.
        v2c_response(
            9,
            0,
            &[(oid("1.3.6.1.2.1.1.1.0"), Value::Bytes(vec![b'x'; 300]))],
        ),
        encode_get("public", 1, &[oid("1.3.6.1.2.1.1.3.0")]),
    ]
}

// ---- SNMP v3: one user and engine for the whole run (key derivation
// hashes a megabyte).

static USER: LazyLock<UserKeys> = LazyLock::new(|| {
    UserKeys::new(
        "pantau",
        usm::AuthProtocol::Sha256,
        "maplesyrup",
        usm::PrivProtocol::Aes128,
        "syrupmaple",
    )
});

fn engine() -> Engine {
    static KEYS: LazyLock<(Vec<u8>, LocalKeys)> = LazyLock::new(|| {
        let id = hex::decode("80001f8880e9630000d61ff449").expect("hex");
        let keys = USER.localize(&id);
        (id, keys)
    });
    Engine {
        id: KEYS.0.clone(),
        keys: KEYS.1.clone(),
        boots: 7,
        time: 1000,
        at: std::time::Instant::now(),
    }
}

const MSG_ID: i32 = 4242;

/// A router's message to `MSG_ID`: authPriv when `seal`, else
/// noAuthNoPriv with the ScopedPDU in the clear (a discovery report).
fn router_msg(seal: bool, tag: u8, vbs: &[VarBind]) -> Vec<u8> {
    let e = engine();
    let mut sc = tlv(0x04, &e.id);
    sc.extend(tlv(0x04, b""));
    sc.extend(pdu(tag, 31, 0, &varbinds(vbs)));
    let scoped = tlv(0x30, &sc);
    if seal {
        return seal_v3(&USER, &e, (e.boots, e.time_now()), 99, MSG_ID, &scoped);
    }
    let sec = OutSec {
        engine_id: &e.id,
        boots: e.boots,
        time: e.time,
        user: b"",
        mac_len: 0,
        privacy: b"",
    };
    encode_v3(MSG_ID, 0, &sec, &scoped).0
}

fn usm_report(n: u32) -> Vec<VarBind> {
    vec![(oid(&format!("{USM_STATS}.{n}.0")), Value::Unsigned(1))]
}

fn v3_corpus() -> Vec<Vec<u8>> {
    let vbs = sample_varbinds();
    vec![
        router_msg(true, 0xa2, &vbs),
        router_msg(true, 0xa2, &vbs[..2]),
        router_msg(true, 0xa8, &usm_report(2)),
        router_msg(false, 0xa8, &usm_report(4)),
        encode_discovery(MSG_ID, 31),
    ]
}

/// Re-encode a decoded v3 message with the real encoder.
fn reencode_v3(m: &V3Message<'_>) -> Vec<u8> {
    let sec = OutSec {
        engine_id: m.engine_id,
        boots: m.boots,
        time: m.time,
        user: m.user,
        mac_len: m.auth.len(),
        privacy: m.privacy,
    };
    let (mut msg, at) = encode_v3(m.msg_id, m.flags, &sec, &tlv(m.data_tag, m.data));
    msg[at..at + m.auth.len()].copy_from_slice(m.auth);
    msg
}

fn same_v3(a: &V3Message<'_>, b: &V3Message<'_>) -> bool {
    (a.msg_id, a.flags, a.engine_id, a.boots, a.time, a.user)
        == (b.msg_id, b.flags, b.engine_id, b.boots, b.time, b.user)
        && (a.auth, a.privacy, a.data_tag, a.data) == (b.auth, b.privacy, b.data_tag, b.data)
}

proptest! {
    #![proptest_config(config("snmp_v2c_response", 1))]

    /// A v2c response decodes to a typed error or to values that, encoded
    /// again the way a router does, decode to the same values.
    #[test]
    fn fuzz_snmp_v2c_response((_, b) in input(v2c_corpus())) {
        match decode_response(&b) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok((id, status, vbs)) => {
                let again = v2c_response(id, status, &vbs);
                prop_assert_eq!(decode_response(&again), Ok((id, status, vbs)));
            }
        }
    }
}

proptest! {
    #![proptest_config(config("snmp_v3_decode", 1))]

    /// A v3 message decodes to a typed error (naming the bad field) or to
    /// fields that the real encoder writes back into a message with the
    /// same fields.
    #[test]
    fn fuzz_snmp_v3_decode((_, b) in input(v3_corpus())) {
        match decode_v3(&b) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(m) => {
                prop_assert!(m.msg_id >= 0 && m.boots <= i32::MAX as u32 && m.time <= i32::MAX as u32);
                let again = reencode_v3(&m);
                let d = decode_v3(&again);
                prop_assert!(d.as_ref().is_ok_and(|d| same_v3(d, &m)), "{:?} vs {:?}", d, m);
            }
        }
    }
}

proptest! {
    #![proptest_config(config("snmp_v3_open", 2))]

    /// The whole receive path of a v3 answer. The seeds open as sent; any
    /// changed byte breaks the HMAC, so a damaged message is never taken
    /// as a Response or an authenticated Report, and never moves the
    /// engine's clock. Never a panic.
    #[test]
    fn fuzz_snmp_v3_open((i, b) in mutated(v3_corpus())) {
        let seeds = v3_corpus();
        let mut e = engine();
        let before = (e.boots, e.time);
        let got = open_v3(&USER, Some(&mut e), MSG_ID, &b);
        if let Ok(Incoming::Report(o, _)) = &got {
            prop_assert!(!report_failure(o, "pantau").to_string().is_empty());
        }
        if b == seeds[i] {
            return Ok(());
        }
        prop_assert!(
            !matches!(got, Ok(Incoming::Response(..)) | Ok(Incoming::Report(_, true))),
            "damaged message accepted: {:?}", got
        );
        prop_assert_eq!((e.boots, e.time), before);
    }
}

#[test]
fn snmp_seeds_decode_as_built() {
    let (id, status, vbs) = decode_response(&v2c_corpus()[0]).unwrap();
    assert_eq!((id, status), (77, 0));
    assert_eq!(vbs, sample_varbinds());
    let mut e = engine();
    assert_eq!(
        open_v3(&USER, Some(&mut e), MSG_ID, &v3_corpus()[0]),
        Ok(Incoming::Response(31, 0, sample_varbinds()))
    );
    assert_eq!(
        open_v3(&USER, Some(&mut e), MSG_ID, &v3_corpus()[3]),
        Ok(Incoming::Report(oid(&format!("{USM_STATS}.4.0")), false))
    );
    let seed = v3_corpus();
    let d = decode_v3(&seed[0]).unwrap();
    assert!(same_v3(&decode_v3(&reencode_v3(&d)).unwrap(), &d));
}
