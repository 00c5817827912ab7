//! The HTTP/1.1 server of `svc serve`: its own accept loop, so that no
//! client can hold a connection, memory or a file descriptor for long
//! without a key.
//!
//! - A connection must send a complete request head within the header
//!   timeout: from when it was accepted (TLS handshake included) for its
//!   first request, from its first byte for the next ones. Trickling bytes
//!   does not extend it. The server follows where each request ends in the
//!   bytes read ([`Framing`]), so a head that started in the same packet as
//!   the previous request, or while that one was answered, counts too: from
//!   the answer to the previous request, if its first byte came before.
//! - Between requests, a kept-alive connection is closed after the idle
//!   timeout. A request being handled has no connection deadline: its body
//!   is read under the body timeout by the handler, after the key is checked.
//! - At most `max_connections` are open. When a new one arrives at the cap,
//!   the oldest connection that is not handling a request is closed to make
//!   room, preferring those that never sent a valid key, so stalled clients
//!   cannot lock out authenticated ones; when every connection is handling
//!   a request, accepting waits.
//! - A request head is buffered in at most [`MAX_HEAD_BYTES`] (larger: 431),
//!   so unauthenticated bytes in flight are at most `max_connections` times
//!   that.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::framing::Framing;

/// The most a request head (request line and headers) may take.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// File descriptors kept for everything but client connections (logs, the
/// store, locks, outgoing token requests).
const RESERVED_FDS: u64 = 128;

/// The connection limits (flags of `svc serve`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Why a connection was closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Closed {
    pub fn name(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
        }
    }
}

/// Where the server reports its connections (the `/metrics` gauges).
pub trait Observer: Send + Sync + 'static {
    fn opened(&self);
    fn closed(&self, by_server: Option<Closed>);
}

/// Raises the soft limit of open files to the hard limit, and returns the
/// soft limit then in force (`None` where it cannot be known).
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
            && current < maximum
        {
            let raised = rustix::process::Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Some(maximum);
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap that fits in `open_files` descriptors, keeping some
/// for the rest of the server.
pub fn connection_cap(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return wanted;
    };
    let fits = open_files.saturating_sub(RESERVED_FDS).max(open_files / 2);
    wanted
        .min(usize::try_from(fits).unwrap_or(usize::MAX))
        .max(1)
}

/// One client connection, as the accept loop and its watchdog see it.
pub struct Connection {
    id: u64,
    accepted: Instant,
    phase: Mutex<Phase>,
    /// It sent a request with a valid key.
    trusted: AtomicBool,
    /// It was asked to close to make room.
    evicted: AtomicBool,
    /// A request head started: its deadline may be earlier than the one
    /// the watchdog sleeps until.
    wake: Notify,
    evict: Notify,
}

struct Phase {
    in_flight: u32,
    served: u64,
    idle_since: Instant,
    /// Where requests end in the bytes read so far.
    framing: Framing,
    /// Request heads begun in the bytes read.
    heads: u64,
    /// Requests handed to the router.
    requests: u64,
    /// When the last head began.
    head_began: Instant,
}

