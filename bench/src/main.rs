//! `ferry-bench`: ferry's throughput as ratios to what this machine can physically do, measured
//! side by side in the same run. Every figure is the median of several rounds, with min and
//! max; a ratio to a baseline is taken round by round; every transfer is verified.
#![forbid(unsafe_code)]

mod content;
mod folder;
mod object_store;
mod raw;
mod relay;
mod scenarios;
mod stats;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ferry_sim::store::{Store, StoreArgs};

use crate::stats::{Figure, mb_per_s, percentile};

/// Benchmark ferry against raw TCP and `dd conv=fdatasync` on this machine.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Size of the large-file benchmarks, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Rounds: each measures every figure once (the median is reported, with min and max).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Folder on tmpfs, to measure ferry rather than the disk.
    #[arg(long, default_value = "/dev/shm/ferry-bench")]
    tmpfs: PathBuf,
    /// Folder on a real disk, for the durable put.
    #[arg(long, default_value = "target/ferry-bench-disk")]
    disk: PathBuf,
    /// Only these benchmarks (comma-separated): large, durable, many, small, idle, folder.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// An object store to measure too: `seaweedfs` (a private SeaweedFS started for the run,
    /// from FERRY_WEED or `weed` on PATH) or `s3://BUCKET/PREFIX` (at --s3-endpoint, keys from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). The large put and get and the first
    /// many-clients scenario run again through a node over it, as extra rows.
    #[arg(long, value_name = "seaweedfs|s3://BUCKET/PREFIX")]
    store: Option<String>,
    /// The S3 service of an `s3://` store, e.g. http://127.0.0.1:8333.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The region S3 requests are signed for.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    s3_region: String,
    /// The server engines to measure, each in turn in the same run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "events,threads")]
    engine: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Round-trip times (ms, comma-separated) the folder scenario adds with its relay.
    #[arg(long, value_delimiter = ',', default_value = "0,20,100")]
    rtt_ms: Vec<u64>,
    /// The folder scenario sends one request at a time, as ferry did before pipelining.
    #[arg(long)]
    one_by_one: bool,
    /// A tenth of the clients and a twentieth of the small and idle counts: a quick check that
    /// every scenario still runs (CI); its figures are not the targets' figures.
    #[arg(long)]
    smoke: bool,
}

/// One line of the report.
struct Row {
    name: String,
    unit: &'static str,
    figure: Figure,
    /// Ratios to baselines measured in the same rounds.
    ratios: Vec<Ratio>,
    /// An absolute target: `(limit, higher_is_better)`.
    target: Option<(f64, bool)>,
}

/// A figure divided by a baseline, round by round: both were measured back to back in each
/// round, so a load that comes and goes moves both.
struct Ratio {
    per_round: Figure,
    baseline: &'static str,
    /// The least acceptable median ratio, if this ratio is a target.
    target: Option<f64>,
}

impl Row {
    fn new(name: impl Into<String>, unit: &'static str, figure: Figure) -> Self {
        Row {
            name: name.into(),
            unit,
            figure,
            ratios: Vec::new(),
            target: None,
        }
    }

    fn against(mut self, baseline: &Figure, label: &'static str, target: Option<f64>) -> Self {
        let per_round = self
            .figure
            .runs
            .iter()
            .zip(&baseline.runs)
            .map(|(value, base)| value / base)
            .collect();
        self.ratios.push(Ratio {
            per_round: Figure::new(per_round),
            baseline: label,
            target,
        });
        self
    }

    fn target(mut self, limit: f64, higher_is_better: bool) -> Self {
        self.target = Some((limit, higher_is_better));
        self
    }

    fn verdict(&self) -> Option<bool> {
        let mut verdict = None;
        for ratio in &self.ratios {
            if let Some(target) = ratio.target {
                let met = ratio.per_round.median() >= target;
                verdict = Some(verdict.unwrap_or(true) && met);
            }
        }
        if let Some((limit, higher)) = self.target {
            let m = self.figure.median();
            let met = if higher { m >= limit } else { m <= limit };
            verdict = Some(verdict.unwrap_or(true) && met);
        }
        verdict
    }
}

