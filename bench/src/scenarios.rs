//! ferry's side of each benchmark: a real server and real clients, every transfer verified.

use std::io::{Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use ferry_client::{Client, ClientOptions, GetOptions, PutOptions, Security, Trust};
use ferry_protocol::Digest;
use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{Frame, decode_frame};
use ferry_server::{Engine, Server, ServerConfig, ServerHandle, TlsIdentity};

use crate::content;
use crate::stats::{Stopwatch, Timing};

/// The engine the scenarios' servers run: the benchmark measures every scenario once per
/// engine, in turn.
static ENGINE: Mutex<Engine> = Mutex::new(Engine::Events);

/// Makes the following scenarios run their servers on `engine`.
pub fn use_engine(engine: Engine) {
    *ENGINE.lock().unwrap_or_else(PoisonError::into_inner) = engine;
}

/// The engine the scenarios' servers run now.
pub(crate) fn engine() -> Engine {
    *ENGINE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts an in-process plaintext server on a fresh root.
pub fn start_server(root: &Path) -> anyhow::Result<ServerHandle> {
    Ok(start_server_with(root, false)?.0)
}

/// Starts an in-process server on a fresh root, with TLS (a fresh self-signed certificate in
/// the root's state folder) or plaintext; returns it with the client security that fits.
pub fn start_server_with(root: &Path, tls: bool) -> anyhow::Result<(ServerHandle, Security)> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let mut config = ServerConfig::new(root);
    config.max_connections = 4096;
    config.engine = engine();
    let security = if tls {
        let identity = TlsIdentity::load_or_create(&root.join(ferry_server::DEFAULT_STATE_DIR))?;
        let pin = identity.fingerprint().to_string().parse()?;
        config.tls = Some(identity);
        Security::Tls(Trust::Pinned(pin))
    } else {
        Security::Insecure
    };
    Ok((Server::start(config)?, security))
}

/// A plaintext client.
pub(crate) fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    connect_with(addr, Security::Insecure)
}

fn connect_with(addr: SocketAddr, security: Security) -> anyhow::Result<Client> {
    let options = ClientOptions {
        security,
        ..ClientOptions::default()
    };
    Ok(Client::connect(addr, options)?)
}

pub(crate) fn put_options() -> PutOptions {
    PutOptions {
        overwrite: true,
        ..PutOptions::default()
    }
}

/// One large file put from `source` to a server rooted at `root`; verified by the digest the
/// server acknowledged.
pub fn large_put(source: &Path, digest: Digest, root: &Path, tls: bool) -> anyhow::Result<Timing> {
    let (server, security) = start_server_with(root, tls)?;
    let mut client = connect_with(server.local_addr(), security)?;
    let watch = Stopwatch::start();
    let report = client.put_file(source, "big.bin", &put_options(), &mut |_| {})?;
    let timing = watch.stop();
    ensure!(report.digest == digest, "put stored a different digest");
    let stored = std::fs::metadata(root.join("big.bin"))?.len();
    ensure!(
        stored == report.size,
        "stored file has {stored} bytes, sent {}",
        report.size
    );
    drop(client);
    server.shutdown();
    Ok(timing)
}

/// One large file get into `dest` from a server that holds `source` (put first, untimed).
pub fn large_get(
    source: &Path,
    digest: Digest,
    root: &Path,
    dest: &Path,
    tls: bool,
) -> anyhow::Result<Timing> {
    let (server, security) = start_server_with(root, tls)?;
    let mut client = connect_with(server.local_addr(), security)?;
    client.put_file(source, "big.bin", &put_options(), &mut |_| {})?;
    if dest.exists() {
        std::fs::remove_file(dest)?;
    }
    let watch = Stopwatch::start();
    let report = client.get_file("big.bin", dest, &GetOptions::default(), &mut |_| {})?;
    let timing = watch.stop();
    ensure!(report.digest == digest, "downloaded a different digest");
    ensure!(
        std::fs::metadata(dest)?.len() == report.size,
        "downloaded size differs"
    );
    drop(client);
    server.shutdown();
    std::fs::remove_file(dest)?;
    Ok(timing)
}

/// Result of many transfers at once.
pub struct ManyResult {
    /// From the common start to the last acknowledgement.
    pub elapsed: Duration,
    /// Each transfer's time, connect to acknowledgement, in seconds.
    pub per_transfer: Vec<f64>,
}

/// `clients` clients each put `size` bytes at once (one connection each), verified.
pub fn many_clients(root: &Path, clients: usize, size: usize) -> anyhow::Result<ManyResult> {
    let server = start_server(root)?;
    let result = many_clients_on(server.local_addr(), clients, size);
    server.shutdown();
    result
}

/// `clients` clients each put `size` bytes at once to the plaintext server at `addr` (one
/// connection each), verified by the digest each was acknowledged.
pub fn many_clients_on(
    addr: SocketAddr,
    clients: usize,
    size: usize,
) -> anyhow::Result<ManyResult> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let data = content::bytes(size, i as u64);
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || -> anyhow::Result<f64> {
                    let digest = Digest::of(&data);
                    barrier.wait();
                    let start = Instant::now();
                    let mut client = connect(addr)?;
                    let report = client.put_from(
                        &mut Cursor::new(&data),
                        data.len() as u64,
                        &format!("c{i}.bin"),
                        &put_options(),
                        &mut |_| {},
                    )?;
                    ensure!(report.digest == digest, "client {i}: digest differs");
                    Ok(start.elapsed().as_secs_f64())
                })
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let start = Instant::now();
    let mut per_transfer = Vec::with_capacity(clients);
    for handle in handles {
        per_transfer.push(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("client panicked"))??,
        );
    }
    let elapsed = start.elapsed();
    Ok(ManyResult {
        elapsed,
        per_transfer,
    })
}

