//! `ferry`: the command-line client. Parses the command line, plans the transfers, runs them
//! through `ferry_client`, shows progress and results, and exits with a documented code.

mod cli;
mod from_stdin;
mod generate;
mod mv;
mod plan;
mod run;
mod select;
mod show;
mod stat;
mod sync;
mod to_stdout;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};
use ferry_client::{
    Client, ClientError, ClientOptions, Digest, EXIT_OTHER, EXIT_USAGE, GetOptions, PutOptions,
    PutOutcome, PutReport, Security, Trust, display_name, display_text,
};
use serde::Serialize;

use crate::cli::{Cli, Command, Generate};
use crate::plan::{Job, Usage};
use crate::show::Display;

/// Environment variable holding the log filter (e.g. `FERRY_LOG=debug`); logs go to stderr.
const LOG_ENV: &str = "FERRY_LOG";

fn main() -> ExitCode {
    // Parsed by hand to keep the matches: `--exclude` and `--include` apply in the order given.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Command::Generate(what) = &cli.command {
        // Needs no server, config folder or logs (packagers run it in bare build sandboxes).
        return match generate::run(what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("ferry: {error:#}");
                ExitCode::from(u8::try_from(EXIT_OTHER).unwrap_or(1))
            }
        };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        // By default only the note that a server was trusted on first use is shown.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off,ferry_client::tls=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = match select::filter(&matches).and_then(|filter| execute(&cli, filter)) {
        Ok(code) => code,
        Err(error) => {
            let code = if error.is::<Usage>() {
                EXIT_USAGE
            } else if let Some(client_error) = error.downcast_ref::<ClientError>() {
                client_error.exit_code()
            } else {
                EXIT_OTHER
            };
            // The error may quote a server's message: nothing in it may reorder or hide text.
            eprintln!("ferry: {}", display_text(&format!("{error:#}")));
            if cli.json {
                // Scripts reading stdout get a document even when nothing could start.
                let failure = serde_json::json!({
                    "command": command_name(&cli.command),
                    "ok": false,
                    "error": format!("{error:#}"),
                    "exit_code": code,
                });
                println!("{failure:#}");
            }
            code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Put { .. } => "put",
        Command::Get { .. } => "get",
        Command::Ls { .. } => "ls",
        Command::Rm { .. } => "rm",
        Command::Mv { .. } => "mv",
        Command::Stat { .. } => "stat",
        Command::Sync(_) => "sync",
        Command::Generate(Generate::Completions { .. }) => "completions",
        Command::Generate(Generate::Man { .. }) => "man",
    }
}

/// Name of the known-servers file in the config folder.
const KNOWN_SERVERS: &str = "known_servers";

fn options(cli: &Cli) -> anyhow::Result<ClientOptions> {
    let security = if cli.insecure {
        Security::Insecure
    } else if let Some(fingerprint) = cli.fingerprint {
        Security::Tls(Trust::Pinned(fingerprint))
    } else {
        Security::Tls(Trust::KnownServers(config_dir()?.join(KNOWN_SERVERS)))
    };
    Ok(ClientOptions {
        token: cli.token.clone().unwrap_or_default().into_bytes(),
        security,
        server_name: Some(host_of(&cli.server)),
        io_timeout: Duration::from_secs(cli.stall_timeout.max(1)),
        retries: cli.retries,
        limit_rate: cli.limit_rate,
        ..ClientOptions::default()
    })
}

/// The user's ferry config folder: `FERRY_CONFIG_DIR`, else `$XDG_CONFIG_HOME/ferry`, else
/// `~/.config/ferry` (`%APPDATA%\ferry` on Windows).
fn config_dir() -> anyhow::Result<PathBuf> {
    ferry_client::config_dir().context(
        "no config folder for the known-servers file; set FERRY_CONFIG_DIR or pass --fingerprint",
    )
}

/// The host part of `HOST:PORT` (without the brackets of an IPv6 address).
fn host_of(server: &str) -> String {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// `put`'s status of a file this run stored.
const STORED: &str = "stored";
/// `put`'s status of a file the server already held with the same size and digest.
const ALREADY_STORED: &str = "already_stored";

/// One file's outcome, for `--json`.
#[derive(Serialize)]
struct FileResult {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<PathBuf>,
    ok: bool,
    /// For `put`: [`STORED`] or [`ALREADY_STORED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed_from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
}

impl FileResult {
    /// A file moved: its name, local path, size, digest, resume offset and attempts.
    fn moved(
        name: String,
        local: &Path,
        size: u64,
        digest: &Digest,
        resumed_from: u64,
        attempts: u32,
    ) -> Self {
        FileResult {
            name,
            local: Some(local.to_path_buf()),
            ok: true,
            status: None,
            size: Some(size),
            digest: Some(digest.to_hex()),
            resumed_from: Some(resumed_from),
            attempts: Some(attempts),
            error: None,
            exit_code: None,
        }
    }

    /// A file uploaded, or found stored already.
    fn put(report: &PutReport, local: &Path) -> Self {
        let status = match report.outcome {
            PutOutcome::AlreadyStored => ALREADY_STORED,
            _ => STORED,
        };
        FileResult {
            status: Some(status),
            ..FileResult::moved(
                report.name.clone(),
                local,
                report.size,
                &report.digest,
                report.resumed_from,
                report.attempts,
            )
        }
    }

    /// A file removed.
    fn removed(name: &str) -> Self {
        FileResult {
            name: name.to_owned(),
            local: None,
            ok: true,
            status: None,
            size: None,
            digest: None,
            resumed_from: None,
            attempts: None,
            error: None,
            exit_code: None,
        }
    }

    fn failed(name: &str, local: Option<PathBuf>, error: &ClientError) -> Self {
        FileResult {
            name: name.to_owned(),
            local,
            ok: false,
            status: None,
            size: None,
            digest: None,
            resumed_from: None,
            attempts: None,
            error: Some(error.to_string()),
            exit_code: Some(error.exit_code()),
        }
    }
}

/// The whole run's outcome, for `--json`.
#[derive(Serialize)]
struct RunResult<'a> {
    command: &'a str,
    ok: bool,
    /// For `put`: how many files ended which way.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<PutSummary>,
    results: Vec<FileResult>,
}

