//! Starting and stopping a server: the accept thread, the connection threads and their bound,
//! the staging janitor, and graceful shutdown.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as SocketShutdown, SocketAddr, TcpListener, TcpStream,
};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_protocol::{ErrorCode, ServerConnection, Timestamp};
use ferry_transport::RateLimit;

use crate::config::{Engine, ServerConfig};
use crate::connection;
use crate::events::{Dispatcher, EventEngine};
use crate::metrics::scrape::ScrapeListener;
use crate::metrics::{Metrics, Refusal};
use crate::seed_compat::{self, SeedListener};
use crate::session::Context;
use crate::store::Store;
use crate::store::folder::Storage;
use crate::store::s3::S3Store;
use crate::store::timed::TimedStore;

/// Stack of a connection thread: its buffers live on the heap, so a small stack suffices and a
/// thousand threads stay cheap.
const CONNECTION_STACK: usize = 512 * 1024;

/// Pending connections the kernel queues before the accept thread takes them.
const LISTEN_BACKLOG: i32 = 1024;

/// Most threads at once that politely refuse connections past the limit; past this, refused
/// connections are closed right after one non-blocking write.
const MAX_REFUSERS: usize = 32;

/// How long a refusing thread lets the client read the refusal before closing.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// State every thread of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<ServerConfig>,
    /// Where the files live.
    pub(crate) store: Arc<dyn Store>,
    /// The canonical local state folder (the folder backend's root).
    root: std::path::PathBuf,
    started: Instant,
    pub(crate) shutdown: ShutdownSignal,
    connections: Counter,
    refusers: AtomicUsize,
    /// What the server counts, for the scrape listener.
    pub(crate) metrics: Arc<Metrics>,
    /// The overall rate limit every connection shares (`ServerConfig::limit_rate`).
    rate_limit: Option<RateLimit>,
}

impl Shared {
    /// Takes a seat for a client at `ip` under the connection limits, or says which is full.
    pub(crate) fn try_seat(self: &Arc<Self>, ip: IpAddr) -> Result<Seat, Full> {
        let config = &self.config;
        self.connections
            .try_enter(ip, config.max_connections, config.max_connections_per_ip)?;
        self.metrics.handle_connection_opened();
        Ok(Seat(Arc::clone(self), ip))
    }

    /// The rate limits of a new connection: one of its own and the one all share, as set.
    pub(crate) fn rate_limits(&self) -> Vec<RateLimit> {
        let own = self.config.limit_rate_per_connection.map(RateLimit::new);
        own.into_iter().chain(self.rate_limit.clone()).collect()
    }

    /// What the sessions of this server share.
    pub(crate) fn context(&self) -> Context {
        Context {
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            epoch: self.started,
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// The instant a protocol timestamp stands for.
    pub(crate) fn instant(&self, at: Timestamp) -> Instant {
        self.started + Duration::from_micros(at.as_micros())
    }

    /// The protocol's clock: microseconds since the server started.
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_micros(
            u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        )
    }
}

/// Shutdown: a flag, the end of the grace period, and a wake-up for sleeping threads: the
/// janitor's sleep, and the reads of connections waiting for their client (their read side is
/// shut, which ends the read at once; the connection then sees the flag).
#[derive(Debug, Default)]
pub(crate) struct ShutdownSignal {
    stopping: AtomicBool,
    grace_end: OnceLock<Instant>,
    lock: Mutex<()>,
    wake: Condvar,
    connections: Mutex<HashMap<u64, Registered>>,
    next_id: AtomicU64,
    /// The event loops' wake-ups (events engine): they look at the flag themselves.
    loops: Mutex<Vec<Arc<mio::Waker>>>,
}

/// A connection's socket, to wake its thread at shutdown.
#[derive(Debug)]
struct Registered {
    socket: TcpStream,
    busy: Arc<AtomicBool>,
}

/// A connection's place in the shutdown's wake-up list; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct Wake<'a> {
    signal: &'a ShutdownSignal,
    id: u64,
    busy: Arc<AtomicBool>,
}

impl Wake<'_> {
    /// Says whether a transfer is under way: shutdown wakes idle connections at once, busy
    /// ones only when the grace period ends.
    pub(crate) fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Release);
    }
}

impl Drop for Wake<'_> {
    fn drop(&mut self) {
        self.signal.lock_connections().remove(&self.id);
    }
}

impl ShutdownSignal {
    /// Whether the server is shutting down (no new requests).
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Whether the grace period for transfers under way is over.
    pub(crate) fn is_past_grace(&self) -> bool {
        self.grace_end
            .get()
            .is_some_and(|end| Instant::now() >= *end)
    }