impl Connection {
    fn new(id: u64) -> Connection {
        let now = Instant::now();
        Connection {
            id,
            accepted: now,
            phase: Mutex::new(Phase {
                in_flight: 0,
                served: 0,
                idle_since: now,
                framing: Framing::default(),
                heads: 0,
                requests: 0,
                head_began: now,
            }),
            trusted: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
            evict: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes were read from the client.
    fn received(&self, bytes: &[u8]) {
        let mut phase = self.phase();
        let began = match phase.framing.feed(bytes) {
            Some(began) => began,
            // Framing lost: bytes read between requests start a head, which
            // misses only heads that came with the request before.
            None => u64::from(phase.in_flight == 0 && phase.heads == phase.requests),
        };
        if began > 0 {
            phase.heads += began;
            phase.head_began = Instant::now();
            let idle = phase.in_flight == 0;
            drop(phase);
            if idle {
                self.wake.notify_one();
            }
        }
    }

    fn busy(&self) -> bool {
        self.phase().in_flight > 0
    }

    /// When the server closes this connection unless something changes.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Closed)> {
        let phase = self.phase();
        if phase.in_flight > 0 {
            None
        } else if phase.served == 0 {
            Some((self.accepted + limits.header_timeout, Closed::HeaderTimeout))
        } else if phase.heads > phase.requests {
            let started = phase.head_began.max(phase.idle_since);
            Some((started + limits.header_timeout, Closed::HeaderTimeout))
        } else {
            Some((phase.idle_since + limits.idle_timeout, Closed::IdleTimeout))
        }
    }
}

/// A request being handled on a connection, until its response is ready.
struct Busy(Arc<Connection>);

impl Busy {
    fn new(connection: Arc<Connection>) -> Busy {
        {
            let mut phase = connection.phase();
            phase.in_flight += 1;
            phase.requests += 1;
            if phase.heads < phase.requests {
                // hyper found a request where the framing saw none: it is
                // out of step, so stop trusting it.
                phase.framing.lose();
                phase.heads = phase.requests;
            }
        }
        Busy(connection)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        {
            let mut phase = self.0.phase();
            phase.in_flight = phase.in_flight.saturating_sub(1);
            phase.served += 1;
            phase.idle_since = Instant::now();
        }
        // A head may have started meanwhile: its deadline is now the one.
        self.0.wake.notify_one();
    }
}

tokio::task_local! {
    static CURRENT: Arc<Connection>;
}

/// Marks the connection of the request being handled as authenticated: it
/// is the last to be closed when the server is full. Called by the key
/// check; does nothing outside a connection (in tests of handlers, say).
pub fn mark_authenticated() {
    let _ = CURRENT.try_with(|connection| connection.trusted.store(true, Ordering::Relaxed));
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
        ));
        self.open().insert(connection.id, connection.clone());
        connection
    }

    /// Asks the oldest connection not handling a request to close,
    /// preferring one that never sent a valid key. False if every
    /// connection is handling a request.
    fn evict_one(&self) -> bool {
        let open = self.open();
        let idle = || {
            open.values()
                .filter(|c| !c.evicted.load(Ordering::Relaxed) && !c.busy())
        };
        let victim = idle()
            .find(|c| !c.trusted.load(Ordering::Relaxed))
            .or_else(|| idle().next());
        match victim {
            Some(connection) => {
                connection.evicted.store(true, Ordering::Relaxed);
                connection.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends.
struct Registered<'a>(&'a Registry, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.open().remove(&self.1);
    }
}

/// A stream (TCP, or TLS over it) that tells its connection what bytes
/// arrive.
struct Watched<S> {
    stream: S,
    connection: Arc<Connection>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.connection.received(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router, with each request marking its connection busy until its
/// response is ready.
#[derive(Clone)]
struct Tracked {
    router: TowerToHyperService<Router>,
    connection: Arc<Connection>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.connection.clone());
        let response = self.router.call(request);
        Box::pin(CURRENT.scope(self.connection.clone(), async move {
            let response = response.await;
            drop(busy);
            response
        }))
    }
}

struct Shared {
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http: http1::Builder,
    limits: Limits,
    shutdown: CancellationToken,
    registry: Registry,
    observer: Arc<dyn Observer>,
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting,
/// lets requests in progress finish, and returns when every connection is
/// closed.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    observer: Arc<dyn Observer>,
) {
    let mut http = http1::Builder::new();
    http.max_buf_size(MAX_HEAD_BYTES.max(8192))
        .keep_alive(true)
        .half_close(false);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let shared = Arc::new(Shared {
        router,
        tls,
        http,
        limits,
        shutdown: shutdown.clone(),
        registry: Registry::default(),
        observer,
    });
    let tracker = TaskTracker::new();
    let mut told_accept_error = false;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                // Out of file descriptors, say: wait for connections to close.
                if !told_accept_error {
                    tracing::warn!("cannot accept connections: {e}");
                    told_accept_error = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Some(permit) = make_room(&permits, &shared).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let connection = shared.registry.add();
        let shared = shared.clone();
        tracker.spawn(async move {
            let _registered = Registered(&shared.registry, connection.id);
            shared.observer.opened();
            let closed = serve_connection(stream, connection, &shared).await;
            shared.observer.closed(closed);
            // Out of the registry before the slot is free: the next
            // eviction must not pick a connection that is already gone.
            drop(_registered);
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// A slot for a new connection: at the cap, the oldest idle connection is
/// asked to close (again every 100 ms while none is idle); `None` at shutdown.
async fn make_room(
    permits: &Arc<Semaphore>,
    shared: &Shared,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    loop {
        shared.registry.evict_one();
        tokio::select! {
            _ = shared.shutdown.cancelled() => return None,
            permit = permits.clone().acquire_owned() => return permit.ok(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

fn transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// Serves one connection; returns why the server closed it, if it did.
async fn serve_connection(
    stream: TcpStream,
    connection: Arc<Connection>,
    shared: &Shared,
) -> Option<Closed> {
    let Some(acceptor) = &shared.tls else {
        return drive(stream, connection, shared).await;
    };
    // The handshake counts against the first request's header timeout.
    let deadline = connection.accepted + shared.limits.header_timeout;
    let tls = tokio::select! {
        tls = acceptor.accept(stream) => tls.ok()?,
        _ = tokio::time::sleep_until(deadline) => return Some(Closed::HeaderTimeout),
        _ = connection.evict.notified() => return Some(Closed::Evicted),
        _ = shared.shutdown.cancelled() => return None,
    };
    drive(tls, connection, shared).await
}

/// Runs HTTP/1.1 on a connection, closing it when a deadline passes or it
/// is evicted; at shutdown, closes it unless a request is in progress,
/// which then finishes and is answered.
async fn drive<I>(io: I, connection: Arc<Connection>, shared: &Shared) -> Option<Closed>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = Tracked {
        router: TowerToHyperService::new(shared.router.clone()),
        connection: connection.clone(),
    };
    let io = Watched {
        stream: io,
        connection: connection.clone(),
    };
    let http = shared.http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    let limits = &shared.limits;
    // While a request is handled, look again this often.
    let recheck = limits
        .header_timeout
        .min(limits.idle_timeout)
        .max(Duration::from_millis(100));
    let mut draining = false;
    loop {
        let wake_at = connection
            .deadline(limits)
            .map_or_else(|| Instant::now() + recheck, |(at, _)| at);
        tokio::select! {
            _ = http.as_mut() => return None,
            _ = tokio::time::sleep_until(wake_at) => {
                if let Some((at, why)) = connection.deadline(limits)
                    && at <= Instant::now()
                {
                    return Some(why);
                }
            }
            _ = connection.wake.notified() => {}
            _ = connection.evict.notified() => {
                if !connection.busy() {
                    return Some(Closed::Evicted);
                }
                // It took a request meanwhile: close after its answer.
                http.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = shared.shutdown.cancelled(), if !draining => {
                // Idle, or still sending a head: nothing to finish.
                if !connection.busy() {
                    return None;
                }
                http.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// The TLS acceptor for a PEM certificate chain and key, offering only
/// HTTP/1.1 (the server's timeouts are per HTTP/1.1 connection).
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key: {e}"))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_in_the_open_files_limit() {
        assert_eq!(connection_cap(4096, Some(1_048_576)), 4096);
        assert_eq!(connection_cap(4096, Some(1024)), 896);
        assert_eq!(connection_cap(4096, Some(100)), 50);
        assert_eq!(connection_cap(4096, None), 4096);
        assert_eq!(connection_cap(10, Some(1024)), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase_of_a_connection() {
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 8,
        };
        let connection = Arc::new(Connection::new(0));
        let start = connection.accepted;
        // First request: counted from the accept, bytes or not.
        connection.received(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            connection.deadline(&limits),
            Some((start + limits.header_timeout, Closed::HeaderTimeout))
        );
        connection.received(b"\r\n");
        let busy = Busy::new(connection.clone());
        assert_eq!(connection.deadline(&limits), None);
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(busy);
        let idle = start + Duration::from_secs(100);
        assert_eq!(
            connection.deadline(&limits),
            Some((idle + limits.idle_timeout, Closed::IdleTimeout))
        );
        // The next head: from its first byte, and trickling does not extend it.
        tokio::time::advance(Duration::from_secs(5)).await;
        connection.received(b"G");
        tokio::time::advance(Duration::from_secs(5)).await;
        connection.received(b"ET");
        assert_eq!(
            connection.deadline(&limits),
            Some((idle + Duration::from_secs(15), Closed::HeaderTimeout))
        );
        // A head that began while a request was answered: from the answer.
        connection.received(b" / HTTP/1.1\r\n\r\n");
        let busy = Busy::new(connection.clone());
        connection.received(b"GET / HT");
        assert_eq!(connection.deadline(&limits), None);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(busy);
        assert_eq!(
            connection.deadline(&limits),
            Some((
                Instant::now() + limits.header_timeout,
                Closed::HeaderTimeout
            ))
        );
    }

    #[tokio::test]
    async fn eviction_spares_busy_and_authenticated_connections() {
        let registry = Registry::default();
        let trusted = registry.add();
        trusted.trusted.store(true, Ordering::Relaxed);
        let busy = registry.add();
        let _busy = Busy::new(busy.clone());
        let stalled = registry.add();
        assert!(registry.evict_one());
        // The stalled one was told, the others were not.
        async fn told(c: &Connection) -> bool {
            tokio::time::timeout(Duration::from_millis(10), c.evict.notified())
                .await
                .is_ok()
        }
        assert!(told(&stalled).await);
        assert!(!told(&trusted).await);
        registry.open().remove(&stalled.id);
        assert!(registry.evict_one());
        assert!(told(&trusted).await);
        registry.open().remove(&trusted.id);
        assert!(!registry.evict_one(), "only a busy connection is left");
        assert!(!told(&busy).await);
    }
}