/// How many files of a `put` were stored, found stored already, or failed.
#[derive(Serialize, Default)]
struct PutSummary {
    stored: usize,
    already_stored: usize,
    failed: usize,
}

impl PutSummary {
    /// Counts the results of a `put`.
    fn of(results: &[FileResult]) -> Self {
        let mut summary = PutSummary::default();
        for result in results {
            match result.status {
                _ if !result.ok => summary.failed += 1,
                Some(ALREADY_STORED) => summary.already_stored += 1,
                _ => summary.stored += 1,
            }
        }
        summary
    }
}

impl std::fmt::Display for PutSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stored, {} already stored, {} failed",
            self.stored, self.already_stored, self.failed
        )
    }
}

/// One listing entry, for `--json`.
#[derive(Serialize)]
struct EntryJson<'a> {
    name: &'a str,
    size: u64,
    modified_ms: u64,
}

fn execute(cli: &Cli, filter: ferry_client::sync::Filter) -> anyhow::Result<i32> {
    let options = options(cli)?;
    let addrs: Vec<SocketAddr> = cli
        .server
        .to_socket_addrs()
        .map_err(|source| ClientError::Connect {
            addr: cli.server.clone(),
            source,
        })?
        .collect();
    let connect = || Client::connect(addrs.as_slice(), options.clone());
    match &cli.command {
        Command::Put {
            paths,
            as_name,
            recursive,
            overwrite,
            jobs,
            no_resume,
            select,
        } => {
            if from_stdin::is_named(paths) {
                let request = from_stdin::Request {
                    paths,
                    as_name: as_name.as_deref(),
                    recursive: *recursive,
                    overwrite: *overwrite,
                    dry_run: select.dry_run,
                };
                return from_stdin::put(&connect, &request, cli.json, cli.quiet);
            }
            let planned = plan::uploads(paths, as_name.as_deref(), *recursive, &filter)?;
            if select.dry_run {
                select::print_dry_run("put", "upload", &planned, cli.json)?;
                return Ok(0);
            }
            let put_options = PutOptions {
                overwrite: *overwrite,
                resume: !no_resume,
                tag: None,
            };
            let bytes = planned
                .iter()
                .filter_map(|job| std::fs::metadata(&job.local).ok())
                .map(|m| m.len())
                .sum();
            let display = Display::new(cli.quiet, cli.json, planned.len()).with_total_bytes(bytes);
            let results = if planned.len() > 1 {
                run::pipelined(
                    &planned,
                    usize::from(*jobs),
                    &connect,
                    &display,
                    &|client, batch, record| {
                        let files: Vec<_> = batch
                            .iter()
                            .map(|job| (job.local.clone(), job.name.clone()))
                            .collect();
                        client.put_files(&files, &put_options, &mut |index, result| {
                            let bytes = result.as_ref().map_or(0, |report| report.size);
                            display.finished(&batch[index].name, result.is_ok(), bytes);
                            record(
                                index,
                                result.map(|report| {
                                    display.result(&put_line(&report));
                                    FileResult::put(&report, &batch[index].local)
                                }),
                            )
                        });
                    },
                )
            } else {
                run::parallel(
                    &planned,
                    usize::from(*jobs),
                    &connect,
                    &display,
                    &|client, job, progress| {
                        let report =
                            client.put_file(&job.local, &job.name, &put_options, progress)?;
                        display.result(&put_line(&report));
                        Ok(FileResult::put(&report, &job.local))
                    },
                )
            };
            Ok(conclude("put", &planned, results, &display))
        }
        Command::Get {
            names,
            output,
            recursive,
            jobs,
            no_resume,
            select,
        } => {
            if output.as_os_str() == to_stdout::STDOUT {
                return to_stdout::get(&mut connect()?, names, *recursive, cli.json, cli.quiet);
            }
            let planned = if *recursive {
                plan::folder_downloads(&mut connect()?, names, output, &filter)?
            } else {
                plan::downloads(names, output)?
            };
            if select.dry_run {
                select::print_dry_run("get", "download", &planned, cli.json)?;
                return Ok(0);
            }
            let get_options = GetOptions { resume: !no_resume };
            let display = Display::new(cli.quiet, cli.json, planned.len());
            let saved = |report: ferry_client::GetReport, local: &std::path::Path| {
                display.result(&format!(
                    "saved {} to {} ({} bytes, blake3 {}){}",
                    display_name(&report.name),
                    display_text(&local.display().to_string()),
                    report.size,
                    report.digest,
                    resumed_note(report.resumed_from)
                ));
                FileResult::moved(
                    report.name,
                    local,
                    report.size,
                    &report.digest,
                    report.resumed_from,
                    report.attempts,
                )
            };
            let results = if planned.len() > 1 {
                run::pipelined(
                    &planned,
                    usize::from(*jobs),
                    &connect,
                    &display,
                    &|client, batch, record| {
                        let files: Vec<_> = batch
                            .iter()
                            .map(|job| (job.name.clone(), job.local.clone()))
                            .collect();
                        client.get_files(&files, &get_options, &mut |index, result| {
                            let bytes = result.as_ref().map_or(0, |report| report.size);
                            display.finished(&batch[index].name, result.is_ok(), bytes);
                            record(index, result.map(|r| saved(r, &batch[index].local)))
                        });
                    },
                )
            } else {
                run::parallel(
                    &planned,
                    usize::from(*jobs),
                    &connect,
                    &display,
                    &|client, job, progress| {
                        let report =
                            client.get_file(&job.name, &job.local, &get_options, progress)?;
                        Ok(saved(report, &job.local))
                    },
                )
            };
            Ok(conclude("get", &planned, results, &display))
        }
        Command::Ls { prefix } => {
            let mut client = connect()?;
            let entries = client.list(prefix)?;
            if cli.json {
                let json: Vec<EntryJson<'_>> = entries
                    .iter()
                    .map(|e| EntryJson {
                        name: &e.name,
                        size: e.size,
                        modified_ms: e.modified_ms,
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else if !cli.quiet {
                for entry in &entries {
                    println!("{}", show::listing_line(entry));
                }
            }
            Ok(0)
        }
        Command::Mv {
            from,
            to,
            overwrite,
        } => mv::run(&mut connect()?, from, to, *overwrite, cli.json, cli.quiet),
        Command::Stat { name } => stat::run(&mut connect()?, name, cli.json, cli.quiet),
        Command::Sync(args) => sync::run(&mut connect()?, args, filter, cli.json, cli.quiet),
        // Run by `main` before anything else; here for completeness.
        Command::Generate(what) => {
            generate::run(what)?;
            Ok(0)
        }
        Command::Rm { names } => {
            let planned: Vec<Job> = names
                .iter()
                .map(|name| Job {
                    local: PathBuf::new(),
                    name: name.clone(),
                })
                .collect();
            let display = Display::new(true, cli.json, planned.len());
            let quiet = cli.quiet || cli.json;
            let results = run::parallel(&planned, 1, &connect, &display, &|client, job, _| {
                client.remove(&job.name)?;
                if !quiet {
                    println!("removed {}", display_name(&job.name));
                }
                Ok(FileResult::removed(&job.name))
            });
            Ok(conclude("rm", &planned, results, &display))
        }
    }
}

/// Prints the JSON document and returns the exit code: that of the first failure, else 0.
fn conclude(
    command: &str,
    jobs: &[Job],
    results: Vec<Result<FileResult, ClientError>>,
    display: &Display,
) -> i32 {
    let mut code = 0;
    let results: Vec<FileResult> = jobs
        .iter()
        .zip(results)
        .map(|(job, result)| {
            result.unwrap_or_else(|error| {
                if code == 0 {
                    code = error.exit_code();
                }
                let local = (!job.local.as_os_str().is_empty()).then(|| job.local.clone());
                FileResult::failed(&job.name, local, &error)
            })
        })
        .collect();
    let summary = (command == "put").then(|| PutSummary::of(&results));
    if let Some(summary) = &summary
        && jobs.len() > 1
    {
        display.result(&format!("put {} files: {summary}", jobs.len()));
    }
    display.finish(&RunResult {
        command,
        ok: code == 0,
        summary,
        results,
    });
    code
}

/// The result line of one upload.
fn put_line(report: &PutReport) -> String {
    match report.outcome {
        PutOutcome::AlreadyStored => format!(
            "already stored: {} (identical, {} bytes, blake3 {})",
            display_name(&report.name),
            report.size,
            report.digest
        ),
        _ => format!(
            "stored {} ({} bytes, blake3 {}){}",
            display_name(&report.name),
            report.size,
            report.digest,
            resumed_note(report.resumed_from)
        ),
    }
}

fn resumed_note(offset: u64) -> String {
    if offset > 0 {
        format!(", resumed at byte {offset}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_a_server_address_drops_the_port_and_brackets() {
        assert_eq!(host_of("example.com:7070"), "example.com");
        assert_eq!(host_of("127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7070"), "::1");
        assert_eq!(host_of("nohost"), "nohost");
    }
}
