//! Link utilisation: poll an interface's octet counters (SNMP IF-MIB on the
//! OPD's edge router, or /proc/net/dev when the agent runs on the gateway)
//! and turn two consecutive polls into in/out rates.
//!
//! The rate rules are a pure function ([`rate`]): 32-bit counters that wrapped
//! once are corrected; a counter reset (sysUpTime went back, or a 64-bit
//! counter went back) and a gap (the previous good poll is older than two
//! intervals, or a poll failed in between) give no rate, and say why. Nothing
//! is ever interpolated across them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::snmp::{self, Value};
use super::usm::UserKeys;
use super::{failed, ok};
use crate::model::{LinkSample, Measurement, Observation, Outcome};
use pantau_core::probe::{LinkSource, LinkSpec, SnmpAuth, Target, split_host_port};
use pantau_proto::v1 as pb;

/// Why a link's counters could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// /proc/net/dev cannot be read.
    #[error("cannot read /proc/net/dev: {0}")]
    ProcNetDev(#[source] std::io::Error),
    /// No such local interface.
    #[error("interface {0} is not in /proc/net/dev")]
    NoInterface(String),
    /// The SNMP answer lacks sysUpTime.
    #[error("the router did not return sysUpTime")]
    NoUptime,
    /// The SNMP answer has neither 64- nor 32-bit octet counters.
    #[error("the router has no octet counters for this ifIndex (check if_index)")]
    NoCounters,
}

/// Counters read in one poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Octets in.
    pub in_octets: u64,
    /// Octets out.
    pub out_octets: u64,
    /// 32 or 64.
    pub bits: u32,
    /// Device uptime, centiseconds (None locally).
    pub uptime_cs: Option<u64>,
    /// When the agent read them.
    pub at: Instant,
}

/// The rate between two polls, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Bits per second in and out over `seconds`, with wraps corrected.
    Rate {
        /// Seconds covered.
        seconds: f64,
        /// In, bit/s.
        in_bps: f64,
        /// Out, bit/s.
        out_bps: f64,
        /// Wraps corrected.
        wraps: u32,
    },
    /// No rate, with the reason: "first", "reset" or "gap".
    None(&'static str),
}

/// Difference of a counter of `bits` width; `None` if it went back on a
/// 64-bit counter (a reset, not a wrap). The bool says whether it wrapped.
pub fn counter_delta(prev: u64, cur: u64, bits: u32) -> Option<(u64, bool)> {
    if cur >= prev {
        return Some((cur - prev, false));
    }
    if bits == 32 && prev <= u64::from(u32::MAX) && cur <= u64::from(u32::MAX) {
        return Some(((1u64 << 32) - prev + cur, true));
    }
    None
}

/// The rate from `prev` to `cur`. `max_gap`: the longest interval still
/// counted as consecutive polls. `failed_between`: a poll failed since `prev`.
pub fn rate(
    prev: Option<&Counters>,
    cur: &Counters,
    max_gap: Duration,
    failed_between: bool,
) -> Rate {
    let Some(prev) = prev else {
        return Rate::None(if failed_between { "gap" } else { "first" });
    };
    if prev.bits != cur.bits {
        return Rate::None("reset");
    }
    // Device time when we have it: polls leave the agent late, the router
    // stamps its counters itself.
    let seconds = match (prev.uptime_cs, cur.uptime_cs) {
        (Some(a), Some(b)) if b < a => return Rate::None("reset"),
        (Some(a), Some(b)) => (b - a) as f64 / 100.0,
        _ => cur.at.saturating_duration_since(prev.at).as_secs_f64(),
    };
    let agent_gap = cur.at.saturating_duration_since(prev.at);
    if failed_between || agent_gap > max_gap {
        return Rate::None("gap");
    }
    if seconds <= 0.0 {
        return Rate::None("gap");
    }
    let (Some((din, win)), Some((dout, wout))) = (
        counter_delta(prev.in_octets, cur.in_octets, cur.bits),
        counter_delta(prev.out_octets, cur.out_octets, cur.bits),
    ) else {
        return Rate::None("reset");
    };
    Rate::Rate {
        seconds,
        in_bps: din as f64 * 8.0 / seconds,
        out_bps: dout as f64 * 8.0 / seconds,
        wraps: u32::from(win) + u32::from(wout),
    }
}

