//! A fault-injecting TCP relay between one simulated client and the server.
//!
//! Each connection the client opens to the relay is forwarded to the node the [`Balancer`]
//! picks (round robin over the run's nodes; the one server when there is one) by a pair of
//! threads, one per direction, with conditions drawn from the client's seeded generator: added
//! latency, a bandwidth limit, writes split into tiny segments, and at most one fault — a stall
//! longer than the client's I/O timeout, or a cut at a given byte (both sockets are shut down
//! there). Every fault that fires is recorded with its time, so the run can check that each
//! one ended in a resume or an expected error.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rand::RngExt;

use super::balancer::Balancer;
use crate::plan::{SimRng, rng_for};

/// Stack of each relay thread: they only copy bytes through one buffer.
const RELAY_STACK: usize = 128 * 1024;

/// Bytes read at once by a relay thread.
const RELAY_BUFFER: usize = 32 * 1024;

/// How the relay treats connections.
#[derive(Clone, Copy, Debug)]
pub struct RelayConfig {
    /// Inject stalls and cuts (conditions like latency apply regardless).
    pub faults: bool,
    /// Chance that a connection carries a fault.
    pub fault_chance: f64,
    /// Most faulty connections per client; later ones are clean, so every plan can finish.
    pub max_faulty: u32,
    /// How long a stall lasts at least: longer than the client's I/O timeout.
    pub stall_min: Duration,
    /// The slowest bandwidth limit a connection may get, in bytes per second (the fastest is
    /// 8 MiB/s, or this if higher).
    pub slowest_link: u64,
}

/// A fault that fired, and when.
#[derive(Clone, Copy, Debug)]
pub struct FiredFault {
    /// `"cut"` or `"stall"`.
    pub kind: &'static str,
    /// When it fired.
    pub at: Instant,
}

/// What the relay knows about the client's current operation, to aim faults inside it.
#[derive(Debug, Default)]
pub struct Hint {
    /// Size of the file being moved, if any.
    pub size: AtomicU64,
    /// Whether the file moves from server to client.
    pub download: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    config: RelayConfig,
    upstream: Arc<Balancer>,
    rng: Mutex<SimRng>,
    faulty: AtomicU64,
    accepted: AtomicU64,
    fired: Mutex<Vec<FiredFault>>,
    conditions: Mutex<Vec<&'static str>>,
    /// The node of each connection forwarded, in order.
    nodes: Mutex<Vec<usize>>,
    stop: AtomicBool,
    hint: Hint,
}

/// One client's relay: listens on a loopback port of its own.
#[derive(Debug)]
pub struct Relay {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<thread::JoinHandle<()>>,
}

/// How one connection is treated.
#[derive(Clone, Copy, Debug, Default)]
struct Treatment {
    latency: Duration,
    /// Bytes per second, 0 for unlimited.
    rate: u64,
    /// Largest write, 0 for as read.
    segment: usize,
    cut: Option<(bool, u64)>,
    stall: Option<(bool, u64, Duration)>,
}

impl Relay {
    /// Starts a relay for client `client` of run `seed`, forwarding each connection to the
    /// node `upstream` picks.
    pub fn start(
        seed: u64,
        client: u32,
        upstream: Arc<Balancer>,
        config: RelayConfig,
    ) -> io::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            upstream,
            rng: Mutex::new(rng_for(seed, u64::from(client), 3)),
            faulty: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            fired: Mutex::new(Vec::new()),
            conditions: Mutex::new(Vec::new()),
            nodes: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            hint: Hint::default(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("relay-{client}"))
                .stack_size(RELAY_STACK)
                .spawn(move || accept_loop(&shared, &listener))?
        };
        Ok(Relay {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// Where the client connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Tells the relay about the operation starting now.
    pub fn hint(&self, size: u64, download: bool) {
        self.shared.hint.size.store(size, Ordering::Relaxed);
        self.shared.hint.download.store(download, Ordering::Relaxed);
    }

    /// Connections the client opened so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The node of the latest connection forwarded (the one a client still connected is
    /// using), if any.
    pub fn current_node(&self) -> Option<usize> {
        lock(&self.shared.nodes).last().copied()
    }

    /// Faults that fired so far.
    pub fn fired(&self) -> Vec<FiredFault> {
        lock(&self.shared.fired).clone()
    }

    /// Network conditions applied so far, one label per condition per connection.
    pub fn conditions(&self) -> Vec<&'static str> {
        lock(&self.shared.conditions).clone()
    }

    /// Stops accepting (connections under way finish by themselves).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            // Wake the accept loop; if that fails it exits on its next connection.
            if TcpStream::connect(self.addr).is_ok() {
                let _ = accept.join();
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let treatment = draw(shared);
        let (node, addr) = shared.upstream.pick();
        let Ok(server) = TcpStream::connect(addr) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        lock(&shared.nodes).push(node);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        for (from, to, upstream) in [(client, server, true), (server2, client2, false)] {
            let shared = Arc::clone(shared);
            let spawned = thread::Builder::new()
                .name("relay-pipe".into())
                .stack_size(RELAY_STACK)
                .spawn(move || pipe(&shared, from, to, upstream, treatment));
            if spawned.is_err() {
                // Out of threads: the connection dies, and the client retries.
                break;
            }
        }
    }
}

