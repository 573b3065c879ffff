//! The scrape listener: answers `GET /metrics` with the page, on an address of its own.
//!
//! A few lines of HTTP/1.1 rather than an HTTP server crate: one method, one path, one request
//! per connection (`Connection: close`), answered in turn on one thread. Each request is read
//! with a deadline and a size cap, so a slow or endless client delays the next scrape by at most
//! [`REQUEST_TIMEOUT`] and cannot make the server hold more than [`MAX_REQUEST`] bytes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::server::Shared;

/// Most bytes of a request read (a scraper's request is a few hundred).
const MAX_REQUEST: usize = 8 * 1024;

/// Longest wait for a whole request head, and for the client to take the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the page is: OpenMetrics text, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The scrape listener's thread.
#[derive(Debug)]
pub(crate) struct ScrapeListener {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl ScrapeListener {
    /// Binds `addr` and answers scrapes of `shared`'s metrics until it stops.
    pub(crate) fn start(shared: &Arc<Shared>, addr: SocketAddr) -> io::Result<ScrapeListener> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::clone(shared);
        let thread = thread::Builder::new()
            .name("ferry-metrics".into())
            .spawn(move || serve(&shared, &listener))?;
        tracing::info!(%addr, "metrics on http://{addr}/metrics");
        Ok(ScrapeListener {
            addr,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wakes the thread (the server is already stopping) and waits for it.
    pub(crate) fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let wake = crate::server::wake_address(self.addr);
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = thread.join();
        }
    }
}

fn serve(shared: &Shared, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.shutdown.is_stopping() {
            break;
        }
        let Ok(mut stream) = stream else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        if let Err(error) = answer(shared, &mut stream) {
            tracing::debug!("metrics scrape failed: {error}");
        }
    }
}

/// Reads one request head and answers it.
fn answer(shared: &Shared, stream: &mut TcpStream) -> io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = read_head(stream, Instant::now() + REQUEST_TIMEOUT)?;
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, kind, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", CONTENT_TYPE, shared.metrics.poll_page()),
        (Some(b"GET"), _) => (
            "404 Not Found",
            "text/plain",
            "not found; try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Reads until the blank line ending a request head, at most [`MAX_REQUEST`] bytes, by `until`.
fn read_head(stream: &mut TcpStream, until: Instant) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() >= MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too slow or too long",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buffer[..n]);
    }
    Ok(head)
}