/// Read one interface's (rx_bytes, tx_bytes) from /proc/net/dev text.
pub fn parse_proc_net_dev(text: &str, iface: &str) -> Option<(u64, u64)> {
    text.lines().skip(2).find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != iface {
            return None;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (f.len() >= 9).then(|| (f[0], f[8]))
    })
}

/// (rx_bytes, tx_bytes) of a local interface.
pub fn local_counters(iface: &str) -> Result<(u64, u64), LinkError> {
    let text = std::fs::read_to_string("/proc/net/dev").map_err(LinkError::ProcNetDev)?;
    parse_proc_net_dev(&text, iface).ok_or_else(|| LinkError::NoInterface(iface.to_string()))
}

const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";

/// What one SNMP poll read.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmpPoll {
    /// Counters.
    pub in_octets: u64,
    /// Counters.
    pub out_octets: u64,
    /// 64 (ifHC*) or 32.
    pub bits: u32,
    /// sysUpTime.
    pub uptime_cs: u64,
    /// ifHighSpeed in bit/s (or ifSpeed when ifHighSpeed is absent); 0 unknown.
    pub speed_bps: u64,
    /// ifOperStatus.
    pub oper_status: u32,
    /// ifName.
    pub name: String,
}

/// The OIDs asked in one GET, in the order [`interpret`] reads them.
pub fn poll_oids(if_index: u32) -> Vec<Vec<u32>> {
    [
        SYS_UPTIME.to_string(),
        format!("1.3.6.1.2.1.31.1.1.1.6.{if_index}"), // ifHCInOctets
        format!("1.3.6.1.2.1.31.1.1.1.10.{if_index}"), // ifHCOutOctets
        format!("1.3.6.1.2.1.2.2.1.10.{if_index}"),   // ifInOctets
        format!("1.3.6.1.2.1.2.2.1.16.{if_index}"),   // ifOutOctets
        format!("1.3.6.1.2.1.31.1.1.1.15.{if_index}"), // ifHighSpeed (Mbit/s)
        format!("1.3.6.1.2.1.2.2.1.5.{if_index}"),    // ifSpeed (bit/s)
        format!("1.3.6.1.2.1.2.2.1.8.{if_index}"),    // ifOperStatus
        format!("1.3.6.1.2.1.31.1.1.1.1.{if_index}"), // ifName
    ]
    .iter()
    .map(|s| snmp::oid(s))
    .collect()
}

/// Interpret the values of [`poll_oids`]: 64-bit counters when the device has
/// them, else the 32-bit ones.
pub fn interpret(v: &[Value]) -> Result<SnmpPoll, LinkError> {
    let u = |i: usize| match v.get(i) {
        Some(Value::Unsigned(x)) => Some(*x),
        Some(Value::Int(x)) if *x >= 0 => Some(*x as u64),
        _ => None,
    };
    let uptime_cs = u(0).ok_or(LinkError::NoUptime)?;
    let (in_octets, out_octets, bits) = match (u(1), u(2), u(3), u(4)) {
        (Some(i), Some(o), _, _) => (i, o, 64),
        (_, _, Some(i), Some(o)) => (i, o, 32),
        _ => return Err(LinkError::NoCounters),
    };
    let speed_bps = match (u(5), u(6)) {
        (Some(h), _) if h > 0 => h * 1_000_000,
        (_, Some(s)) => s,
        _ => 0,
    };
    let name = match v.get(8) {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).chars().take(64).collect(),
        _ => String::new(),
    };
    Ok(SnmpPoll {
        in_octets,
        out_octets,
        bits,
        uptime_cs,
        speed_bps,
        oper_status: u(7).unwrap_or(0) as u32,
        name,
    })
}

