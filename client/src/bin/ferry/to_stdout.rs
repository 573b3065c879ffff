//! `ferry get NAME -o -`: one file to standard output. The bytes stream out as they arrive and
//! are verified at the end; written bytes cannot be taken back, so a digest mismatch is exit
//! code 5 with a message on stderr telling the reader to discard what it got.

use std::io::{BufWriter, Write};

use anyhow::bail;
use ferry_client::{Client, ClientError, display_name};

use crate::plan::Usage;
use crate::show::Display;

/// What `-o` takes to mean standard output.
pub const STDOUT: &str = "-";

/// Write buffer in front of standard output: a pipe takes large writes best.
const STDOUT_BUF_LEN: usize = 256 * 1024;

/// Downloads the single `names[0]` to standard output. Refuses several names, `-r` and
/// `--json` (standard output carries the file's bytes and nothing else).
pub fn get(
    client: &mut Client,
    names: &[String],
    recursive: bool,
    json: bool,
    quiet: bool,
) -> anyhow::Result<i32> {
    let [name] = names else {
        bail!(Usage(
            "-o - writes one file to standard output; give a single NAME".into()
        ));
    };
    if recursive {
        bail!(Usage(
            "-o - writes one file to standard output; it cannot take -r".into()
        ));
    }
    if json {
        bail!(Usage(
            "-o - writes the file's bytes to standard output, where --json would print; drop \
             one of them"
                .into()
        ));
    }
    let display = Display::new(quiet, false, 1);
    let mut shown = display.start(name);
    let mut out = BufWriter::with_capacity(STDOUT_BUF_LEN, std::io::stdout().lock());
    let result = client
        .get_to(name, &mut out, &mut |progress| shown.update(progress))
        .and_then(|report| {
            out.flush().map_err(|source| ClientError::Local {
                action: "cannot write",
                path: STDOUT.into(),
                source,
            })?;
            Ok(report)
        });
    shown.finish(result.is_ok());
    display.finish(&());
    match result {
        Ok(report) => {
            if !quiet {
                // Standard output is the file: the result line goes to stderr.
                eprintln!(
                    "sent {} to standard output ({} bytes, blake3 {})",
                    display_name(&report.name),
                    report.size,
                    report.digest
                );
            }
            Ok(0)
        }
        Err(error @ ClientError::Integrity { .. }) => {
            // Flush what arrived so the reader sees exactly what was verified as bad.
            let _ = out.flush();
            Err(anyhow::Error::new(error).context(format!(
                "the bytes written to standard output are NOT {} as the server stored it; \
                 discard them",
                display_name(name)
            )))
        }
        Err(error) => Err(error.into()),
    }
}
