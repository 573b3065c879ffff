//! `ferry put - --as NAME`: an upload read from standard input, whose size is not known until
//! it ends (protocol version 3's streamed upload). The bytes pass through one buffer, hashed
//! as they go; progress shows the bytes sent without a total. Standard input cannot be read
//! twice, so the upload does not resume: a connection lost midway ends it, and nothing is
//! stored.

use std::path::{Path, PathBuf};

use anyhow::bail;
use ferry_client::{Client, ClientError, PutOptions, display_name};

use crate::plan::{Job, Usage};
use crate::show::Display;
use crate::{FileResult, conclude, put_line};

/// The path that means standard input.
pub const STDIN: &str = "-";

/// Whether the command line names standard input among its paths.
pub fn is_named(paths: &[PathBuf]) -> bool {
    paths.iter().any(|path| path.as_os_str() == STDIN)
}

/// What `put -` was told, beyond the global options.
pub struct Request<'a> {
    /// Every path given (standard input must be the only one).
    pub paths: &'a [PathBuf],
    /// `--as`: the name on the server.
    pub as_name: Option<&'a str>,
    /// `-r`, which does not apply.
    pub recursive: bool,
    /// `--overwrite`.
    pub overwrite: bool,
    /// `--dry-run`.
    pub dry_run: bool,
}

/// Uploads standard input as the `--as` name; returns the exit code.
pub fn put(
    connect: &dyn Fn() -> Result<Client, ClientError>,
    request: &Request<'_>,
    json: bool,
    quiet: bool,
) -> anyhow::Result<i32> {
    let name = name_of(request)?;
    let job = Job {
        local: PathBuf::from(STDIN),
        name: name.to_owned(),
    };
    if request.dry_run {
        crate::select::print_dry_run("put", "upload", std::slice::from_ref(&job), json)?;
        return Ok(0);
    }
    let options = PutOptions {
        overwrite: request.overwrite,
        ..PutOptions::default()
    };
    let display = Display::new(quiet, json, 1).for_stream();
    let mut shown = display.start(name);
    let mut stdin = std::io::stdin().lock();
    let result = connect().and_then(|mut client| {
        client.put_reader(&mut stdin, name, &options, &mut |p| shown.update(p))
    });
    shown.finish(result.is_ok());
    let result = result.map(|report| {
        display.result(&put_line(&report));
        FileResult::put(&report, Path::new(STDIN))
    });
    if let Err(error) = &result {
        display.error(&format!("{}: {error}", display_name(name)));
    }
    Ok(conclude("put", &[job], vec![result], &display))
}

/// The name on the server, or why the command line does not give one.
fn name_of<'a>(request: &Request<'a>) -> anyhow::Result<&'a str> {
    if request.paths.len() > 1 {
        bail!(Usage(
            "- (standard input) cannot be put together with other paths; put it on its own".into()
        ));
    }
    if request.recursive {
        bail!(Usage(
            "-r does not apply to - (standard input), which is one stream".into()
        ));
    }
    match request.as_name {
        None => bail!(Usage(
            "put - reads standard input, which has no name: give the name on the server with \
             --as NAME (to upload a file named -, write ./-)"
                .into()
        )),
        Some(name) if name.ends_with('/') => bail!(Usage(format!(
            "--as {name} names a folder; put - needs the file's own name on the server, \
             such as --as {name}stdin.bin"
        ))),
        Some(name) => Ok(name),
    }
}