#[derive(Debug, Default)]
struct PrevState {
    prev: Option<Counters>,
    failed_since: bool,
}

/// Polls links and remembers each target's previous counters and, for
/// SNMP v3, its session (keys, discovered engine, salt).
#[derive(Debug, Default)]
pub struct LinkProber {
    state: Mutex<HashMap<String, PrevState>>,
    v3: Mutex<HashMap<String, snmp::V3Session>>,
}

impl LinkProber {
    /// Poll `t` once.
    pub async fn probe(&self, t: &Target, spec: &LinkSpec) -> Observation {
        let read = self.read(t, spec).await;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = st.entry(t.id.clone()).or_default();
        match read {
            Err((outcome, detail)) => {
                entry.prev = None;
                entry.failed_since = true;
                failed(outcome, detail, Measurement::None)
            }
            Ok((cur, mut sample)) => {
                let r = rate(
                    entry.prev.as_ref(),
                    &cur,
                    t.interval * 2,
                    entry.failed_since,
                );
                entry.prev = Some(cur);
                entry.failed_since = false;
                match r {
                    Rate::Rate {
                        seconds,
                        in_bps,
                        out_bps,
                        wraps,
                    } => {
                        sample.interval_seconds = seconds;
                        sample.in_bps = in_bps;
                        sample.out_bps = out_bps;
                        sample.wraps = wraps;
                    }
                    Rate::None(why) => sample.no_rate = why,
                }
                if let Some(c) = spec.contracted_bps {
                    sample.capacity_bps = c;
                    sample.contracted = true;
                }
                ok(Measurement::Link(sample))
            }
        }
    }

    async fn read(
        &self,
        t: &Target,
        spec: &LinkSpec,
    ) -> Result<(Counters, LinkSample), (Outcome, String)> {
        match &spec.source {
            LinkSource::Local => {
                let (rx, tx) =
                    local_counters(&t.address).map_err(|e| (Outcome::Other, e.to_string()))?;
                let cur = Counters {
                    in_octets: rx,
                    out_octets: tx,
                    bits: 64,
                    uptime_cs: None,
                    at: Instant::now(),
                };
                let speed = std::fs::read_to_string(format!("/sys/class/net/{}/speed", t.address))
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .filter(|s| *s > 0)
                    .map_or(0, |m| m as u64 * 1_000_000);
                let oper =
                    std::fs::read_to_string(format!("/sys/class/net/{}/operstate", t.address))
                        .map_or(0, |s| match s.trim() {
                            "up" => 1,
                            "down" => 2,
                            "testing" => 3,
                            "dormant" => 5,
                            "notpresent" => 6,
                            "lowerlayerdown" => 7,
                            _ => 4,
                        });
                Ok((
                    cur,
                    LinkSample {
                        source: "local",
                        if_name: t.address.clone(),
                        in_octets: rx,
                        out_octets: tx,
                        counter_bits: 64,
                        oper_status: oper,
                        capacity_bps: speed,
                        ..LinkSample::default()
                    },
                ))
            }
            LinkSource::Snmp { if_index, auth } => {
                let (host, port) = split_host_port(&t.address).unwrap_or((&t.address, 161));
                let peer = super::resolve_one(host, port)
                    .await
                    .map_err(|e| (Outcome::DnsError, e.to_string()))?;
                let oids = poll_oids(*if_index);
                let got = match auth {
                    SnmpAuth::V2c { community } => {
                        snmp::get(peer, community, &oids, t.timeout).await
                    }
                    SnmpAuth::V3(u) => {
                        // Taken out while the request runs (a target is never
                        // polled twice at once), put back with what it learned.
                        let taken = self
                            .v3
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&t.id);
                        let mut session = taken.unwrap_or_else(|| {
                            snmp::V3Session::new(Arc::new(UserKeys::new(
                                &u.user,
                                u.auth_protocol.into(),
                                &u.auth_password.0,
                                u.priv_protocol.into(),
                                &u.priv_password.0,
                            )))
                        });
                        let r = snmp::get_v3(peer, &mut session, &oids, t.timeout).await;
                        self.v3
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(t.id.clone(), session);
                        r
                    }
                };
                let values = got.map_err(|e| {
                    let o = match &e {
                        snmp::SnmpError::Timeout { .. } => Outcome::Timeout,
                        snmp::SnmpError::Io { source, .. } => super::io_outcome(source),
                        snmp::SnmpError::Protocol { .. } | snmp::SnmpError::Usm { .. } => {
                            Outcome::Other
                        }
                    };
                    (o, e.to_string())
                })?;
                let at = Instant::now();
                let p = interpret(&values).map_err(|e| (Outcome::Other, e.to_string()))?;
                Ok((
                    Counters {
                        in_octets: p.in_octets,
                        out_octets: p.out_octets,
                        bits: p.bits,
                        uptime_cs: Some(p.uptime_cs),
                        at,
                    },
                    LinkSample {
                        source: "snmp",
                        if_index: *if_index,
                        if_name: p.name,
                        in_octets: p.in_octets,
                        out_octets: p.out_octets,
                        counter_bits: p.bits,
                        sys_uptime_cs: p.uptime_cs,
                        oper_status: p.oper_status,
                        capacity_bps: p.speed_bps,
                        ..LinkSample::default()
                    },
                ))
            }
        }
    }
}

