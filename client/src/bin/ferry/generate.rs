//! `ferry completions SHELL` and `ferry man`: generated from the same clap definitions as the
//! command line itself, so neither can drift from `--help`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, Generate};

/// Prints the completion script or the man page(s) `what` asks for.
pub fn run(what: &Generate) -> anyhow::Result<()> {
    match what {
        Generate::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut Cli::command(), "ferry", &mut out);
            out.flush().context("writing the completion script")
        }
        Generate::Man { dir } => man(dir.as_deref()),
    }
}

/// Writes ferry's man page (section 1, roff) to stdout, or with `dir`, it and one page per
/// subcommand into that folder.
fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    // The pages of the subcommands stand for `ferry help COMMAND`.
    let command = Cli::command().disable_help_subcommand(true);
    if let Some(dir) = dir {
        clap_mangen::generate_to(command, dir)
            .with_context(|| format!("writing the man pages into {}", dir.display()))?;
        println!("wrote the man pages of ferry into {}", dir.display());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .and_then(|()| out.flush())
        .context("writing the man page")
}
