//! The checks after a socket run, made by a fresh client connected straight to the server:
//! it must still answer; every acknowledged upload is there byte for byte; nothing else is
//! visible under the run's names; every injected fault ended in a resume or an expected error.

use std::collections::BTreeMap;

use ferry_client::{Client, ClientOptions};

use super::sink::CompareSink;
use super::worker::{ClientRun, RunCtx};
use crate::content::ContentId;
use crate::report::{Breach, Summary};

/// Checks the server against every client's model; adds breaches and fault counts to `summary`.
pub(crate) fn verify(ctx: &RunCtx, runs: &[ClientRun], summary: &mut Summary) {
    let seed = ctx.seed;
    account_faults(seed, runs, summary);
    let options = ClientOptions {
        security: ctx.options.security.clone(),
        ..ClientOptions::default()
    };
    let mut client = match Client::connect(ctx.server, options) {
        Ok(client) => client,
        Err(error) => {
            summary.breaches.push(Breach::global(
                seed,
                format!("the server does not answer a fresh client after the run: {error}"),
            ));
            return;
        }
    };
    let listing = match client.list(&format!("{}/", ctx.prefix)) {
        Ok(entries) => entries,
        Err(error) => {
            summary.breaches.push(Breach::global(
                seed,
                format!("the server cannot list the run's files: {error}"),
            ));
            return;
        }
    };
    let mut stored: BTreeMap<String, u64> = listing.into_iter().map(|e| (e.name, e.size)).collect();
    let mut expected: BTreeMap<String, (u32, Vec<ContentId>)> = BTreeMap::new();
    for run in runs {
        for (name, content) in &run.model {
            expected.insert(name.clone(), (run.id, vec![*content]));
        }
        for (name, content) in &run.shared {
            expected
                .entry(name.clone())
                .or_insert_with(|| (run.id, Vec::new()))
                .1
                .push(*content);
        }
    }
    for (name, (client_id, contents)) in &expected {
        let Some(size) = stored.remove(name) else {
            let step = contents.first().map_or(0, |c| c.step);
            summary.breaches.push(Breach::at(
                seed,
                *client_id,
                step,
                format!("acknowledged upload {name:?} is missing from the server"),
            ));
            continue;
        };
        if contents.len() > 1 {
            summary.breaches.push(Breach::global(
                seed,
                format!(
                    "{name:?} was acknowledged to {} uploads without overwrite",
                    contents.len()
                ),
            ));
            continue;
        }
        let content = contents[0];
        let mut sink = CompareSink::new(Some(content));
        let result = client.get_to(name, &mut sink, &mut |_| {});
        let problem = match result {
            Err(error) => Some((
                format!("cannot download {name:?} to check it: {error}"),
                None,
            )),
            Ok(_) if size != content.size => Some((
                format!(
                    "{name:?} is listed with {size} bytes, uploaded with {}",
                    content.size
                ),
                None,
            )),
            Ok(_) => sink.first_difference().map(|at| {
                (
                    format!("stored {name:?} differs from the acknowledged upload"),
                    Some(at),
                )
            }),
        };
        if let Some((what, at)) = problem {
            let mut breach = Breach::at(seed, content.client, content.step, what);
            breach.first_difference = at;
            summary.breaches.push(breach);
        }
    }
    for run in runs {
        for (name, candidates) in &run.uncertain {
            if stored.remove(name).is_none() {
                continue;
            }
            let mut bytes = Vec::new();
            if let Err(error) = client.get_to(name, &mut bytes, &mut |_| {}) {
                summary.breaches.push(Breach::global(
                    seed,
                    format!("cannot download {name:?} to check it: {error}"),
                ));
                continue;
            }
            if !candidates
                .iter()
                .any(|c| c.first_difference(&bytes).is_none())
            {
                summary.breaches.push(Breach::global(
                    seed,
                    format!("{name:?} holds bytes that none of its uploads sent"),
                ));
            }
        }
    }
    for (name, size) in stored {
        let what =
            format!("{name:?} ({size} bytes) is visible but no upload of it was acknowledged");
        summary.breaches.push(match owner(&ctx.prefix, &name) {
            Some((client, step)) => Breach::at(seed, client, step, what),
            None => Breach::global(seed, what),
        });
    }
}

/// The client and step a plan's name comes from: `c<client>/x<step>` (hostile uploads) or
/// `c<client>/f<step>` (the step that first uploaded it).
fn owner(prefix: &str, name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix("/c")?;
    let (client, file) = rest.split_once('/')?;
    let step = file.strip_prefix('x').or_else(|| file.strip_prefix('f'))?;
    Some((client.parse().ok()?, step.parse().ok()?))
}

/// Every fault that fired must fall in (or just before) a step that ended as it should.
fn account_faults(seed: u64, runs: &[ClientRun], summary: &mut Summary) {
    for run in runs {
        for fault in &run.fired {
            summary.count_fault(fault.kind);
            let step = run.steps.iter().position(|(end, _)| *end >= fault.at);
            match step.map(|i| (i, run.steps[i].1)) {
                Some((_, true)) => {}
                Some((i, false)) => summary.breaches.push(Breach::at(
                    seed,
                    run.id,
                    i as u32,
                    format!("a {} was not recovered from: its step failed", fault.kind),
                )),
                None => summary.breaches.push(Breach::at(
                    seed,
                    run.id,
                    run.steps.len() as u32,
                    format!("a {} fired after the client's last step", fault.kind),
                )),
            }
        }
    }
}
