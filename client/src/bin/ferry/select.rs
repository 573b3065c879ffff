//! Which files a folder transfer takes (`--exclude`, `--include`, in the order given) and
//! `--dry-run`, shared by `put -r`, `get -r` and `sync`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{ArgMatches, Args};
use ferry_client::sync::{Filter, RuleKind};
use ferry_client::{display_name, display_text};
use serde::Serialize;

use crate::plan::{Job, Usage};

/// Printed in `--help` under the options below.
pub const FILTER_HELP: &str = "\
Filters (--exclude, --include) work as in rsync: the rules are tried in the order given and
the first that matches decides; a path no rule matches is taken. Patterns are globs matched
against paths relative to the folder transferred: `*` and `?` stop at `/`, `**` crosses
folders. A pattern without `/` matches a name at any depth (`*.tmp`), one with `/` the end of
a path (`build/*.o`), a leading `/` anchors it at the top (`/target`), and a trailing `/`
matches folders only (`cache/`). An excluded folder hides everything in it, so to keep only
text files at every depth write --include '*/' --include '*.txt' --exclude '*'.";

/// `--exclude`, `--include` and `--dry-run`.
#[derive(Debug, Args)]
pub struct Selection {
    /// Leave out files and folders matching GLOB (with -r or sync; see Filters below).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Take files and folders matching GLOB even if a later --exclude matches them.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Print what would be transferred (and deleted, for sync) and change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// The filter of the subcommand in `matches`: its `--exclude` and `--include` rules in the
/// order they were given on the command line.
pub fn filter(matches: &ArgMatches) -> anyhow::Result<Filter> {
    let mut rules: Vec<(usize, RuleKind, String)> = Vec::new();
    if let Some((_, sub)) = matches.subcommand() {
        for (id, kind) in [
            ("exclude", RuleKind::Exclude),
            ("include", RuleKind::Include),
        ] {
            let Ok(Some(values)) = sub.try_get_many::<String>(id) else {
                continue;
            };
            let indices = sub.indices_of(id).into_iter().flatten();
            rules.extend(
                indices
                    .zip(values)
                    .map(|(index, pattern)| (index, kind, pattern.clone())),
            );
        }
    }
    rules.sort_by_key(|(index, _, _)| *index);
    let mut filter = Filter::new();
    for (_, kind, pattern) in rules {
        filter
            .push(kind, &pattern)
            .map_err(|e| Usage(e.to_string()))
            .context("in --exclude or --include")?;
    }
    Ok(filter)
}

/// One transfer a dry run would make, for `--json`.
#[derive(Serialize)]
struct Planned<'a> {
    name: &'a str,
    local: &'a PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// Prints the transfers a `put` or `get` would make (`verb`: "upload", "download").
pub fn print_dry_run(command: &str, verb: &str, jobs: &[Job], json: bool) -> anyhow::Result<()> {
    let size = |job: &Job| {
        (verb == "upload")
            .then(|| std::fs::metadata(&job.local).ok().map(|m| m.len()))
            .flatten()
    };
    if json {
        let planned: Vec<Planned<'_>> = jobs
            .iter()
            .map(|job| Planned {
                name: &job.name,
                local: &job.local,
                size: size(job),
            })
            .collect();
        let document = serde_json::json!({
            "command": command, "ok": true, "dry_run": true, "planned": planned,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    for job in jobs {
        let local = display_text(&job.local.display().to_string()).into_owned();
        let name = display_name(&job.name);
        let line = match (verb, size(job)) {
            ("upload", Some(size)) => format!("would upload {local} as {name} ({size} bytes)"),
            ("upload", None) => format!("would upload {local} as {name}"),
            _ => format!("would download {name} to {local}"),
        };
        println!("{line}");
    }
    println!(
        "dry run: {} files would {verb}; nothing was sent",
        jobs.len()
    );
    Ok(())
}