    fn begin(&self, grace: Duration) {
        let _ = self.grace_end.set(Instant::now() + grace);
        self.stopping.store(true, Ordering::Release);
        self.wake_connections(false);
        self.wake_loops();
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_all();
    }

    /// Puts a connection's socket on the wake-up list.
    pub(crate) fn register(&self, socket: &TcpStream) -> io::Result<Wake<'_>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicBool::new(false));
        let registered = Registered {
            socket: socket.try_clone()?,
            busy: Arc::clone(&busy),
        };
        self.lock_connections().insert(id, registered);
        Ok(Wake {
            signal: self,
            id,
            busy,
        })
    }

    /// Adds an event loop to wake when the shutdown begins and when its grace period ends.
    pub(crate) fn add_waker(&self, waker: Arc<mio::Waker>) {
        self.loops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waker);
    }

    fn wake_loops(&self) {
        for waker in self
            .loops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = waker.wake();
        }
    }

    /// Ends the reads of the connections waiting for their clients (with `busy`, also of those
    /// with a transfer under way).
    fn wake_connections(&self, busy: bool) {
        if busy {
            self.wake_loops();
        }
        for registered in self.lock_connections().values() {
            if busy || !registered.busy.load(Ordering::Acquire) {
                let _ = registered.socket.shutdown(SocketShutdown::Read);
            }
        }
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Registered>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `timeout`; returns whether the server is stopping.
    fn sleep(&self, timeout: Duration) -> bool {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_stopping() {
            return true;
        }
        let _ = self.wake.wait_timeout(guard, timeout);
        self.is_stopping()
    }
}

/// Number of live connections, in all and per address, and a way to wait for none.
#[derive(Debug, Default)]
struct Counter {
    live: Mutex<Live>,
    changed: Condvar,
}

/// The connections being served.
#[derive(Debug, Default)]
struct Live {
    total: usize,
    /// Per client address; an address leaves the map with its last connection.
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection got no seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The server serves `max_connections` already.
    Server,
    /// The client's address has `max_connections_per_ip` already.
    Address,
}

impl Full {
    /// What the refused client is told.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Full::Server => "server busy: too many connections; try again later",
            Full::Address => {
                "server busy: too many connections from your address; close some or try again later"
            }
        }
    }
}

impl Counter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_enter(
        &self,
        ip: IpAddr,
        max: usize,
        max_per_ip: Option<NonZeroUsize>,
    ) -> Result<(), Full> {
        let mut live = self.lock();
        if live.total >= max {
            return Err(Full::Server);
        }
        let from_ip = live.per_ip.entry(ip).or_default();
        if max_per_ip.is_some_and(|max| *from_ip >= max.get()) {
            if *from_ip == 0 {
                live.per_ip.remove(&ip);
            }
            return Err(Full::Address);
        }
        *from_ip += 1;
        live.total += 1;
        Ok(())
    }

    fn leave(&self, ip: IpAddr) {
        let mut live = self.lock();
        live.total = live.total.saturating_sub(1);
        if let Some(from_ip) = live.per_ip.get_mut(&ip) {
            *from_ip = from_ip.saturating_sub(1);
            if *from_ip == 0 {
                live.per_ip.remove(&ip);
            }
        }
        self.changed.notify_all();
    }

    /// Waits until no connection is left or `deadline` passes; returns how many are left.
    fn wait_empty(&self, deadline: Instant) -> usize {
        let mut live = self.lock();
        while live.total > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            live = self
                .changed
                .wait_timeout(live, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        live.total
    }
}

/// Leaves the connection count when the connection ends, even by a panic.
pub(crate) struct Seat(Arc<Shared>, IpAddr);

impl Seat {
    /// The server this seat is in.
    pub(crate) fn shared(&self) -> &Shared {
        &self.0
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.metrics.handle_connection_closed();
        self.0.connections.leave(self.1);
    }
}

