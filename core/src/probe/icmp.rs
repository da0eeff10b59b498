//! `kind = "icmp"`: echo requests, `count` per round.

use serde::de::MapAccess;

use super::{BadAddress, KindConfig, KindKeys, TargetContext, valid_host};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// The icmp keys of a target.
#[derive(Debug, Clone, Default)]
pub struct IcmpKeys {
    /// Echoes per round; overrides `defaults.icmp_count`.
    pub count: Option<u32>,
}

impl KindKeys for IcmpKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "count" => self.count = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        self.count.is_some().then_some(("count", "count"))
    }
}

/// A validated icmp target.
#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    /// Echoes per round.
    pub count: u32,
}

impl KindConfig for IcmpSpec {
    const KIND: ProbeKind = ProbeKind::Icmp;
    type Keys = IcmpKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_host(a), a, "an IP address or host name")
    }

    fn validate(keys: IcmpKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let count = keys.count.unwrap_or(cx.defaults.icmp_count);
        if !(1..=super::limits::MAX_ICMP_COUNT).contains(&count) {
            p.push(Problem::new(
                cx.key("count"),
                format!(
                    "{count} is out of range; allowed 1 to {}",
                    super::limits::MAX_ICMP_COUNT
                ),
            ));
            return None;
        }
        Some(IcmpSpec { count })
    }
}