/// Every figure's value in each round.
#[derive(Default)]
struct Rounds {
    loopback: Vec<f64>,
    raw: Vec<f64>,
    put: [Vec<f64>; 2],
    get: [Vec<f64>; 2],
    /// CPU seconds (all threads) of the raw copy, puts and gets.
    raw_cpu: Vec<f64>,
    put_cpu: [Vec<f64>; 2],
    get_cpu: [Vec<f64>; 2],
    dd: Vec<f64>,
    raw_disk: Vec<f64>,
    durable: Vec<f64>,
    many: [Vec<f64>; 2],
    /// The object store's large put and get, and its many-clients aggregate.
    store_put: Vec<f64>,
    store_get: Vec<f64>,
    store_many: Vec<f64>,
    p50: [Vec<f64>; 2],
    p99: [Vec<f64>; 2],
    small: Vec<f64>,
    /// Per idle count: server RSS, server threads, fresh puts' p50 and p99.
    idle_rss: [Vec<f64>; 2],
    idle_threads: [Vec<f64>; 2],
    idle_p50: [Vec<f64>; 2],
    idle_p99: [Vec<f64>; 2],
    /// The fewest idle clients served in any round.
    idle_served: [usize; 2],
}

/// The scenarios' counts.
#[derive(Clone, Copy)]
struct Counts {
    /// The concurrent-clients scenarios: (clients, bytes each).
    many: [(usize, usize); 2],
    /// Files in the small-files scenario, and their size.
    small: (usize, usize),
    /// Idle handshaken clients in the idle scenario's two steps.
    idle: [usize; 2],
    /// The folder scenario's folders: (files, bytes each).
    folder: [(usize, usize); 2],
}

impl Counts {
    fn new(smoke: bool) -> Self {
        let full = Counts {
            many: [(200, 1 << 20), (1000, 64 << 10)],
            small: (10_000, 4096),
            idle: [1000, 10_000],
            folder: [(1000, 4096), (100, 1 << 20)],
        };
        if !smoke {
            return full;
        }
        Counts {
            many: full.many.map(|(clients, size)| (clients / 10, size)),
            small: (full.small.0 / 20, full.small.1),
            idle: full.idle.map(|idle| idle / 20),
            folder: full.folder.map(|(files, size)| (files / 10, size)),
        }
    }
}

