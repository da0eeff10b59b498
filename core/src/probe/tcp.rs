//! `kind = "tcp"`: a connect to `host:port`; no keys of its own.

use super::{BadAddress, KindConfig, NoKeys, TargetContext, split_host_port, valid_host};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// A validated tcp target: the address says it all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TcpSpec;

impl KindConfig for TcpSpec {
    const KIND: ProbeKind = ProbeKind::Tcp;
    type Keys = NoKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(
            split_host_port(a).is_some_and(|(h, _)| valid_host(h)),
            a,
            "host:port (IPv6: [addr]:port)",
        )
    }

    fn validate(_: NoKeys, _: &TargetContext<'_>, _: &mut Vec<Problem>) -> Option<Self> {
        Some(TcpSpec)
    }
}