/// The wire form of one poll.
pub(crate) fn to_wire(l: &LinkSample) -> pb::LinkMeasurement {
    pb::LinkMeasurement {
        source: l.source.to_string(),
        if_index: l.if_index,
        if_name: l.if_name.clone(),
        in_octets: l.in_octets,
        out_octets: l.out_octets,
        counter_bits: l.counter_bits,
        sys_uptime_cs: l.sys_uptime_cs,
        oper_status: l.oper_status,
        capacity_bps: l.capacity_bps,
        contracted: l.contracted,
        interval_seconds: l.interval_seconds,
        in_bps: l.in_bps,
        out_bps: l.out_bps,
        no_rate: l.no_rate.to_string(),
        wraps: l.wraps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(i: u64, o: u64, bits: u32, up: Option<u64>, at: Instant) -> Counters {
        Counters {
            in_octets: i,
            out_octets: o,
            bits,
            uptime_cs: up,
            at,
        }
    }

    #[test]
    fn plain_rate_uses_device_time() {
        let t0 = Instant::now();
        let gap = Duration::from_secs(120);
        let a = c(1_000, 0, 64, Some(10_000), t0);
        // The agent read 61 s later, the router's clock says 60 s.
        let b = c(
            1_000 + 7_500_000,
            750_000,
            64,
            Some(16_000),
            t0 + Duration::from_secs(61),
        );
        assert_eq!(
            rate(Some(&a), &b, gap, false),
            Rate::Rate {
                seconds: 60.0,
                in_bps: 1_000_000.0,
                out_bps: 100_000.0,
                wraps: 0
            }
        );
    }

    #[test]
    fn thirty_two_bit_wrap_is_corrected_once() {
        let t0 = Instant::now();
        let a = c(u64::from(u32::MAX) - 99, 5, 32, Some(0), t0);
        let b = c(100, 10, 32, Some(100), t0 + Duration::from_secs(1));
        match rate(Some(&a), &b, Duration::from_secs(10), false) {
            Rate::Rate {
                in_bps,
                out_bps,
                wraps,
                ..
            } => {
                assert_eq!(in_bps, 200.0 * 8.0);
                assert_eq!(out_bps, 40.0);
                assert_eq!(wraps, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(counter_delta(10, 5, 64), None);
    }

    #[test]
    fn reset_gap_and_first_give_no_rate() {
        let t0 = Instant::now();
        let gap = Duration::from_secs(120);
        let a = c(5_000, 5_000, 64, Some(900_000), t0);
        // Router rebooted: uptime went back, counters restarted.
        let b = c(10, 10, 64, Some(3_000), t0 + Duration::from_secs(60));
        assert_eq!(rate(Some(&a), &b, gap, false), Rate::None("reset"));
        // 64-bit counter went back without a reboot: also a reset, never a wrap.
        let b = c(10, 6_000, 64, None, t0 + Duration::from_secs(60));
        assert_eq!(rate(Some(&a), &b, gap, false), Rate::None("reset"));
        // Too long since the previous poll.
        let b = c(
            6_000,
            6_000,
            64,
            Some(1_200_000),
            t0 + Duration::from_secs(300),
        );
        assert_eq!(rate(Some(&a), &b, gap, false), Rate::None("gap"));
        // A failed poll in between.
        let b = c(
            6_000,
            6_000,
            64,
            Some(906_000),
            t0 + Duration::from_secs(60),
        );
        assert_eq!(rate(Some(&a), &b, gap, true), Rate::None("gap"));
        assert_eq!(rate(None, &b, gap, true), Rate::None("gap"));
        assert_eq!(rate(None, &b, gap, false), Rate::None("first"));
        // Counters switched from 64 to 32 bits (agent reconfigured): no rate.
        let b = c(
            6_000,
            6_000,
            32,
            Some(906_000),
            t0 + Duration::from_secs(60),
        );
        assert_eq!(rate(Some(&a), &b, gap, false), Rate::None("reset"));
    }

    #[test]
    fn proc_net_dev_lines() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
 lo: 1234 10 0 0 0 0 0 0 1234 10 0 0 0 0 0 0\n  \
 eth0: 98765 100 0 0 0 0 0 0 4321 50 0 0 0 0 0 0\n";
        assert_eq!(parse_proc_net_dev(text, "eth0"), Some((98765, 4321)));
        assert_eq!(parse_proc_net_dev(text, "lo"), Some((1234, 1234)));
        assert_eq!(parse_proc_net_dev(text, "eth1"), None);
    }

    #[test]
    fn snmp_values_fall_back_to_32_bit_counters_and_if_speed() {
        let v = vec![
            Value::Unsigned(500),
            Value::Missing,
            Value::Missing,
            Value::Unsigned(7),
            Value::Unsigned(8),
            Value::Missing,
            Value::Unsigned(10_000_000),
            Value::Int(1),
            Value::Bytes(b"ether1".to_vec()),
        ];
        let p = interpret(&v).unwrap();
        assert_eq!((p.in_octets, p.out_octets, p.bits), (7, 8, 32));
        assert_eq!(p.speed_bps, 10_000_000);
        assert_eq!((p.oper_status, p.name.as_str()), (1, "ether1"));
        let mut v64 = v.clone();
        v64[1] = Value::Unsigned(1 << 40);
        v64[2] = Value::Unsigned(3);
        v64[5] = Value::Unsigned(100);
        let p = interpret(&v64).unwrap();
        assert_eq!(
            (p.in_octets, p.bits, p.speed_bps),
            (1 << 40, 64, 100_000_000)
        );
        let none = vec![Value::Unsigned(1); 1];
        assert!(interpret(&none).is_err());
        assert_eq!(
            interpret(&none).unwrap_err().to_string(),
            "the router has no octet counters for this ifIndex (check if_index)"
        );
        assert_eq!(
            interpret(&[]).unwrap_err().to_string(),
            "the router did not return sysUpTime"
        );
        assert_eq!(
            local_counters("no-such-if0").unwrap_err().to_string(),
            "interface no-such-if0 is not in /proc/net/dev"
        );
    }
}