fn wants(args: &Args, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == name)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.tmpfs)
        .with_context(|| format!("creating {}", args.tmpfs.display()))?;
    std::fs::create_dir_all(&args.disk)
        .with_context(|| format!("creating {}", args.disk.display()))?;
    let bytes = args.size_mib << 20;
    let runs = args.runs.max(1);
    let counts = Counts::new(args.smoke);
    let (large, durable, many) = (
        wants(&args, "large"),
        wants(&args, "durable"),
        wants(&args, "many"),
    );
    let store = open_store(&StoreArgs {
        store: args.store.clone(),
        s3_endpoint: args.s3_endpoint.clone(),
        s3_region: args.s3_region.clone(),
    })?;
    let source = args.tmpfs.join("source.bin");
    let mut digest = None;
    if large || durable || many {
        eprintln!("writing a {} MiB source file on tmpfs...", args.size_mib);
        digest = Some(content::write_file(&source, bytes, 1)?);
    }

    // Each round measures every figure once, back to back, so that a ratio compares a run of
    // ferry with a run of its baseline made under the same load (others' builds and fuzzers
    // come and go on a shared machine); the report takes the median over rounds. Every engine
    // is measured in each round, one after the other, each going first in turn so that the
    // order is not part of the comparison (with events always first, raw TCP alone, which no
    // engine touches, came out 12 % apart between the two engines' turns in an 11-round run);
    // its rows carry its name.
    let kind = store.as_ref().map(Store::kind);
    let engines = args
        .engine
        .iter()
        .map(|name| name.parse::<ferry_server::Engine>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut all: Vec<Rounds> = engines
        .iter()
        .map(|_| Rounds {
            idle_served: counts.idle,
            ..Rounds::default()
        })
        .collect();
    for round in 1..=runs {
        let mut turns: Vec<_> = engines.iter().zip(all.iter_mut()).collect();
        turns.rotate_left((round - 1) % engines.len().max(1));
        for (&engine, r) in turns {
            scenarios::use_engine(engine);
            eprintln!("{} engine: round {round} of {runs}...", engine.name());
            if let Some(digest) = digest {
                if large || many {
                    r.loopback.push(mb_per_s(bytes, raw::loopback(bytes)?));
                    let dest = args.tmpfs.join("raw.bin");
                    let t = raw::raw_tcp_copy(&source, &dest, digest, false)?;
                    r.raw.push(mb_per_s(bytes, t.wall));
                    r.raw_cpu.extend(t.cpu);
                }
                if large {
                    let root = args.tmpfs.join("root");
                    let dest = args.tmpfs.join("got.bin");
                    for (i, tls) in [false, true].into_iter().enumerate() {
                        let t = scenarios::large_put(&source, digest, &root, tls)?;
                        r.put[i].push(mb_per_s(bytes, t.wall));
                        r.put_cpu[i].extend(t.cpu);
                        let t = scenarios::large_get(&source, digest, &root, &dest, tls)?;
                        r.get[i].push(mb_per_s(bytes, t.wall));
                        r.get_cpu[i].extend(t.cpu);
                    }
                    let _ = std::fs::remove_dir_all(&root);
                    if let Some(store) = &store {
                        let (put, get) =
                            object_store::large_put_get(store, &source, digest, &dest)?;
                        r.store_put.push(mb_per_s(bytes, put.wall));
                        r.store_get.push(mb_per_s(bytes, get.wall));
                    }
                }
                if durable {
                    // Each writer starts on a quiet disk: the last one's write-back and freed
                    // blocks are flushed first (untimed).
                    raw::settle()?;
                    let t = raw::dd_fdatasync(&args.disk.join("dd.bin"), args.size_mib)?;
                    r.dd.push(mb_per_s(bytes, t));
                    raw::settle()?;
                    let dest = args.disk.join("raw.bin");
                    let t = raw::raw_tcp_copy(&source, &dest, digest, true)?;
                    r.raw_disk.push(mb_per_s(bytes, t.wall));
                    raw::settle()?;
                    let root = args.disk.join("root");
                    let t = scenarios::large_put(&source, digest, &root, false)?;
                    r.durable.push(mb_per_s(bytes, t.wall));
                    let _ = std::fs::remove_dir_all(&root);
                }
            }
            if many {
                for (i, (clients, size)) in counts.many.into_iter().enumerate() {
                    let root = args.tmpfs.join("many");
                    let result = scenarios::many_clients(&root, clients, size)?;
                    let mut per = result.per_transfer.clone();
                    per.sort_by(f64::total_cmp);
                    r.p50[i].push(percentile(&per, 50.0) * 1e3);
                    r.p99[i].push(percentile(&per, 99.0) * 1e3);
                    r.many[i].push(mb_per_s((clients * size) as u64, result.elapsed));
                    let _ = std::fs::remove_dir_all(&root);
                }
                if let Some(store) = &store {
                    let (clients, size) = counts.many[0];
                    let result = object_store::many_clients(store, clients, size)?;
                    r.store_many
                        .push(mb_per_s((clients * size) as u64, result.elapsed));
                }
            }
            if wants(&args, "small") {
                let root = args.tmpfs.join("small");
                let (count, size) = counts.small;
                let t = scenarios::small_files(&root, count, size)?;
                r.small.push(count as f64 / t.as_secs_f64());
                let _ = std::fs::remove_dir_all(&root);
            }
            if wants(&args, "idle") {
                let root = args.tmpfs.join("idle");
                for (i, idle) in counts.idle.into_iter().enumerate() {
                    let result = scenarios::idle_connections(&root, idle)?;
                    r.idle_served[i] = r.idle_served[i].min(result.served);
                    r.idle_rss[i].push(result.rss_mib);
                    r.idle_threads[i].push(result.threads as f64);
                    let mut puts = result.puts;
                    puts.sort_by(f64::total_cmp);
                    r.idle_p50[i].push(percentile(&puts, 50.0) * 1e3);
                    r.idle_p99[i].push(percentile(&puts, 99.0) * 1e3);
                }
                let _ = std::fs::remove_dir_all(&root);
            }
        }
    }
    let folder_rows = if wants(&args, "folder") {
        eprintln!("folder scenario...");
        let rtts: Vec<_> = args
            .rtt_ms
            .iter()
            .map(|&ms| std::time::Duration::from_millis(ms))
            .collect();
        let storages = [("disk", args.disk.clone()), ("tmpfs", args.tmpfs.clone())];
        folder::folder(&folder::FolderPlan {
            engines: &engines,
            shapes: &counts.folder,
            storages: &storages,
            rtts: &rtts,
            runs,
            one_by_one: args.one_by_one,
        })?
    } else {
        Vec::new()
    };
    if !args.only.is_empty() && args.only.iter().all(|o| o == "folder") {
        print!("{}", folder::table(&folder_rows, args.one_by_one));
        return Ok(());
    }
    let mut rows = Vec::new();
    for (engine, r) in engines.into_iter().zip(all) {
        rows.extend(report(r, counts, kind).into_iter().map(|mut row| {
            row.name = format!("[{}] {}", engine.name(), row.name);
            row
        }));
    }
    let _ = std::fs::remove_file(&source);
    drop(store);
    if args.json {
        print_json(&rows, &args);
    } else {
        print_table(&rows, &args);
        if !folder_rows.is_empty() {
            print!("{}", folder::table(&folder_rows, args.one_by_one));
        }
    }
    Ok(())
}

