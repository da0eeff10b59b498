//! Connection limits for accepted TCP streams, shared by the HTTP port and
//! (wired by the caller) the gRPC port.
//!
//! [`Incoming`] wraps a bound [`TcpListener`] into a `Stream` of
//! [`Limited`] connections, usable as tonic's `serve_with_incoming` and by
//! the HTTP accept loop in `web::serve`:
//!
//! - at most [`Limits::per_source`] connections per source IP and
//!   [`Limits::total`] in all; a connection over a cap is accepted and
//!   closed at once (so the kernel backlog never fills with them) and
//!   counted in [`Limiter::refused`];
//! - a connection with no byte read or written for [`Limits::idle`] fails
//!   its next read with `TimedOut`, which closes it (an idle socket costs
//!   one file descriptor until then, never more).
//!
//! Accept errors (for example EMFILE) are logged and retried after a short
//! pause instead of ending the stream.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Caps of one listening port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most open connections from one source IP address.
    pub per_source: usize,
    /// Most open connections in all.
    pub total: usize,
    /// Close a connection after this long without a byte either way
    /// (`None`: never).
    pub idle: Option<Duration>,
}

impl Limits {
    /// The HTTP port: Prometheus, a few admins and one bandwidth test per
    /// agent at a time. The idle limit is generous because a long report is
    /// computed before its first byte is written; hyper's header-read
    /// timeout closes idle keep-alive connections much earlier.
    pub const HTTP: Limits = Limits {
        per_source: 64,
        total: 1024,
        idle: Some(Duration::from_secs(300)),
    };
    /// The gRPC port: one stream per agent, several agents behind one OPD's
    /// NAT address; h2 keep-alive pings (every 60 s) count as traffic.
    pub const GRPC: Limits = Limits {
        per_source: 128,
        total: 2048,
        idle: Some(Duration::from_secs(300)),
    };
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// The source already has its share.
    #[error(
        "{peer} sudah membuka {open} koneksi (batas per sumber) / already has {open} connections open (per-source limit)"
    )]
    PerSource {
        /// The source address.
        peer: IpAddr,
        /// Its open connections.
        open: usize,
    },
    /// The port is full.
    #[error("{open} koneksi terbuka (batas total) / {open} connections open (total limit)")]
    Total {
        /// Open connections in all.
        open: usize,
    },
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
    refused: u64,
}

/// What a port's limiter reports to `/metrics`
/// (`pantau_connections_open{port}`, `pantau_connections_refused_total{port,reason}`).
#[derive(Clone, Debug)]
pub struct PortCounters {
    /// Connections open now.
    pub open: prometheus::IntGauge,
    /// Refused: the source had its share.
    pub refused_per_source: prometheus::IntCounter,
    /// Refused: the port was full.
    pub refused_total: prometheus::IntCounter,
}

/// Counts open connections against [`Limits`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Limiter {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
    counters: Option<PortCounters>,
}

