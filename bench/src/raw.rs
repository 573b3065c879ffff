//! The ceilings ferry is held to, measured in the same run: a plain TCP sender and receiver with
//! no protocol, the same buffer size and the same storage; and `dd conv=fdatasync` for a durable
//! write to disk. Loopback TCP from memory to memory (no files) shows what the wire alone does,
//! as `iperf` would.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::stats::{Stopwatch, Timing};

use anyhow::{Context, bail, ensure};
use ferry_protocol::{Digest, FileHasher};

/// Buffer size of the raw sender and receiver: the same as ferry's data chunk.
pub const RAW_BUFFER: usize = ferry_protocol::limits::DEFAULT_DATA_CHUNK;

/// Sends `source` over loopback TCP to a receiver that writes it to `dest` (and fdatasyncs it if
/// `durable`); returns the time from connect to the receiver's last write (or sync). The copy
/// is then checked against `digest` (untimed) and removed.
pub fn raw_tcp_copy(
    source: &Path,
    dest: &Path,
    digest: Digest,
    durable: bool,
) -> anyhow::Result<Timing> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let target = dest.to_path_buf();
    let receiver = thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut file = File::create(&target)?;
        let mut buf = vec![0u8; RAW_BUFFER];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])?;
            total += n as u64;
        }
        if durable {
            file.sync_data()?;
        }
        Ok(total)
    });
    let watch = Stopwatch::start();
    let mut stream = TcpStream::connect(addr)?;
    let mut file = File::open(source)?;
    let mut buf = vec![0u8; RAW_BUFFER];
    let mut sent = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
        sent += n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("raw receiver panicked"))??;
    let timing = watch.stop();
    if received != sent {
        bail!("raw copy lost bytes: sent {sent}, received {received}");
    }
    ensure!(
        hash_file(dest)? == digest,
        "the raw copy differs from its source"
    );
    std::fs::remove_file(dest)?;
    Ok(timing)
}

fn hash_file(path: &Path) -> anyhow::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

/// Sends `bytes` from memory over loopback TCP to a receiver that only counts them, with the
/// same buffer size: the wire's own ceiling on this machine, files aside.
pub fn loopback(bytes: u64) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; RAW_BUFFER];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    let buf = vec![0x5au8; RAW_BUFFER];
    let mut sent = 0u64;
    while sent < bytes {
        let n = buf
            .len()
            .min(usize::try_from(bytes - sent).unwrap_or(usize::MAX));
        stream.write_all(&buf[..n])?;
        sent += n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("loopback receiver panicked"))??;
    let elapsed = start.elapsed();
    ensure!(
        received == sent,
        "loopback lost bytes: sent {sent}, received {received}"
    );
    Ok(elapsed)
}

/// Flushes every file system (`sync`, untimed), so that one writer's write-back and freed
/// blocks do not land in the next one's time.
pub fn settle() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// `dd if=/dev/zero of=FILE bs=1M count=MIB conv=fdatasync`: the disk's durable write ceiling.
pub fn dd_fdatasync(file: &Path, mib: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .arg("bs=1M")
        .arg(format!("count={mib}"))
        .arg("conv=fdatasync")
        .arg("status=none")
        .status()
        .context("running dd")?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("dd failed: {status}");
    }
    std::fs::remove_file(file)?;
    Ok(elapsed)
}