/// The object store `--store` names, opened (a private SeaweedFS started), or `None` without
/// one.
fn open_store(args: &StoreArgs) -> anyhow::Result<Option<Store>> {
    let spec = args.spec().context("--store")?;
    if args.store.is_none() {
        return Ok(None);
    }
    anyhow::ensure!(
        spec.is_object_store(),
        "--store takes an object store here (seaweedfs or s3://BUCKET/PREFIX); \
         the local rows' folders are --tmpfs and --disk"
    );
    eprintln!("opening the object store...");
    Ok(Some(Store::open(&spec).context("--store")?))
}

/// The rows of the report, each ferry figure beside its ceiling; `store` names the object
/// store's kind when its rows were measured.
fn report(r: Rounds, counts: Counts, store: Option<&str>) -> Vec<Row> {
    let (store_large, mut store_many) = store
        .map(|kind| store_rows(&r, counts, kind))
        .unwrap_or_default();
    let mut rows = Vec::new();
    let raw = Figure::new(r.raw);
    if !raw.runs.is_empty() {
        rows.push(Row::new(
            "raw TCP, memory → memory (loopback)",
            "MB/s",
            Figure::new(r.loopback),
        ));
        rows.push(Row::new("raw TCP, tmpfs → tmpfs", "MB/s", raw.clone()));
    }
    // Plaintext is held to 0.8 of raw TCP; TLS 1.3 (AES-GCM on one core each side) to 0.5.
    for (i, (label, target)) in [("plaintext", 0.8), ("TLS", 0.5)].into_iter().enumerate() {
        for (op, values) in [("put", &r.put[i]), ("get", &r.get[i])] {
            if !values.is_empty() {
                let figure = Figure::new(values.clone());
                rows.push(
                    Row::new(format!("ferry {op}, {label}, tmpfs"), "MB/s", figure).against(
                        &raw,
                        "raw TCP",
                        Some(target),
                    ),
                );
            }
        }
    }
    rows.extend(store_large);
    // CPU seconds of both sides together: on a busy machine, where every thread waits for a
    // core, throughput goes roughly as the inverse of this.
    let raw_cpu = Figure::new(r.raw_cpu);
    if !raw_cpu.runs.is_empty() {
        rows.push(Row::new(
            "CPU: raw TCP, tmpfs → tmpfs",
            "cpu-s",
            raw_cpu.clone(),
        ));
    }
    for (i, label) in ["plaintext", "TLS"].into_iter().enumerate() {
        for (op, values) in [("put", &r.put_cpu[i]), ("get", &r.get_cpu[i])] {
            if !values.is_empty() && values.len() == raw_cpu.runs.len() {
                let figure = Figure::new(values.clone());
                rows.push(
                    Row::new(format!("CPU: ferry {op}, {label}"), "cpu-s", figure).against(
                        &raw_cpu,
                        "raw TCP's CPU",
                        None,
                    ),
                );
            }
        }
    }
    if !r.dd.is_empty() {
        let dd = Figure::new(r.dd);
        let raw_disk = Figure::new(r.raw_disk);
        rows.push(Row::new("dd conv=fdatasync, disk", "MB/s", dd.clone()));
        rows.push(Row::new(
            "raw TCP, tmpfs → disk, fdatasync",
            "MB/s",
            raw_disk.clone(),
        ));
        rows.push(
            Row::new("ferry put, durable, disk", "MB/s", Figure::new(r.durable))
                .against(&dd, "dd fdatasync", Some(0.85))
                .against(&raw_disk, "raw TCP → disk", None),
        );
    }
    for (i, (clients, size)) in counts.many.into_iter().enumerate() {
        if r.many[i].is_empty() {
            continue;
        }
        let label = format!("{clients} clients × {} KiB, aggregate", size >> 10);
        let mut row = Row::new(label, "MB/s", Figure::new(r.many[i].clone()));
        if i == 0 {
            row = row.against(&raw, "raw TCP", Some(0.7));
        }
        rows.push(row);
        rows.push(Row::new(
            format!("{clients} clients, p50 per transfer"),
            "ms",
            Figure::new(r.p50[i].clone()),
        ));
        rows.push(Row::new(
            format!("{clients} clients, p99 per transfer"),
            "ms",
            Figure::new(r.p99[i].clone()),
        ));
        if i == 0 {
            rows.extend(store_many.take());
        }
    }
    if !r.small.is_empty() {
        rows.push(
            Row::new(
                format!(
                    "{} × {} KiB files, one connection",
                    counts.small.0,
                    counts.small.1 >> 10
                ),
                "files/s",
                Figure::new(r.small),
            )
            .target(5000.0, true),
        );
    }
    for (i, idle) in counts.idle.into_iter().enumerate() {
        if r.idle_rss[i].is_empty() {
            continue;
        }
        // The issue's targets: 10 000 idle in 100 MiB on events, the fresh put's p99 ≤ 50 ms.
        let served = r.idle_served[i];
        let idle = if served < idle {
            format!("{idle} (only {served} served)")
        } else {
            idle.to_string()
        };
        let mut rss = Row::new(
            format!("{idle} idle handshaken: server RSS"),
            "MiB",
            Figure::new(r.idle_rss[i].clone()),
        );
        if counts.idle[i] >= 10_000 {
            rss = rss.target(100.0, false);
        }
        rows.push(rss);
        rows.push(Row::new(
            format!("{idle} idle handshaken: server threads"),
            "threads",
            Figure::new(r.idle_threads[i].clone()),
        ));
        rows.push(Row::new(
            format!("{idle} idle: new client's 1 MiB put p50"),
            "ms",
            Figure::new(r.idle_p50[i].clone()),
        ));
        rows.push(
            Row::new(
                format!("{idle} idle: new client's 1 MiB put p99"),
                "ms",
                Figure::new(r.idle_p99[i].clone()),
            )
            .target(50.0, false),
        );
    }
    rows
}

