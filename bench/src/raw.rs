//! The ceilings ferry is held to, measured in the same run: a plain TCP sender and receiver with
//! no protocol, the same buffer size and the same storage; and `dd conv=fdatasync` for a durable
//! write to disk.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Buffer size of the raw sender and receiver: the same as ferry's data chunk.
pub const RAW_BUFFER: usize = ferry_protocol::limits::DEFAULT_DATA_CHUNK;

/// Sends `source` over loopback TCP to a receiver that writes it to `dest` (and fdatasyncs it if
/// `durable`); returns the time from connect to the receiver's last write (or sync).
pub fn raw_tcp_copy(source: &Path, dest: &Path, durable: bool) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let dest = dest.to_path_buf();
    let receiver = thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut file = File::create(&dest)?;
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
    let start = Instant::now();
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
    let elapsed = start.elapsed();
    if received != sent {
        bail!("raw copy lost bytes: sent {sent}, received {received}");
    }
    Ok(elapsed)
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
