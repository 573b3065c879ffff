//! The folder scenario: many files on one TLS connection through a relay that adds a round
//! trip's delay, stored durably on a real disk and on tmpfs, then fetched back. Every file is
//! compared byte for byte after each run, on the server and on the client.
//!
//! `ferry-bench --only folder` prints files/s and MB/s at each round-trip time; with
//! `--one-by-one` the client sends one request at a time (two round trips per upload, one per
//! download) as it did before pipelining, for comparison.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ferry_client::{Client, ClientError, ClientOptions, GetOptions, PutOptions, Security};
use ferry_server::Engine;

use crate::content;
use crate::raw::settle;
use crate::relay::Relay;
use crate::scenarios::{start_server_with, use_engine};
use crate::stats::Figure;

/// One measured combination.
pub struct FolderRow {
    /// The server's engine.
    pub engine: &'static str,
    /// `1000 × 4 KiB`, `100 × 1 MiB`.
    pub shape: String,
    /// `disk` or `tmpfs`.
    pub storage: &'static str,
    /// Round-trip time added by the relay.
    pub rtt: Duration,
    /// Files in the folder.
    pub files: usize,
    /// Bytes in the folder.
    pub bytes: u64,
    /// Seconds for `put` (connect, handshake, every file durable), each round.
    pub put: Figure,
    /// Seconds for `get` (connect, handshake, every file synced in place), each round.
    pub get: Figure,
}

/// What to measure.
pub struct FolderPlan<'a> {
    /// The server engines to measure, each in turn.
    pub engines: &'a [Engine],
    /// Folders of `(files, bytes each)`.
    pub shapes: &'a [(usize, usize)],
    /// `(label, folder)` of each storage to measure on.
    pub storages: &'a [(&'static str, PathBuf)],
    /// Round-trip times to add.
    pub rtts: &'a [Duration],
    /// Rounds of each.
    pub runs: usize,
    /// One request at a time instead of a pipeline.
    pub one_by_one: bool,
}

/// Runs every combination of the plan. Each round writes into folders of its own, whose files
/// are emptied when it ends and removed only at the end of the scenario: on ext4 without a
/// journal (this project's VM) a file made within 30 s of another's removal costs a scan of
/// the inode table for one not recently freed, so a round made right after the previous one's
/// removal would time that scan (ferryd removes no file as it stores one, but a checkpointed
/// upload's state).
pub fn folder(plan: &FolderPlan<'_>) -> anyhow::Result<Vec<FolderRow>> {
    let mut rows = Vec::new();
    for (_, base) in plan.storages {
        std::fs::remove_dir_all(base.join("folder")).ok();
    }
    let mut rounds = 0;
    for &engine in plan.engines {
        use_engine(engine);
        for &(count, size) in plan.shapes {
            for (storage, base) in plan.storages {
                let source = base.join("folder").join(format!("source-{count}-{size}"));
                if !source.exists() {
                    make_folder(&source, count, size)?;
                }
                for &rtt in plan.rtts {
                    let (mut put, mut get) = (Vec::new(), Vec::new());
                    for _ in 0..plan.runs {
                        rounds += 1;
                        let work = base.join("folder").join(format!("round-{rounds}"));
                        let (p, g) = round(&work, &source, count, size, rtt, plan.one_by_one)?;
                        put.push(p.as_secs_f64());
                        get.push(g.as_secs_f64());
                    }
                    rows.push(FolderRow {
                        engine: engine.name(),
                        shape: format!("{count} × {}", human(size)),
                        storage,
                        rtt,
                        files: count,
                        bytes: (count * size) as u64,
                        put: Figure::new(put),
                        get: Figure::new(get),
                    });
                }
            }
        }
    }
    for (_, base) in plan.storages {
        std::fs::remove_dir_all(base.join("folder")).ok();
    }
    Ok(rows)
}

/// Truncates every file under `folder` to nothing: their space is free for the next rounds,
/// their inodes are not (see [`folder`]).
fn empty_files(folder: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            empty_files(&entry.path())?;
        } else if kind.is_file() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(entry.path())?
                .set_len(0)?;
        }
    }
    Ok(())
}