/// `count` files of `size` bytes over one connection; returns the elapsed time.
pub fn small_files(root: &Path, count: usize, size: usize) -> anyhow::Result<Duration> {
    let server = start_server(root)?;
    let mut client = connect(server.local_addr())?;
    let files: Vec<Vec<u8>> = (0..count).map(|i| content::bytes(size, i as u64)).collect();
    let start = Instant::now();
    for (i, data) in files.iter().enumerate() {
        let name = format!("d{}/f{i}.bin", i % 100);
        let report = client.put_from(
            &mut Cursor::new(data),
            size as u64,
            &name,
            &put_options(),
            &mut |_| {},
        )?;
        ensure!(
            report.size == size as u64,
            "file {i} stored with the wrong size"
        );
    }
    let elapsed = start.elapsed();
    let listed = client.list("")?.len();
    ensure!(
        listed == count,
        "listing shows {listed} files, expected {count}"
    );
    drop(client);
    server.shutdown();
    Ok(elapsed)
}

/// Server memory and threads with many idle clients, and fresh clients' puts meanwhile.
pub struct IdleResult {
    /// Server resident memory, MiB.
    pub rss_mib: f64,
    /// Server threads.
    pub threads: u64,
    /// Each fresh client's connect and 1 MiB put, seconds (none when not every idle client
    /// was served).
    pub puts: Vec<f64>,
    /// Idle clients the server took (fewer than asked when it ran out of something).
    pub served: usize,
}

/// Fresh clients that each put 1 MiB while the idle ones wait (for p50 and p99).
const FRESH_PUTS: usize = 100;

/// A `ferryd` child process, killed on drop.
struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ferryd_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("ferryd");
    ensure!(
        path.exists(),
        "{} not found: build it first (cargo build --release -p ferry-server)",
        path.display()
    );
    Ok(path)
}

/// Starts `ferryd` as a child (its own process, so its RSS and threads are its own, and its
/// file descriptors count against its own limit) with `idle` clients that completed the
/// handshake and then say nothing; measures it, then times fresh clients' puts meanwhile.
pub fn idle_connections(root: &Path, idle: usize) -> anyhow::Result<IdleResult> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let limit = (idle + 64).to_string();
    let child = Command::new(ferryd_path()?)
        .arg("--root")
        .arg(root)
        .arg("--listen")
        .arg(addr.to_string())
        .args([
            "--max-connections",
            &limit,
            "--max-connections-per-ip",
            &limit,
        ])
        .args(["--engine", engine().name()])
        .args(["--idle-timeout", "600s", "--insecure"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ferryd")?;
    let server = ChildServer(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        ensure!(Instant::now() < deadline, "ferryd did not start listening");
        thread::sleep(Duration::from_millis(20));
    }
    let mut waiting = Vec::with_capacity(idle);
    for i in 0..idle {
        match handshake(addr) {
            Ok(stream) => waiting.push(stream),
            // A server that cannot take them all (out of threads, say) is reported as such.
            Err(error) => {
                eprintln!(
                    "{} engine: idle client {i} was not served: {error:#}",
                    engine().name()
                );
                break;
            }
        }
    }
    let served = waiting.len();
    // Idle, not just handshaken: past the second for which the thread engine keeps a
    // connection's big input buffer after its last bytes.
    thread::sleep(Duration::from_millis(1500));
    let (rss_mib, threads) = process_status(server.0.id())?;
    let data = content::bytes(1 << 20, 7);
    let mut puts = Vec::with_capacity(FRESH_PUTS);
    for i in 0..FRESH_PUTS {
        if served < idle {
            break; // a full server's fresh puts would measure only its refusal
        }
        let start = Instant::now();
        let mut client = connect(addr)?;
        let report = client.put_from(
            &mut Cursor::new(&data),
            data.len() as u64,
            &format!("fresh{i}.bin"),
            &put_options(),
            &mut |_| {},
        )?;
        puts.push(start.elapsed().as_secs_f64());
        ensure!(
            report.digest == Digest::of(&data),
            "fresh put digest differs"
        );
    }
    // The idle clients must still be connected (not refused): a read would block, not end.
    let mut probe = [0u8; 1];
    let first = waiting.first_mut().context("no idle client was served")?;
    first.set_nonblocking(true)?;
    match first.read(&mut probe) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => bail!("an idle client was disconnected: {other:?}"),
    }
    // The server goes first, so the TIME_WAITs are its own and the idle clients' ports are
    // free for the next round at once.
    drop(server);
    drop(waiting);
    Ok(IdleResult {
        rss_mib,
        threads,
        puts,
        served,
    })
}

/// Connects to `addr` and completes a plaintext handshake (magic, `HELLO`, `WELCOME`).
fn handshake(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut hello = MAGIC.to_vec();
    Frame::Hello {
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        token: b"",
    }
    .encode(&mut hello);
    stream.write_all(&hello)?;
    let mut input = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = stream.read(&mut buf)?;
        ensure!(n > 0, "the server closed during the handshake");
        input.extend_from_slice(&buf[..n]);
        if input.len() > MAGIC.len() {
            match decode_frame(&input[MAGIC.len()..]) {
                Ok(Some((Frame::Welcome { .. }, _))) => return Ok(stream),
                Ok(Some((other, _))) => bail!("the server answered {other:?}"),
                Ok(None) => {}
                Err(error) => bail!("bad answer: {error}"),
            }
        }
    }
}

fn process_status(pid: u32) -> anyhow::Result<(f64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing from /proc status"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("{name} has no value"))?;
        Ok(value.parse()?)
    };
    Ok((field("VmRSS:")? as f64 / 1024.0, field("Threads:")?))
}
