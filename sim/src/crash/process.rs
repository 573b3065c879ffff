//! The server as a process of its own, so that it can be killed with `SIGKILL`: the
//! `ferry-sim` binary run again with the hidden `crash-server` subcommand, which starts
//! [`ferry_server::Server`] on a root and prints its address.
//!
//! The child holds its standard input open and exits when it closes, so a server whose
//! harness died does not outlive it. The load's server is restarted on the same port, chosen
//! below the system's ephemeral port range: no outgoing connection can take it while the
//! server is down (nor connect to itself by chance on it).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_server::{Server, ServerConfig};

/// The first line the server prints, before its address.
const LISTENING: &str = "ferryd listening on ";

/// How long a restart keeps trying to bind the load's port again.
const REBIND_PATIENCE: Duration = Duration::from_secs(10);

/// What the child server is started with.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Storage root.
    pub root: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bytes between durable checkpoints of an upload.
    pub checkpoint_interval: u64,
}

impl ServeOptions {
    /// The arguments of the `crash-server` subcommand that give these options.
    fn args(&self) -> Vec<String> {
        vec![
            "crash-server".into(),
            "--root".into(),
            self.root.display().to_string(),
            "--listen".into(),
            self.listen.to_string(),
            "--checkpoint-interval".into(),
            self.checkpoint_interval.to_string(),
        ]
    }
}

/// The child's side: starts the server, prints `ferryd listening on ADDR`, and serves until
/// standard input closes (then shuts down without a grace period). Real fsyncs, plaintext.
pub fn serve(options: &ServeOptions) -> io::Result<()> {
    let mut config = ServerConfig::new(&options.root);
    config.listen = options.listen;
    config.checkpoint_interval = options.checkpoint_interval;
    config.shutdown_grace = Duration::ZERO;
    let server = Server::start(config)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{LISTENING}{}", server.local_addr())?;
    out.flush()?;
    drop(out);
    // Blocks until the harness closes our standard input (or dies).
    let _ = io::stdin().lock().read_to_end(&mut Vec::new());
    server.shutdown();
    Ok(())
}

/// A server child process; killed with `SIGKILL` when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Kept open: the child exits when it closes.
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `exe crash-server …` and waits for its address.
    pub fn start(exe: &Path, options: &ServeOptions) -> io::Result<ServerProcess> {
        let mut child = Command::new(exe)
            .args(options.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", exe.display())))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let addr = line
            .trim()
            .strip_prefix(LISTENING)
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(ServerProcess {
                child,
                _stdin: stdin,
                addr,
            }),
            None => {
                let status = child.wait()?;
                Err(io::Error::other(format!(
                    "the server on {} did not start ({status}; it printed {line:?})",
                    options.listen
                )))
            }
        }
    }

    /// Starts the server on `options.listen`, trying again for a while if the port is not yet
    /// free.
    pub fn restart(exe: &Path, options: &ServeOptions) -> io::Result<ServerProcess> {
        let deadline = Instant::now() + REBIND_PATIENCE;
        loop {
            match ServerProcess::start(exe, options) {
                Ok(server) => return Ok(server),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SIGKILL`, then waits for the process to be gone: no chance to flush, checkpoint or
    /// clean up anything.
    pub fn kill_9(mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port below the ephemeral range (drawn at random, so that runs at the same
/// time on one machine do not collide).
pub fn free_port() -> io::Result<SocketAddr> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = 10_000u16.min(low.saturating_sub(1000));
    for _ in 0..200 {
        let port = first + rand::random::<u16>() % low.saturating_sub(first).max(1);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free loopback port between {first} and {low}"),
    ))
}