/// The object store's rows, each beside the same transfer to tmpfs in the same rounds: the
/// large put and get, and the many-clients aggregate.
fn store_rows(r: &Rounds, counts: Counts, kind: &str) -> (Vec<Row>, Option<Row>) {
    let mut rows = Vec::new();
    let local = [
        ("put →", &r.store_put, &r.put[0], "local put"),
        ("get ←", &r.store_get, &r.get[0], "local get"),
    ];
    for (op, values, baseline, label) in local {
        if values.is_empty() {
            continue;
        }
        let mut row = Row::new(
            format!("ferry {op} {kind} (1 node)"),
            "MB/s",
            Figure::new(values.clone()),
        );
        if baseline.len() == values.len() {
            row = row.against(&Figure::new(baseline.clone()), label, None);
        }
        rows.push(row);
    }
    let mut many = None;
    if !r.store_many.is_empty() {
        let (clients, size) = counts.many[0];
        let mut row = Row::new(
            format!("{clients} × {} KiB → {kind}, aggregate", size >> 10),
            "MB/s",
            Figure::new(r.store_many.clone()),
        );
        if r.many[0].len() == r.store_many.len() {
            row = row.against(&Figure::new(r.many[0].clone()), "local", None);
        }
        many = Some(row);
    }
    (rows, many)
}

