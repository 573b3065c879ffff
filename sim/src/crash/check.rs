//! The three checks of a crash run, each over a root no server is writing to:
//!
//! 1. **right after a kill**, before any restart: the root read directly; every visible file
//!    must keep the [`rules`](super::rules) (a staged inode still linked to a visible name is
//!    only counted here: repairing it is the restart's job);
//! 2. **after a restart**: a server started on the same root on a private port, which no load
//!    client knows, so nothing writes while it is checked: the root read again (after the
//!    restart's own clean-up), the rules, no visible file sharing an inode, and the server's
//!    listing and downloads equal to the root; then it is killed too;
//! 3. **at the end**, against the idle last server: the same, every file read and downloaded
//!    again.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ferry_client::ClientOptions;

use super::CrashError;
use super::ledger::Ledger;
use super::process::{ServeOptions, ServerProcess};
use super::rules::{Rule, Violation, judge};
use super::scan::{Identity, Matcher, shared_inodes, walk};
use super::served::check_served;
use super::summary::CrashSummary;

/// Runs the checks, remembering which files it already read and downloaded.
#[derive(Debug)]
pub struct Checker {
    /// The `ferry-sim` binary that runs servers.
    pub exe: PathBuf,
    /// How the load's server is started (the inspection server differs only in its port).
    pub serve: ServeOptions,
    /// Options of the checking client.
    pub options: ClientOptions,
    matcher: Matcher,
    verified: HashMap<String, Identity>,
}

impl Checker {
    /// A checker of the root `serve.root`.
    pub fn new(exe: PathBuf, serve: ServeOptions, options: ClientOptions) -> Self {
        Checker {
            exe,
            serve,
            options,
            matcher: Matcher::new(),
            verified: HashMap::new(),
        }
    }

    /// Check 1: the root right after kill number `kill`, no server running.
    pub fn after_kill(
        &mut self,
        ledger: &Ledger,
        kill: u32,
        summary: &mut CrashSummary,
    ) -> Result<Vec<Violation>, CrashError> {
        summary.checks += 1;
        let when = format!("after kill {kill}, before the restart");
        let records = ledger.snapshot();
        let state = walk(&self.serve.root).map_err(CrashError::Root)?;
        let found = self
            .matcher
            .match_all(&self.serve.root, &state, &records, true)
            .map_err(CrashError::Root)?;
        summary.shared_inodes_before_restart += shared_inodes(&state).len() as u64;
        Ok(judge(&records, &found, &when))
    }

    /// Check 2: restarts a server on the root on a private port, checks, and kills it.
    pub fn after_restart(
        &mut self,
        ledger: &Ledger,
        kill: u32,
        summary: &mut CrashSummary,
    ) -> Result<Vec<Violation>, CrashError> {
        let private = ServeOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..self.serve.clone()
        };
        let server = ServerProcess::start(&self.exe, &private).map_err(CrashError::Server)?;
        let when = format!("after the restart that followed kill {kill}");
        let violations = self.check(ledger, server.addr(), false, &when, summary);
        server.kill_9().map_err(CrashError::Server)?;
        violations
    }

    /// Check 3: every file again, through the idle server at `addr` too.
    pub fn at_end(
        &mut self,
        ledger: &Ledger,
        addr: SocketAddr,
        summary: &mut CrashSummary,
    ) -> Result<Vec<Violation>, CrashError> {
        let violations = self.check(ledger, addr, true, "at the end", summary)?;
        summary.files_at_end = walk(&self.serve.root)
            .map_err(CrashError::Root)?
            .visible
            .len() as u64;
        Ok(violations)
    }

    fn check(
        &mut self,
        ledger: &Ledger,
        addr: SocketAddr,
        all: bool,
        when: &str,
        summary: &mut CrashSummary,
    ) -> Result<Vec<Violation>, CrashError> {
        summary.checks += 1;
        let records = ledger.snapshot();
        let state = walk(&self.serve.root).map_err(CrashError::Root)?;
        let found = self
            .matcher
            .match_all(&self.serve.root, &state, &records, !all)
            .map_err(CrashError::Root)?;
        let mut violations = judge(&records, &found, when);
        violations.extend(
            shared_inodes(&state)
                .into_iter()
                .map(|(name, detail)| Violation {
                    rule: Rule::SharedInode,
                    name,
                    detail,
                    when: when.to_owned(),
                }),
        );
        violations.extend(
            check_served(
                addr,
                &self.options,
                &state,
                &found,
                &mut self.verified,
                all,
                when,
            )
            .map_err(CrashError::Client)?,
        );
        Ok(violations)
    }
}
