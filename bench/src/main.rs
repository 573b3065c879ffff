//! `ferry-bench`: ferry's throughput as ratios to what this machine can physically do, measured
//! side by side in the same run. Every figure is the median of several runs, with min and max,
//! and every transfer is verified by its digest.
#![forbid(unsafe_code)]

mod content;
mod raw;
mod scenarios;
mod stats;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::stats::{Figure, mb_per_s, percentile};

/// Benchmark ferry against raw TCP and `dd conv=fdatasync` on this machine.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Size of the large-file benchmarks, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Runs per figure (the median is reported, with min and max).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Folder on tmpfs, to measure ferry rather than the disk.
    #[arg(long, default_value = "/dev/shm/ferry-bench")]
    tmpfs: PathBuf,
    /// Folder on a real disk, for the durable put.
    #[arg(long, default_value = "target/ferry-bench-disk")]
    disk: PathBuf,
    /// Only these benchmarks (comma-separated): large, durable, many, small, idle.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line of the report.
struct Row {
    name: String,
    unit: &'static str,
    figure: Figure,
    /// Ratio of the median to a baseline's median, with the baseline's name and the target.
    ratio: Option<(f64, &'static str, f64)>,
    /// An absolute target: `(limit, higher_is_better)`.
    target: Option<(f64, bool)>,
}

impl Row {
    fn new(name: impl Into<String>, unit: &'static str, figure: Figure) -> Self {
        Row {
            name: name.into(),
            unit,
            figure,
            ratio: None,
            target: None,
        }
    }

    fn against(mut self, baseline: &Row, label: &'static str, target: f64) -> Self {
        self.ratio = Some((
            self.figure.median() / baseline.figure.median(),
            label,
            target,
        ));
        self
    }

    fn target(mut self, limit: f64, higher_is_better: bool) -> Self {
        self.target = Some((limit, higher_is_better));
        self
    }

