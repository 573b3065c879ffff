//! Shell completions and the man page, generated from the same clap definitions as the
//! command line itself, so neither can drift from `--help`.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::args::Args;

/// Writes the completion script of `shell` for ferryd to stdout.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut command = Args::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "ferryd", &mut out);
    out.flush().context("writing the completion script")
}

/// Writes ferryd's man page (section 1, roff) to stdout, or with `dir`, it and one page per
/// tool into that folder.
pub fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    // The pages of the tools stand for `ferryd help TOOL`.
    let command = Args::command().disable_help_subcommand(true);
    if let Some(dir) = dir {
        clap_mangen::generate_to(command, dir)
            .with_context(|| format!("writing the man pages into {}", dir.display()))?;
        println!("wrote the man pages of ferryd into {}", dir.display());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .and_then(|()| out.flush())
        .context("writing the man page")
}
