//! `kind = "traceroute"`: echo requests with increasing TTL; no keys of its own.

use super::{BadAddress, KindConfig, NoKeys, TargetContext, valid_host};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// A validated traceroute target: the address says it all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TracerouteSpec;

impl KindConfig for TracerouteSpec {
    const KIND: ProbeKind = ProbeKind::Traceroute;
    type Keys = NoKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_host(a), a, "an IP address or host name")
    }

    fn validate(_: NoKeys, _: &TargetContext<'_>, _: &mut Vec<Problem>) -> Option<Self> {
        Some(TracerouteSpec)
    }
}
