//! `kind = "bandwidth"`: a throughput test against the collector or a plain
//! HTTP server, set up in `[targets.bandwidth]`. The limits shared by every
//! test (`[bandwidth]`) belong to the agent's own configuration.

/// The `direction` label of each rate a bandwidth result carries.
pub const RATE_KEYS: [(&str, &str); 2] = [("download", "download_bps"), ("upload", "upload_bps")];

use std::time::Duration;

use serde::Deserialize;
use serde::de::MapAccess;

use super::{BadAddress, KindConfig, KindKeys, TargetContext, valid_http_url, valid_ifname};
use crate::confload::{self, Problem};
use crate::kind::ProbeKind;

/// `[targets.bandwidth]` (its name appears in type errors, so it stays).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBandwidthTest {
    /// "collector" (address is the collector's HTTP base URL, the agent token is sent)
    /// or "http" (address is a URL to download; `upload_url` to POST to).
    pub server: Option<String>,
    /// "download", "upload" or "both".
    pub direction: Option<String>,
    /// Parallel streams per direction.
    pub streams: Option<u32>,
    /// Most bytes per direction per test, e.g. "50MB".
    pub max_bytes: Option<String>,
    /// Longest time per direction, warm-up included.
    pub max_duration: Option<String>,
    /// Start of each direction not counted (TCP slow start, shaper bursts).
    pub warmup: Option<String>,
    /// server = "http": URL that accepts a POST body for the upload test.
    pub upload_url: Option<String>,
    /// Interface whose /proc/net/dev counters show whether the link is busy.
    pub busy_interface: Option<String>,
    /// Skip the test when that interface carries more than this many Mbit/s.
    pub busy_threshold_mbps: Option<f64>,
}

/// The bandwidth keys of a target.
#[derive(Debug, Clone, Default)]
pub struct BandwidthKeys {
    /// `[targets.bandwidth]`.
    pub table: Option<RawBandwidthTest>,
}

impl KindKeys for BandwidthKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "bandwidth" => self.table = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        self.table
            .is_some()
            .then_some(("bandwidth", "[targets.bandwidth]"))
    }
}

/// Which way a bandwidth test measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server to agent.
    Download,
    /// Agent to server.
    Upload,
    /// Download, then upload.
    Both,
}

/// A validated bandwidth test.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthSpec {
    /// True: the collector's endpoint with the agent token; false: a plain HTTP URL.
    pub collector: bool,
    /// Which way.
    pub direction: Direction,
    /// Parallel streams per direction.
    pub streams: u32,
    /// Byte cap per direction.
    pub max_bytes: u64,
    /// Duration cap per direction, warm-up included.
    pub max_duration: Duration,
    /// Discarded start of each direction.
    pub warmup: Duration,
    /// Upload URL for server = "http".
    pub upload_url: Option<String>,
    /// Interface checked for existing load, with the threshold in bit/s.
    pub busy: Option<(String, u64)>,
}

impl KindConfig for BandwidthSpec {
    const KIND: ProbeKind = ProbeKind::Bandwidth;
    type Keys = BandwidthKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_http_url(a), a, "an http:// or https:// URL")
    }

    fn validate(keys: BandwidthKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let raw = keys.table.unwrap_or_default();
        let before = p.len();
        let k = |s: &str| cx.key(&format!("bandwidth.{s}"));
        let collector = match raw.server.as_deref().unwrap_or("collector") {
            "collector" => true,
            "http" => false,
            other => {
                p.push(Problem::new(
                    k("server"),
                    format!("`{other}` is not one of collector, http"),
                ));
                true
            }
        };
        let direction = match raw.direction.as_deref().unwrap_or("both") {
            "download" => Direction::Download,
            "upload" => Direction::Upload,
            "both" => Direction::Both,
            other => {
                p.push(Problem::new(
                    k("direction"),
                    format!("`{other}` is not one of download, upload, both"),
                ));
                Direction::Both
            }
        };
        if !collector && direction != Direction::Download && raw.upload_url.is_none() {
            p.push(Problem::new(
                k("upload_url"),
                "server = \"http\" needs upload_url to test upload; or set direction = \"download\"",
            ));
        }
        if let Some(u) = &raw.upload_url
            && let Err(e) = Self::check_address(u)
        {
            p.push(Problem::new(k("upload_url"), e.to_string()));
        }
        let streams = confload::bounded(p, &k("streams"), raw.streams, 4, 1, 32) as u32;
        let max_bytes = match confload::parse_size(raw.max_bytes.as_deref().unwrap_or("100MB")) {
            Some(b) if (1 << 16..=1 << 40).contains(&b) => b,
            _ => {
                p.push(Problem::new(
                    k("max_bytes"),
                    "not a size between 64KiB and 1TiB; write e.g. \"100MB\"",
                ));
                0
            }
        };
        let max_duration = confload::duration(
            &k("max_duration"),
            raw.max_duration.as_deref().unwrap_or("10s"),
            Duration::from_secs(1),
            Duration::from_secs(60),
            p,
        )
        .unwrap_or(Duration::from_secs(10));
        let warmup = confload::duration(
            &k("warmup"),
            raw.warmup.as_deref().unwrap_or("2s"),
            Duration::ZERO,
            Duration::from_secs(30),
            p,
        )
        .unwrap_or(Duration::from_secs(2));
        if warmup >= max_duration {
            p.push(Problem::new(
                k("warmup"),
                "must be shorter than max_duration, or nothing is measured",
            ));
        }
        let busy = match (raw.busy_interface, raw.busy_threshold_mbps) {
            (None, None) => None,
            (Some(i), Some(t)) if t > 0.0 && t.is_finite() && valid_ifname(&i) => {
                Some((i, (t * 1e6) as u64))
            }
            _ => {
                p.push(Problem::new(
                    k("busy_interface"),
                    "set busy_interface (an interface name) and busy_threshold_mbps (> 0) together",
                ));
                None
            }
        };
        (p.len() == before).then_some(BandwidthSpec {
            collector,
            direction,
            streams,
            max_bytes,
            max_duration,
            warmup,
            upload_url: raw.upload_url,
            busy,
        })
    }
}
