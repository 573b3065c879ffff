//! What the user sees: progress bars on a terminal (one overall bar on top: files and bytes
//! done, rate, time left; a bar per running file under it), plain result lines otherwise,
//! nothing with `--quiet`, and with `--json` a JSON document on stdout at the end and one JSON
//! line per finished file on stderr as it finishes. Names are printed through
//! `ferry_client::display_name`, so a hostile name cannot reorder or hide what is shown.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ferry_client::{ListEntry, Progress, display_name, display_text};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Template of a transfer's bar: name, bar, bytes, rate, time left.
const BAR_TEMPLATE: &str =
    "{msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}";
/// Template of a stream's bar (its size is not known): name, bytes, rate, time so far.
const STREAM_TEMPLATE: &str =
    "{msg:30!} {spinner:1} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed:>4}";
/// Template of the overall bar above a stream's.
const TOTAL_STREAM_TEMPLATE: &str =
    "{prefix:30!} {spinner:1} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed:>4}";
/// Template of the overall bar: files done, bar, bytes, rate, time left.
const TOTAL_TEMPLATE: &str =
    "{prefix:30!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}";

/// How results and progress are shown for one run.
pub struct Display {
    quiet: bool,
    json: bool,
    bars: Option<(MultiProgress, ProgressBar)>,
    /// Serialises result lines so that parallel workers never interleave them.
    lines: Mutex<()>,
    /// Whether the overall bar's length was given up front ([`Display::with_total_bytes`]).
    upfront: bool,
    /// Whether the transfers' sizes are unknown ([`Display::for_stream`]): bytes without bars.
    size_unknown: bool,
    /// With `--json`: files finished so far, and how many there are, for the progress lines.
    json_lines: Option<(Arc<AtomicUsize>, usize)>,
}

impl Display {
    /// Bars only when stderr is a terminal and the user wants output; `files` is the number of
    /// transfers to come (the total bar says how many are done).
    pub fn new(quiet: bool, json: bool, files: usize) -> Self {
        let bars = (!quiet && !json && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(style(TOTAL_TEMPLATE));
            total.set_prefix(format!("total (0/{files} files)"));
            (multi, total)
        });
        Display {
            quiet,
            json,
            bars,
            lines: Mutex::new(()),
            upfront: false,
            size_unknown: false,
            json_lines: json.then(|| (Arc::new(AtomicUsize::new(0)), files)),
        }
    }

    /// Sets the overall bar's length to `bytes`, the size of everything to come, so that its
    /// time left counts the files not started yet.
    pub fn with_total_bytes(mut self, bytes: u64) -> Self {
        if let Some((_, total)) = &self.bars {
            total.set_length(bytes);
        }
        self.upfront = true;
        self
    }

    /// For a transfer whose size is not known (a stream from standard input): the bytes, the
    /// rate and the time so far, without a bar or a time left.
    pub fn for_stream(mut self) -> Self {
        if let Some((_, total)) = &self.bars {
            total.set_style(style(TOTAL_STREAM_TEMPLATE));
        }
        self.size_unknown = true;
        self
    }

    /// A file that was transferred without a bar of its own (a pipelined one): counts it in
    /// the overall bar and, with `--json`, prints its line.
    pub fn finished(&self, name: &str, ok: bool, bytes: u64) {
        let mut shown = self.start(name);
        shown.update(Progress {
            done: bytes,
            total: bytes,
            attempt: 1,
        });
        shown.finish(ok);
    }

    /// Starts showing the transfer of `name`.
    pub fn start(&self, name: &str) -> Transfer {
        let bar = self.bars.as_ref().map(|(multi, _)| {
            // Under the overall bar, which was added first.
            let (bar, template) = match self.size_unknown {
                true => (ProgressBar::new_spinner(), STREAM_TEMPLATE),
                false => (ProgressBar::new(0), BAR_TEMPLATE),
            };
            let bar = multi.add(bar);
            bar.set_style(style(template));
            bar.set_message(display_name(name).into_owned());
            bar
        });
        Transfer {
            bar,
            total: self.bars.as_ref().map(|(_, total)| total.clone()),
            upfront: self.upfront,
            size_unknown: self.size_unknown,
            known: 0,
            done: 0,
            json_line: self
                .json_lines
                .as_ref()
                .map(|(finished, files)| (name.to_owned(), Arc::clone(finished), *files)),
        }
    }

    /// A line of results on stdout, unless `--quiet` or `--json`.
    pub fn result(&self, line: &str) {
        if self.quiet || self.json {
            return;
        }
        let _guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        match &self.bars {
            Some((multi, _)) => multi.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// An error line on stderr, always. It may quote a server's message, so its hidden
    /// characters are escaped; names in it should already have gone through `display_name`.
    pub fn error(&self, line: &str) {
        let line = display_text(line);
        let _guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        match &self.bars {
            Some((multi, _)) => multi.suspend(|| eprintln!("ferry: {line}")),
            None => eprintln!("ferry: {line}"),
        }
    }

    /// One more file finished (successfully or not), for the total bar.
    pub fn file_done(&self, done: usize, files: usize) {
        if let Some((_, total)) = &self.bars {
            total.set_prefix(format!("total ({done}/{files} files)"));
        }
    }

    /// Clears the bars and prints the JSON document, if `--json`.
    pub fn finish(&self, json: &impl Serialize) {
        if let Some((multi, total)) = &self.bars {
            total.finish_and_clear();
            let _ = multi.clear();
        }
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, json);
            let _ = writeln!(out);
        }
    }
}

