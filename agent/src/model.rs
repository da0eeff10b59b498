//! Domain types of the agent. Wire types are converted at `wire.rs` only.

use std::time::{Duration, SystemTime};

pub use pantau_core::{Group, Outcome, ProbeKind};

/// Milliseconds since the Unix epoch (negative before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// ICMP round statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingStats {
    /// Echoes sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// RTT of each reply, in send order.
    pub samples: Vec<Duration>,
    /// Min RTT.
    pub min: Duration,
    /// Mean RTT.
    pub avg: Duration,
    /// Max RTT.
    pub max: Duration,
    /// Population standard deviation.
    pub stddev: Duration,
}

/// Agent health carried by heartbeats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Process uptime.
    pub uptime: Duration,
    /// Records waiting for ack.
    pub spool_records: u64,
    /// Bytes waiting for ack.
    pub spool_bytes: u64,
    /// Results dropped this epoch.
    pub dropped: u64,
    /// Estimated collector clock minus agent clock, ms.
    pub clock_offset_ms: i64,
    /// Probes running now.
    pub probes_in_flight: u32,
    /// Corrupt spool bytes skipped this epoch.
    pub corrupt_bytes: u64,
    /// Sequence numbers given up after corruption.
    pub seq_skipped: u64,
}

/// One throughput test (see `probe::bandwidth`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BandwidthResult {
    /// Download rate over the measured window, bit/s.
    pub download_bps: u64,
    /// Upload rate over the measured window, bit/s.
    pub upload_bps: u64,
    /// Bytes received, warm-up included.
    pub download_bytes: u64,
    /// Bytes sent, warm-up included.
    pub upload_bytes: u64,
    /// Measured download window.
    pub download_window: Duration,
    /// Measured upload window.
    pub upload_window: Duration,
    /// Parallel streams per direction.
    pub streams: u32,
    /// Why the test was skipped ("busy", "budget", "gap"); empty when it ran.
    pub skipped: String,
    /// Egress rate seen before the test, bit/s (0 when not checked).
    pub busy_bps: u64,
    /// Bytes used by tests this calendar month (UTC), this one included.
    pub month_bytes: u64,
}

/// One poll of a link's counters (see `probe::link`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkSample {
    /// "snmp" or "local".
    pub source: &'static str,
    /// SNMP ifIndex (0 locally).
    pub if_index: u32,
    /// Interface name.
    pub if_name: String,
    /// Octets in, as read.
    pub in_octets: u64,
    /// Octets out, as read.
    pub out_octets: u64,
    /// 64 or 32.
    pub counter_bits: u32,
    /// sysUpTime in centiseconds (0 locally).
    pub sys_uptime_cs: u64,
    /// ifOperStatus (0 unknown).
    pub oper_status: u32,
    /// Capacity for the ratio, bit/s (0 unknown).
    pub capacity_bps: u64,
    /// Capacity is the configured contracted bandwidth.
    pub contracted: bool,
    /// Seconds covered by the rates; 0 when there is no rate.
    pub interval_seconds: f64,
    /// Inbound rate, bit/s.
    pub in_bps: f64,
    /// Outbound rate, bit/s.
    pub out_bps: f64,
    /// Why there is no rate: "first", "reset", "gap"; empty with a rate.
    pub no_rate: &'static str,
    /// 32-bit wraps corrected.
    pub wraps: u32,
}

/// Kind-specific measurements.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// ICMP.
    Ping(PingStats),
    /// TCP connect time (zero on failure).
    Tcp {
        /// Connect time.
        connect: Duration,
    },
    /// HTTP.
    Http {
        /// Status (0 if none).
        status: u16,
        /// Time to first byte.
        ttfb: Duration,
        /// Total time.
        total: Duration,
        /// Leaf certificate expiry.
        tls_not_after: Option<SystemTime>,
        /// Body bytes read.
        body_bytes: u64,
    },
    /// DNS.
    Dns {
        /// Resolution time.
        resolve: Duration,
        /// Answer records.
        answers: u32,
        /// Response code.
        rcode: u8,
    },
    /// Agent health.
    Heartbeat(Health),
    /// Throughput test.
    Bandwidth(BandwidthResult),
    /// Link counters and utilisation.
    Link(LinkSample),
    /// Traceroute: the path hop by hop.
    Path(PathTrace),
    /// Nothing measured (the probe could not start).
    None,
}

/// What one probe run observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Target id (empty for heartbeats).
    pub target_id: String,
    /// When the probe started (agent clock).
    pub observed_at: SystemTime,
    /// How it ended.
    pub outcome: Outcome,
    /// Failure reason in plain words; empty on success.
    pub detail: String,
    /// Measurements.
    pub measurement: Measurement,
}

impl Observation {
    /// The observation's main duration, for tables: avg RTT, connect, total, resolve.
    pub fn headline(&self) -> Option<Duration> {
        match &self.measurement {
            Measurement::Ping(p) if p.received > 0 => Some(p.avg),
            Measurement::Tcp { connect } if self.outcome == Outcome::Ok => Some(*connect),
            Measurement::Http { total, status, .. } if *status > 0 => Some(*total),
            Measurement::Dns { resolve, .. } if self.outcome == Outcome::Ok => Some(*resolve),
            _ => None,
        }
    }
}

/// An observation numbered for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Spool epoch.
    pub epoch: u64,
    /// Sequence within the epoch.
    pub seq: u64,
    /// Probe kind, or `None` for a heartbeat.
    pub kind: Option<ProbeKind>,
    /// The observation.
    pub obs: Observation,
}

/// One traceroute round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathTrace {
    /// One entry per TTL tried, in TTL order, up to the target or the maximum.
    pub hops: Vec<Hop>,
    /// Whether the target itself answered (then it is the last hop).
    pub reached: bool,
}

/// What answered at one TTL.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// TTL of the probe; 1 is the first router.
    pub ttl: u8,
    /// Who answered, if anyone did in time.
    pub addr: Option<std::net::IpAddr>,
    /// Round-trip time of the answer (kernel receive stamp).
    pub rtt: Option<Duration>,
}
