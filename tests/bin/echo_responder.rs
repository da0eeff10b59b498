//! A user-space ICMP echo responder with a configured delay: the emulated
//! link latency for the accuracy tests (this kernel has no netem).
//!
//! Usage: `echo_responder DELAY_MS` inside a namespace whose kernel echo
//! replies are off (`net.ipv4.icmp_echo_ignore_all=1`). Each echo request is
//! answered `DELAY_MS` after it was read. Prints `ready` once listening.
//! Run it with a real-time priority (`chrt -f`) so that a CPU burner delays
//! the probe under test, not the reference.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo reply for an IPv4 packet holding an echo request, with its sender.
fn reply(packet: &[u8]) -> Option<(Ipv4Addr, Vec<u8>)> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != 8 || icmp[1] != 0 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let mut out = icmp.to_vec();
    out[0] = 0;
    out[2] = 0;
    out[3] = 0;
    let c = checksum(&out);
    out[2..4].copy_from_slice(&c.to_be_bytes());
    Some((src, out))
}

fn main() {
    let delay_ms: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: echo_responder DELAY_MS");
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .expect("raw ICMP socket (needs root)");
    let sender = sock.try_clone().expect("clone socket");
    // Constant delay: replies are due in arrival order, so a FIFO suffices.
    let (tx, rx) = mpsc::channel::<(Instant, Ipv4Addr, Vec<u8>)>();
    std::thread::spawn(move || {
        for (due, to, pkt) in rx {
            let now = Instant::now();
            if due > now + Duration::from_micros(300) {
                std::thread::sleep(due - now - Duration::from_micros(300));
            }
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            let _ = sender.send_to(&pkt, &SockAddr::from(SocketAddrV4::new(to, 0)));
        }
    });
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut buf = [0u8; 2048];
    loop {
        let n = match (&sock).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e}"),
        };
        let at = Instant::now();
        if let Some((to, pkt)) = reply(&buf[..n])
            && tx.send((at + delay, to, pkt)).is_err()
        {
            return;
        }
    }
}