/// The ferry server. Call [`Server::start`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the storage root (creating it if needed, removing partial uploads past their age),
    /// binds the listen address and starts accepting in a background thread. Returns at once.
    pub fn start(config: ServerConfig) -> io::Result<ServerHandle> {
        let (store, root) = open_store(&config)?;
        Server::start_over(config, store, root)
    }

    /// Like [`Server::start`], over `store` instead of the folder or bucket the configuration
    /// names (an in-memory store in tests, say): [`ServerConfig::root`],
    /// [`ServerConfig::object_store`] and [`ServerConfig::quota`] are not used (the store has its
    /// own limits, and [`ServerHandle::root`] gives the root as configured); every other setting
    /// applies as usual.
    pub fn start_with_store(
        config: ServerConfig,
        store: Arc<dyn Store>,
    ) -> io::Result<ServerHandle> {
        let root = config.root.clone();
        Server::start_over(config, store, root)
    }

    /// Starts serving `store`, whose local state folder is `root`.
    fn start_over(
        config: ServerConfig,
        store: Arc<dyn Store>,
        root: std::path::PathBuf,
    ) -> io::Result<ServerHandle> {
        let metrics = Arc::new(Metrics::default());
        let store: Arc<dyn Store> = Arc::new(TimedStore::new(store, Arc::clone(&metrics)));
        let listener = listen(config.listen)?;
        let local_addr = listener.local_addr()?;
        let seed_listener = config
            .seed_compat
            .as_ref()
            .map(seed_compat::bind)
            .transpose()?;
        tracing::info!(
            listen = %local_addr,
            store = %store.describe(),
            max_connections = config.max_connections,
            "ferryd started"
        );
        let rate_limit = config.limit_rate.map(RateLimit::new);
        let shared = Arc::new(Shared {
            config: Arc::new(config),
            store,
            root,
            started: Instant::now(),
            shutdown: ShutdownSignal::default(),
            connections: Counter::default(),
            refusers: AtomicUsize::new(0),
            metrics,
            rate_limit,
        });
        let janitor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("ferry-janitor".into())
                .spawn(move || janitor(&shared))?
        };
        let events = match shared.config.engine {
            Engine::Threads => None,
            Engine::Events => match EventEngine::start(&shared) {
                Ok(engine) => Some(engine),
                Err(error) => {
                    shared.shutdown.begin(Duration::ZERO);
                    let _ = janitor.join();
                    return Err(error);
                }
            },
        };
        let accept = {
            let shared = Arc::clone(&shared);
            let mut dispatcher = events.as_ref().map(EventEngine::dispatcher);
            thread::Builder::new()
                .name("ferry-accept".into())
                .spawn(move || accept_loop(&shared, &listener, dispatcher.as_mut()))
        };
        let accept = match accept {
            Ok(accept) => accept,
            Err(error) => {
                shared.shutdown.begin(Duration::ZERO);
                let _ = janitor.join();
                return Err(error);
            }
        };
        let mut handle = ServerHandle {
            shared,
            local_addr,
            accept: Some(accept),
            events,
            janitor: Some(janitor),
            seed: None,
            scrape: None,
        };
        if let Some(listener) = seed_listener {
            // On failure, dropping the handle shuts the server down.
            handle.seed = Some(SeedListener::start(&handle.shared, listener)?);
        }
        if let Some(addr) = handle.shared.config.metrics {
            handle.scrape = Some(ScrapeListener::start(&handle.shared, addr)?);
        }
        Ok(handle)
    }
}

/// A running server. Dropping it shuts it down as [`ServerHandle::shutdown`] does.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    /// The event loops and their pool, with `Engine::Events`.
    events: Option<EventEngine>,
    janitor: Option<JoinHandle<()>>,
    seed: Option<SeedListener>,
    scrape: Option<ScrapeListener>,
}

impl ServerHandle {
    /// What the server's drivers share (for the drivers' own unit tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The address the server listens on (with the real port when it was started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the seed-compatibility listener, if it is on (with the real port when
    /// it was started on port 0).
    pub fn seed_compat_addr(&self) -> Option<SocketAddr> {
        self.seed.as_ref().map(SeedListener::local_addr)
    }

