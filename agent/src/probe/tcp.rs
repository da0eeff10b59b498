//! TCP connect probe: time to an established connection.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::us;
use super::{failed, io_outcome, ok, resolve_one};
use crate::model::{Measurement, Observation, Outcome};
use pantau_core::probe::{Target, split_host_port};
use pantau_proto::v1 as pb;

const NONE: Measurement = Measurement::Tcp {
    connect: Duration::ZERO,
};

/// Connect to `host:port` within the target's timeout.
pub async fn probe(t: &Target) -> Observation {
    let Some((host, port)) = split_host_port(&t.address) else {
        return failed(Outcome::Other, format!("bad address {}", t.address), NONE);
    };
    let deadline = Instant::now() + t.timeout;
    let addr = match tokio::time::timeout(t.timeout, resolve_one(host, port)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return failed(Outcome::DnsError, e, NONE),
        Err(_) => {
            return failed(
                Outcome::DnsError,
                format!("resolving {host} timed out"),
                NONE,
            );
        }
    };
    let start = Instant::now();
    let left = deadline.saturating_duration_since(start);
    match tokio::time::timeout(left, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => ok(Measurement::Tcp {
            connect: start.elapsed(),
        }),
        Ok(Err(e)) => failed(io_outcome(&e), format!("connect {addr}: {e}"), NONE),
        Err(_) => failed(
            Outcome::Timeout,
            format!("connect {addr}: no answer in {:?}", t.timeout),
            NONE,
        ),
    }
}

/// The wire form of one connect.
pub(crate) fn to_wire(connect: Duration) -> pb::TcpMeasurement {
    pb::TcpMeasurement {
        connect_us: us(connect),
    }
}