/// One line of `ferry ls`: size, modification time (UTC) and the escaped name.
pub fn listing_line(entry: &ListEntry) -> String {
    format!(
        "{:>14}  {}  {}",
        entry.size,
        ferry_client::utc_time(entry.modified_ms),
        display_name(&entry.name)
    )
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The bar of one running transfer.
pub struct Transfer {
    bar: Option<ProgressBar>,
    total: Option<ProgressBar>,
    /// Whether the total bar's length already counts this file.
    upfront: bool,
    /// Whether the file's size is unknown: no lengths, only positions.
    size_unknown: bool,
    /// Size already added to the total bar's length.
    known: u64,
    /// Bytes already added to the total bar's position.
    done: u64,
    /// With `--json`: the file's name, the shared count of finished files, and how many
    /// there are.
    json_line: Option<(String, Arc<AtomicUsize>, usize)>,
}

/// The line `--json` prints on stderr when a file finishes.
#[derive(Serialize)]
struct FinishedLine<'a> {
    event: &'static str,
    name: &'a str,
    ok: bool,
    /// Bytes of the file at the destination.
    bytes: u64,
    files_done: usize,
    files_total: usize,
}

impl Transfer {
    /// Shows new progress.
    pub fn update(&mut self, progress: Progress) {
        if let Some(bar) = &self.bar {
            if !self.size_unknown {
                bar.set_length(progress.total);
            }
            bar.set_position(progress.done);
        }
        if progress.total > self.known && !self.size_unknown {
            if let (Some(total), false) = (&self.total, self.upfront) {
                total.inc_length(progress.total - self.known);
            }
            self.known = progress.total;
        }
        if progress.done > self.done {
            if let Some(total) = &self.total {
                total.inc(progress.done - self.done);
            }
            self.done = progress.done;
        }
    }

    /// Removes the bar; a failed transfer's bytes leave the total.
    pub fn finish(self, ok: bool) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let (Some(total), false) = (&self.total, ok) {
            total.dec_length(self.known);
            total.dec(self.done);
        }
        if let Some((name, finished, files)) = &self.json_line {
            let line = FinishedLine {
                event: "file_finished",
                name,
                ok,
                bytes: self.done,
                files_done: finished.fetch_add(1, Ordering::Relaxed) + 1,
                files_total: *files,
            };
            if let Ok(text) = serde_json::to_string(&line) {
                eprintln!("{text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_line_escapes_a_hostile_name() {
        let entry = ListEntry {
            name: "a\u{202E}gpj.exe\u{2028}x\u{200B}".to_owned(),
            size: 7,
            modified_ms: 0,
        };
        let line = listing_line(&entry);
        assert!(
            line.ends_with(r"  a\u{202e}gpj.exe\u{2028}x\u{200b}"),
            "{line}"
        );
        assert!(!line.contains('\u{202E}'), "{line:?}");
    }
}
