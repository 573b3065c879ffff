//! ferryd's logs on stderr: text for people, or one JSON object a line for log collectors.

use std::sync::OnceLock;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

/// The format [`init`] set up, once it has.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people: time, level, target, message, `field=value` pairs.
    Text,
    /// One JSON object a line: timestamp, level, target, message and the fields, at the top level.
    Json,
}

/// Sends `tracing` events to stderr in `format`, keeping those `filter` (an `EnvFilter`
/// directive such as `info` or `ferry_server=debug`) lets through.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("bad --log-level {filter:?}"))?;
    let _ = FORMAT.set(format);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            // Fields beside `message` at the top level, as log collectors query them
            // (`.op == "put"`), rather than nested under `fields`.
            .flatten_event(true)
            // The span an event happened in (the seed-compat listener's `peer`) as `span`,
            // without repeating it in a list of all enclosing spans.
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

/// Reports the error that stops ferryd: as a log event when the logs are JSON (so that a log
/// collector sees nothing but JSON), else as `Error: …` on stderr with its causes.
pub fn report_fatal(error: &anyhow::Error) {
    if FORMAT.get() == Some(&LogFormat::Json) {
        tracing::error!(error = format!("{error:#}"), "ferryd stopped");
    } else {
        eprintln!("Error: {error:#}");
    }
}