    /// The address of the metrics listener, if it is on (with the real port when it was
    /// started on port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.scrape.as_ref().map(ScrapeListener::local_addr)
    }

    /// The canonical storage root (for a server started over a given store, the root as
    /// configured).
    pub fn root(&self) -> &std::path::Path {
        &self.shared.root
    }

    /// Graceful shutdown: stops accepting, refuses new requests, lets transfers under way run
    /// for the configured grace period, then ends them (uploads stay resumable in staging) and
    /// returns once every connection is closed.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        let config = &self.shared.config;
        tracing::info!(grace = ?config.shutdown_grace, "shutting down");
        self.shared.shutdown.begin(config.shutdown_grace);
        // Wake the accept thread, blocked in accept(). Should that fail, the thread is left to
        // exit on its next connection rather than hang the shutdown.
        match TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1)) {
            Ok(_) => {
                let _ = accept.join();
            }
            Err(error) => tracing::warn!("could not wake the accept thread: {error}"),
        }
        if let Some(seed) = self.seed.as_mut() {
            seed.stop();
        }
        if let Some(scrape) = self.scrape.as_mut() {
            scrape.stop();
        }
        if let Some(janitor) = self.janitor.take() {
            let _ = janitor.join();
        }
        // Transfers end at the grace period's end: wake the connections still waiting on
        // their clients then. A write to a client that stopped reading ends at the latest
        // after the idle timeout.
        let grace_end = Instant::now() + config.shutdown_grace;
        if self.shared.connections.wait_empty(grace_end) > 0 {
            self.shared.shutdown.wake_connections(true);
        }
        let deadline =
            grace_end + config.idle_timeout.min(Duration::from_secs(5)) + Duration::from_secs(1);
        let left = self.shared.connections.wait_empty(deadline);
        if let Some(mut events) = self.events.take() {
            events.stop();
        }
        if left > 0 {
            tracing::warn!(left, "shutdown: connections still closing");
        } else {
            tracing::info!("shutdown complete");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds a listener with a backlog deep enough for a burst of a thousand clients connecting
/// at once (the standard library's 128 would drop SYNs and cost each client a 1 s retry).
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A connectable address for a listener bound to `addr` (the loopback for "any").
pub(crate) fn wake_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, mut events: Option<&mut Dispatcher>) {
    for stream in listener.incoming() {
        if shared.shutdown.is_stopping() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!("accept failed: {error}");
                // Out of file descriptors, say: let connections close before trying again.
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let _ = stream.set_nodelay(true);
        let seat = match shared.try_seat(peer.ip()) {
            Ok(seat) => seat,
            Err(full) => {
                let config = &shared.config;
                match full {
                    Full::Server => {
                        tracing::warn!(%peer, "refused a connection: at the limit of {} connections", config.max_connections)
                    }
                    Full::Address => {
                        tracing::warn!(%peer, "refused a connection: at the limit of {:?} connections from one address", config.max_connections_per_ip)
                    }
                }
                shared.metrics.handle_refused(Refusal::Busy);
                refuse_busy(shared, stream, full.message());
                continue;
            }
        };
        if let Some(events) = events.as_mut() {
            events.serve(stream, peer, seat);
            continue;
        }
        let spawned = thread::Builder::new()
            .name("ferry-conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let seat = seat;
                connection::serve(&seat.0, stream, peer);
            });
        if let Err(error) = spawned {
            // The closure (and with it the seat and the stream) was dropped.
            tracing::error!(%peer, "could not start a connection thread: {error}");
        }
    }
    tracing::debug!("accept loop ended");
}

/// Sends `Busy` with `message` and closes, without ever blocking the accept thread.
fn refuse_busy(shared: &Arc<Shared>, mut stream: TcpStream, message: &'static str) {
    let mut conn = ServerConnection::new(shared.config.protocol(), shared.now());
    let _ = conn.refuse_connection(ErrorCode::Busy, message);
    let mut bytes = Vec::new();
    conn.poll_transmit(&mut bytes);
    if shared.refusers.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSERS {
        shared.refusers.fetch_sub(1, Ordering::AcqRel);
        if shared.config.tls.is_none() {
            let _ = stream.set_nonblocking(true);
            let _ = stream.write(&bytes);
        }
        return;
    }
    let owner = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("ferry-refuse".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if owner.config.tls.is_some() {
                connection::refuse_early(&owner, stream, ErrorCode::Busy, message, REFUSAL_LINGER);
                owner.refusers.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            let _ = stream.set_write_timeout(Some(REFUSAL_LINGER));
            if stream.write_all(&bytes).is_ok() {
                linger(&mut stream, REFUSAL_LINGER);
            }
            owner.refusers.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        shared.refusers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Half-closes and reads what the peer still sends for up to `limit`, so that closing does not
/// reset the connection before the peer has read our last bytes.
pub(crate) fn linger(stream: &mut TcpStream, limit: Duration) {
    let _ = stream.shutdown(SocketShutdown::Write);
    let end = Instant::now() + limit;
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0usize;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if total > 8 * 1024 * 1024 {
                    break;
                }
            }
        }
    }
}

/// Opens where the files live: the bucket of [`ServerConfig::object_store`], or the root folder.
/// Returns it with the canonical root folder.
fn open_store(config: &ServerConfig) -> io::Result<(Arc<dyn Store>, std::path::PathBuf)> {
    let Some(s3) = &config.object_store else {
        let storage = Storage::open(config)?;
        let root = storage.root().to_path_buf();
        return Ok((storage, root));
    };
    if config.quota.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a quota applies to the folder store only; set the bucket's limits in the object store",
        ));
    }
    std::fs::create_dir_all(&config.root)?;
    let root = config.root.canonicalize()?;
    Ok((S3Store::open(config, s3)?, root))
}

/// Removes old partial uploads now and then.
fn janitor(shared: &Shared) {
    let max_age = shared.config.staging_max_age;
    let every = (max_age / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    while !shared.shutdown.sleep(every) {
        shared.store.sweep_staging(max_age);
    }
}