fn human(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

fn file_name(i: usize) -> String {
    format!("f{i:05}.bin")
}

fn make_folder(source: &Path, count: usize, size: usize) -> anyhow::Result<()> {
    if source.exists() {
        std::fs::remove_dir_all(source)?;
    }
    std::fs::create_dir_all(source)?;
    for i in 0..count {
        std::fs::write(source.join(file_name(i)), content::bytes(size, i as u64))?;
    }
    Ok(())
}

/// One put and one get of the folder through a fresh server and relay.
fn round(
    work: &Path,
    source: &Path,
    count: usize,
    size: usize,
    rtt: Duration,
    one_by_one: bool,
) -> anyhow::Result<(Duration, Duration)> {
    let root = work.join("server");
    let (server, security) = start_server_with(&root, true)?;
    let relay = Relay::start(server.local_addr(), rtt)?;
    let uploads: Vec<(PathBuf, String)> = (0..count)
        .map(|i| {
            (
                source.join(file_name(i)),
                format!("folder/{}", file_name(i)),
            )
        })
        .collect();
    // The sources and the previous round's files were written unsynced: their write-back
    // would otherwise share the disk with this round's fsyncs.
    settle()?;
    let start = Instant::now();
    let mut client = connect(relay.addr(), &security)?;
    let mut failed = None;
    let put_options = PutOptions::default();
    if one_by_one {
        for (local, name) in &uploads {
            client.put_file(local, name, &put_options, &mut |_| {})?;
        }
    } else {
        client.put_files(&uploads, &put_options, &mut |i, result| {
            if let Err(error) = result {
                failed.get_or_insert((i, error));
            }
        });
    }
    let put = start.elapsed();
    if let Some((i, error)) = failed {
        return Err(error).context(format!("uploading file {i}"));
    }
    for i in 0..count {
        let stored = std::fs::read(root.join("folder").join(file_name(i)))?;
        ensure!(
            stored == content::bytes(size, i as u64),
            "file {i} stored wrong"
        );
    }
    drop(client);

    let target = work.join("fetched");
    let downloads: Vec<(String, PathBuf)> = uploads
        .iter()
        .enumerate()
        .map(|(i, (_, name))| (name.clone(), target.join(file_name(i))))
        .collect();
    settle()?;
    let start = Instant::now();
    let mut client = connect(relay.addr(), &security)?;
    let mut failed: Option<(usize, ClientError)> = None;
    if one_by_one {
        for (name, local) in &downloads {
            client.get_file(name, local, &GetOptions::default(), &mut |_| {})?;
        }
    } else {
        client.get_files(&downloads, &GetOptions::default(), &mut |i, result| {
            if let Err(error) = result {
                failed.get_or_insert((i, error));
            }
        });
    }
    let get = start.elapsed();
    if let Some((i, error)) = failed {
        return Err(error).context(format!("downloading file {i}"));
    }
    for i in 0..count {
        let fetched = std::fs::read(target.join(file_name(i)))?;
        ensure!(
            fetched == content::bytes(size, i as u64),
            "file {i} fetched wrong"
        );
    }
    drop(client);
    server.shutdown();
    empty_files(work)?;
    Ok((put, get))
}

fn connect(addr: SocketAddr, security: &Security) -> anyhow::Result<Client> {
    let options = ClientOptions {
        security: security.clone(),
        ..ClientOptions::default()
    };
    Ok(Client::connect(addr, options)?)
}

/// The rows as a Markdown table.
pub fn table(rows: &[FolderRow], one_by_one: bool) -> String {
    let mode = if one_by_one {
        "one request at a time"
    } else {
        "pipelined"
    };
    let mut out = format!(
        "\nFolder, one TLS connection, {mode} (median of the rounds; min–max)\n\n\
         | engine | folder | storage | RTT | put s | put files/s | put MB/s | get s | get files/s | get MB/s |\n\
         |---|---|---|---|---|---|---|---|---|---|\n"
    );
    for row in rows {
        let (p, g) = (row.put.median(), row.get.median());
        out += &format!(
            "| {} | {} | {} | {} ms | {:.3} ({:.3}–{:.3}) | {:.0} | {:.1} | {:.3} ({:.3}–{:.3}) | {:.0} | {:.1} |\n",
            row.engine,
            row.shape,
            row.storage,
            row.rtt.as_millis(),
            p,
            row.put.min(),
            row.put.max(),
            row.files as f64 / p,
            row.bytes as f64 / p / 1e6,
            g,
            row.get.min(),
            row.get.max(),
            row.files as f64 / g,
            row.bytes as f64 / g / 1e6,
        );
    }
    out
}