impl Limiter {
    /// A limiter with no connection open.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            counts: Arc::default(),
            counters: None,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counters stay consistent even if a holder panicked: every
        // update is a single step.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `source`, held until the
    /// [`Permit`] is dropped.
    pub fn try_acquire(&self, source: IpAddr) -> Result<Permit, Refused> {
        let mut c = self.counts();
        let refused = if c.total >= self.limits.total {
            Some(Refused::Total { open: c.total })
        } else {
            let open = c.per_source.get(&source).copied().unwrap_or(0);
            (open >= self.limits.per_source).then_some(Refused::PerSource { peer: source, open })
        };
        if let Some(r) = refused {
            c.refused += 1;
            if let Some(m) = &self.counters {
                match r {
                    Refused::PerSource { .. } => m.refused_per_source.inc(),
                    Refused::Total { .. } => m.refused_total.inc(),
                }
            }
            return Err(r);
        }
        c.total += 1;
        *c.per_source.entry(source).or_insert(0) += 1;
        if let Some(m) = &self.counters {
            m.open.set(c.total as i64);
        }
        Ok(Permit {
            limiter: self.clone(),
            source,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Connections open now from `source`.
    pub fn open_from(&self, source: IpAddr) -> usize {
        self.counts().per_source.get(&source).copied().unwrap_or(0)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.counts().refused
    }
}

/// One connection's place in a [`Limiter`].
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
    source: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(m) = &self.limiter.counters {
            m.open.set(c.total as i64);
        }
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

/// An accepted connection holding its [`Permit`], closed when idle.
#[derive(Debug)]
pub struct Limited<S> {
    io: S,
    peer: SocketAddr,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    _permit: Permit,
}

impl<S> Limited<S> {
    /// Wrap `io` from `peer`, holding `permit`; idle after `idle`.
    pub fn new(io: S, peer: SocketAddr, permit: Permit, idle: Option<Duration>) -> Self {
        Limited {
            io,
            peer,
            idle: idle.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            _permit: permit,
        }
    }

    /// The remote address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Traffic seen: push the idle deadline back.
    fn active(&mut self) {
        if let Some((d, t)) = &mut self.idle {
            t.as_mut().reset(Instant::now() + *d);
        }
    }

    /// Nothing ready: has the idle deadline passed?
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.idle {
            Some((_, t)) => t.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    fn idle_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connection from {} idle too long", self.peer),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(self.idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, data) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            // A peer that never reads what we send is idle too.
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(self.idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(self.idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// tonic reads the peer address of a request from here (agent logs and
/// sessions keep working through the limiter).
impl tonic::transport::server::Connected for Limited<TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Raise this process's soft limit of open files to its hard limit (the
/// caps above assume a few thousand descriptors; many systems start
/// processes at a soft 1024). Returns the soft limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// Pause after an accept error (EMFILE and friends) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listener's accepted connections within a [`Limiter`]'s caps.
#[derive(Debug)]
pub struct Incoming {
    listener: TcpListener,
    limiter: Limiter,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl Incoming {
    /// Accept on `listener` within `limits`.
    pub fn new(listener: TcpListener, limits: Limits) -> Incoming {
        Incoming {
            listener,
            limiter: Limiter::new(limits),
            backoff: None,
        }
    }

    /// Report open and refused connections to `counters`.
    pub fn with_counters(mut self, counters: PortCounters) -> Incoming {
        self.limiter.counters = Some(counters);
        self
    }

    /// The limiter (for counts in tests and metrics).
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection within the caps; never ends.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Limited<TcpStream>> {
        loop {
            if let Some(b) = &mut self.backoff {
                ready!(b.as_mut().poll(cx));
                self.backoff = None;
            }
            match ready!(self.listener.poll_accept(cx)) {
                Ok((stream, peer)) => match self.limiter.try_acquire(peer.ip()) {
                    Ok(permit) => {
                        let idle = self.limiter.limits.idle;
                        return Poll::Ready(Limited::new(stream, peer, permit, idle));
                    }
                    Err(reason) => {
                        // Dropping the stream closes it now.
                        tracing::debug!(peer = %peer, reason = %reason, "connection refused");
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<Limited<TcpStream>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_accept(cx).map(|c| Some(Ok(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    #[test]
    fn caps_per_source_and_in_total_and_frees_on_drop() {
        let l = Limiter::new(Limits {
            per_source: 2,
            total: 3,
            idle: None,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let _p2 = l.try_acquire(a).unwrap();
        assert_eq!(
            l.try_acquire(a).unwrap_err(),
            Refused::PerSource { peer: a, open: 2 }
        );
        let _p3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(c).unwrap_err(), Refused::Total { open: 3 });
        assert_eq!((l.open(), l.open_from(a), l.refused()), (3, 2, 2));
        drop(p1);
        assert_eq!((l.open(), l.open_from(a)), (2, 1));
        let _p4 = l.try_acquire(c).unwrap();
    }

    #[tokio::test]
    async fn over_the_cap_is_closed_and_idle_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Incoming::new(
            listener,
            Limits {
                per_source: 1,
                total: 10,
                idle: Some(Duration::from_millis(300)),
            },
        );
        let limiter = incoming.limiter().clone();
        let server = tokio::spawn(async move {
            while let Some(Ok(mut conn)) = incoming.next().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    // Echo until the peer closes or the idle limit hits.
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"hi").await.unwrap();
        let mut two = [0u8; 2];
        first.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"hi");
        // The second from the same source is closed at once.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 8];
        let n = second.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "over the per-source cap: closed without data");
        assert_eq!(limiter.refused(), 1);
        // The first, now idle, is closed by the server.
        let n = tokio::time::timeout(Duration::from_secs(20), first.read(&mut buf))
            .await
            .expect("idle connection closed within the deadline")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // Its permit is back (the server side drops it just after closing).
        let deadline = Instant::now() + Duration::from_secs(20);
        while limiter.open() > 0 {
            assert!(Instant::now() < deadline, "permit never released");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"ok").await.unwrap();
        third.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ok");
        server.abort();
    }
}