fn print_table(rows: &[Row], args: &Args) {
    println!(
        "ferry-bench: {} MiB large files, {} rounds (median [min – max]; ratios taken round by round)\n",
        args.size_mib, args.runs
    );
    println!(
        "{:<40} {:>26} {:<8} target",
        "benchmark", "median [min – max]", "unit"
    );
    for row in rows {
        let f = &row.figure;
        let spread = if f.median().abs() < 10.0 {
            format!("{:.2} [{:.2} – {:.2}]", f.median(), f.min(), f.max())
        } else {
            format!("{:.1} [{:.1} – {:.1}]", f.median(), f.min(), f.max())
        };
        let mut target: Vec<String> = row
            .ratios
            .iter()
            .map(|ratio| {
                let p = &ratio.per_round;
                let goal = ratio
                    .target
                    .map(|t| format!(" (≥ {t})"))
                    .unwrap_or_default();
                format!(
                    "{:.2} [{:.2} – {:.2}] × {}{goal}",
                    p.median(),
                    p.min(),
                    p.max(),
                    ratio.baseline
                )
            })
            .collect();
        match row.target {
            Some((limit, true)) => target.push(format!("≥ {limit}")),
            Some((limit, false)) => target.push(format!("≤ {limit}")),
            None => {}
        }
        let verdict = match row.verdict() {
            Some(true) => " ok",
            Some(false) => " MISSED",
            None => "",
        };
        println!(
            "{:<40} {:>26} {:<8} {}{verdict}",
            row.name,
            spread,
            row.unit,
            target.join("; ")
        );
    }
}

fn print_json(rows: &[Row], args: &Args) {
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let f = &row.figure;
            let ratios: Vec<String> = row
                .ratios
                .iter()
                .map(|ratio| {
                    let p = &ratio.per_round;
                    let target = ratio.target.map_or("null".to_owned(), |t| t.to_string());
                    format!(
                        r#"{{"baseline": "{}", "median": {:.4}, "min": {:.4}, "max": {:.4}, "per_round": {:?}, "target": {target}}}"#,
                        ratio.baseline,
                        p.median(),
                        p.min(),
                        p.max(),
                        p.runs
                    )
                })
                .collect();
            let ratio = if ratios.is_empty() {
                String::new()
            } else {
                format!(r#", "ratios": [{}]"#, ratios.join(", "))
            };
            let verdict = row.verdict().map(|v| format!(r#", "met": {v}"#)).unwrap_or_default();
            format!(
                r#"{{"name": "{}", "unit": "{}", "median": {:.3}, "min": {:.3}, "max": {:.3}, "runs": {:?}{ratio}{verdict}}}"#,
                row.name,
                row.unit,
                f.median(),
                f.min(),
                f.max(),
                f.runs
            )
        })
        .collect();
    println!(
        "{{\"size_mib\": {}, \"runs\": {}, \"results\": [\n  {}\n]}}",
        args.size_mib,
        args.runs,
        items.join(",\n  ")
    );
}