    fn verdict(&self) -> Option<bool> {
        if let Some((ratio, _, target)) = self.ratio {
            return Some(ratio >= target);
        }
        self.target.map(|(limit, higher)| {
            let m = self.figure.median();
            if higher { m >= limit } else { m <= limit }
        })
    }
}

fn repeat(runs: usize, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<Figure> {
    let mut values = Vec::with_capacity(runs);
    for _ in 0..runs {
        values.push(f()?);
    }
    Ok(Figure::new(values))
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
    let mut rows = Vec::new();
    let bytes = args.size_mib << 20;
    let runs = args.runs.max(1);

    if wants(&args, "large") || wants(&args, "durable") {
        let source = args.tmpfs.join("source.bin");
        eprintln!("writing a {} MiB source file on tmpfs...", args.size_mib);
        let digest = content::write_file(&source, bytes, 1)?;
        let raw = Row::new(
            "raw TCP, tmpfs → tmpfs",
            "MB/s",
            repeat(runs, || {
                let t = raw::raw_tcp_copy(&source, &args.tmpfs.join("raw.bin"), false)?;
                Ok(mb_per_s(bytes, t))
            })?,
        );
        let _ = std::fs::remove_file(args.tmpfs.join("raw.bin"));
        if wants(&args, "large") {
            let root = args.tmpfs.join("root");
            let dest = args.tmpfs.join("got.bin");
            // Plaintext is held to 0.8 of raw TCP; TLS 1.3 (AES-GCM on one core each side) to 0.5.
            for (tls, label, target) in [(false, "plaintext", 0.8), (true, "TLS", 0.5)] {
                let put = repeat(runs, || {
                    Ok(mb_per_s(
                        bytes,
                        scenarios::large_put(&source, digest, &root, tls)?,
                    ))
                })?;
                let get = repeat(runs, || {
                    Ok(mb_per_s(
                        bytes,
                        scenarios::large_get(&source, digest, &root, &dest, tls)?,
                    ))
                })?;
                let _ = std::fs::remove_dir_all(&root);
                rows.push(
                    Row::new(format!("ferry put, {label}, tmpfs"), "MB/s", put)
                        .against(&raw, "raw TCP", target),
                );
                rows.push(
                    Row::new(format!("ferry get, {label}, tmpfs"), "MB/s", get)
                        .against(&raw, "raw TCP", target),
                );
            }
        }
        if wants(&args, "durable") {
            let dd = Row::new(
                "dd conv=fdatasync, disk",
                "MB/s",
                repeat(runs, || {
                    Ok(mb_per_s(
                        bytes,
                        raw::dd_fdatasync(&args.disk.join("dd.bin"), args.size_mib)?,
                    ))
                })?,
            );
            let root = args.disk.join("root");
            let durable = repeat(runs, || {
                Ok(mb_per_s(
                    bytes,
                    scenarios::large_put(&source, digest, &root, false)?,
                ))
            })?;
            let _ = std::fs::remove_dir_all(&root);
            rows.push(
                Row::new("ferry put, durable, disk", "MB/s", durable).against(
                    &dd,
                    "dd fdatasync",
                    0.85,
                ),
            );
            rows.push(dd);
        }
        let _ = std::fs::remove_file(&source);
        rows.insert(0, raw);
    }

    if wants(&args, "many") {
        let raw_baseline = rows.iter().position(|r| r.name.starts_with("raw TCP"));
        for (clients, size) in [(200usize, 1usize << 20), (1000, 64 << 10)] {
            let root = args.tmpfs.join("many");
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let aggregate = repeat(runs, || {
                let result = scenarios::many_clients(&root, clients, size)?;
                let mut per = result.per_transfer.clone();
                per.sort_by(f64::total_cmp);
                p50.push(percentile(&per, 50.0) * 1e3);
                p99.push(percentile(&per, 99.0) * 1e3);
                Ok(mb_per_s((clients * size) as u64, result.elapsed))
            })?;
            let _ = std::fs::remove_dir_all(&root);
            let label = format!("{clients} clients × {} KiB, aggregate", size >> 10);
            let mut row = Row::new(label, "MB/s", aggregate);
            if let (Some(i), 200) = (raw_baseline, clients) {
                row = row.against(&rows[i], "raw TCP", 0.7);
            }
            rows.push(row);
            rows.push(Row::new(
                format!("{clients} clients, p50 per transfer"),
                "ms",
                Figure::new(p50),
            ));
            rows.push(Row::new(
                format!("{clients} clients, p99 per transfer"),
                "ms",
                Figure::new(p99),
            ));
        }
    }

    if wants(&args, "small") {
        let root = args.tmpfs.join("small");
        let count = 10_000;
        let figure = repeat(runs, || {
            let t = scenarios::small_files(&root, count, 4096)?;
            Ok(count as f64 / t.as_secs_f64())
        })?;
        let _ = std::fs::remove_dir_all(&root);
        rows.push(
            Row::new("10 000 × 4 KiB files, one connection", "files/s", figure)
                .target(5000.0, true),
        );
    }

    if wants(&args, "idle") {
        let root = args.tmpfs.join("idle");
        let mut rss = Vec::new();
        let mut threads = Vec::new();
        let put = repeat(runs, || {
            let result = scenarios::idle_connections(&root, 1000)?;
            rss.push(result.rss_mib);
            threads.push(result.threads as f64);
            Ok(result.put_seconds * 1e3)
        })?;
        let _ = std::fs::remove_dir_all(&root);
        rows.push(
            Row::new("1000 idle clients: server RSS", "MiB", Figure::new(rss)).target(100.0, false),
        );
        rows.push(Row::new(
            "1000 idle clients: server threads",
            "threads",
            Figure::new(threads),
        ));
        rows.push(
            Row::new("1000 idle clients: new client's 1 MiB put", "ms", put).target(1000.0, false),
        );
    }

    if args.json {
        print_json(&rows, &args);
    } else {
        print_table(&rows, &args);
    }
    Ok(())
}

fn print_table(rows: &[Row], args: &Args) {
    println!(
        "ferry-bench: {} MiB large files, {} runs per figure (median [min – max])\n",
        args.size_mib, args.runs
    );
    println!(
        "{:<44} {:>22} {:<8} target",
        "benchmark", "median [min – max]", "unit"
    );
    for row in rows {
        let f = &row.figure;
        let spread = format!("{:.1} [{:.1} – {:.1}]", f.median(), f.min(), f.max());
        let target = match (row.ratio, row.target) {
            (Some((ratio, label, target)), _) => format!("{ratio:.2} × {label} (≥ {target})"),
            (None, Some((limit, true))) => format!("≥ {limit}"),
            (None, Some((limit, false))) => format!("≤ {limit}"),
            _ => String::new(),
        };
        let verdict = match row.verdict() {
            Some(true) => " ok",
            Some(false) => " MISSED",
            None => "",
        };
        println!(
            "{:<44} {:>22} {:<8} {target}{verdict}",
            row.name, spread, row.unit
        );
    }
}

fn print_json(rows: &[Row], args: &Args) {
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let f = &row.figure;
            let ratio = row
                .ratio
                .map(|(r, label, target)| format!(r#", "ratio": {r:.4}, "baseline": "{label}", "ratio_target": {target}"#))
                .unwrap_or_default();
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