/// Draws the treatment of a new connection.
fn draw(shared: &Shared) -> Treatment {
    let mut rng = lock(&shared.rng);
    let mut conditions = lock(&shared.conditions);
    let mut treatment = Treatment::default();
    if rng.random_bool(0.2) {
        treatment.latency = Duration::from_millis(rng.random_range(10..=40));
        conditions.push("net_high_latency");
    } else {
        treatment.latency = Duration::from_micros(rng.random_range(0..=2_000));
    }
    if rng.random_bool(0.3) {
        let slowest = shared.config.slowest_link;
        treatment.rate = rng.random_range(slowest..=slowest.max(8 * 1024 * 1024));
        conditions.push("net_bandwidth_limit");
    }
    if rng.random_bool(0.1) {
        treatment.segment = rng.random_range(1..=64);
        conditions.push("net_tiny_segments");
    }
    let config = shared.config;
    if config.faults
        && shared.faulty.load(Ordering::SeqCst) < u64::from(config.max_faulty)
        && rng.random_bool(config.fault_chance)
    {
        shared.faulty.fetch_add(1, Ordering::SeqCst);
        let download = shared.hint.download.load(Ordering::Relaxed);
        let size = shared.hint.size.load(Ordering::Relaxed);
        // Aim at the direction the file moves in, most of the time.
        let upstream = if rng.random_bool(0.8) {
            !download
        } else {
            download
        };
        let at = rng.random_range(0..=size + 200);
        if rng.random_bool(0.75) {
            treatment.cut = Some((upstream, at));
        } else {
            let extra = Duration::from_millis(rng.random_range(300..=1_500));
            treatment.stall = Some((upstream, at, config.stall_min + extra));
        }
    }
    treatment
}

fn fire(shared: &Shared, kind: &'static str) {
    lock(&shared.fired).push(FiredFault {
        kind,
        at: Instant::now(),
    });
}

/// Copies one direction, applying the treatment.
fn pipe(shared: &Shared, mut from: TcpStream, mut to: TcpStream, upstream: bool, t: Treatment) {
    let mut buf = vec![0u8; RELAY_BUFFER];
    let mut total = 0u64;
    let mut cut = t.cut.filter(|(dir, _)| *dir == upstream).map(|(_, at)| at);
    let mut stall = t
        .stall
        .filter(|(dir, _, _)| *dir == upstream)
        .map(|(_, at, d)| (at, d));
    let started = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        if let Some((at, duration)) = stall
            && total + n as u64 > at
        {
            stall = None;
            fire(shared, "stall");
            thread::sleep(duration);
        }
        let mut cutting = false;
        if let Some(at) = cut
            && total + n as u64 > at
        {
            cut = None;
            data = &data[..usize::try_from(at - total).unwrap_or(0)];
            cutting = true;
        }
        if !t.latency.is_zero() {
            thread::sleep(t.latency);
        }
        if t.rate > 0 {
            // Pace to the rate since the connection started.
            let due = Duration::from_secs_f64((total + data.len() as u64) as f64 / t.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                thread::sleep(wait);
            }
        }
        let segment = if t.segment == 0 {
            data.len().max(1)
        } else {
            t.segment
        };
        let mut failed = false;
        for piece in data.chunks(segment) {
            if to.write_all(piece).is_err() {
                failed = true;
                break;
            }
        }
        total += data.len() as u64;
        if cutting {
            fire(shared, "cut");
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if failed {
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
    }
    // The sender closed (or failed): pass the end of stream on.
    let _ = to.shutdown(Shutdown::Write);
}
