//! The checks after a socket run, made by fresh clients connected straight to the nodes (not
//! through the relays), one per node: every node must still answer; every node must list the
//! same files (one namespace over the shared store); every acknowledged upload is there byte
//! for byte, downloaded from the nodes in turn; nothing else is visible under the run's names;
//! every injected fault ended in a resume or an expected error. Nothing here reads the store
//! itself, so the checks are the same over a folder and over a bucket.

use std::collections::BTreeMap;

use ferry_client::{Client, ClientOptions};

use super::sink::CompareSink;
use super::worker::{ClientRun, RunCtx};
use crate::content::ContentId;
use crate::report::{Breach, Summary};

/// Checks the nodes against every client's model; adds breaches, fault counts and the files
/// checked to `summary`.
pub(crate) fn verify(ctx: &RunCtx, runs: &[ClientRun], summary: &mut Summary) {
    let seed = ctx.seed;
    account_faults(seed, runs, summary);
    let Some((mut clients, mut stored)) = connect_and_list(ctx, summary) else {
        return;
    };
    summary.files_listed = stored.len() as u64;
    // Downloads go to the nodes in turn, so each node serves a share of the checks.
    let nodes = clients.len();
    let mut turn = 0;
    let mut next_client = || {
        turn += 1;
        turn % nodes
    };
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
        let client = next_client();
        let result = clients[client].get_to(name, &mut sink, &mut |_| {});
        summary.files_checked += 1;
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
            let client = next_client();
            summary.files_checked += 1;
            if let Err(error) = clients[client].get_to(name, &mut bytes, &mut |_| {}) {
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

/// A fresh client on every node, and the run's files as every node lists them (name and
/// size), which must be one listing; `None` after adding a breach when a node does not answer
/// or the listings differ.
fn connect_and_list(
    ctx: &RunCtx,
    summary: &mut Summary,
) -> Option<(Vec<Client>, BTreeMap<String, u64>)> {
    let seed = ctx.seed;
    let options = ClientOptions {
        security: ctx.options.security.clone(),
        ..ClientOptions::default()
    };
    let nodes = ctx.balancer.nodes();
    let name = |node: usize| {
        if nodes.len() == 1 {
            "the server".to_owned()
        } else {
            format!("node {node} ({})", nodes[node])
        }
    };
    let mut clients = Vec::with_capacity(nodes.len());
    let mut listings: Vec<BTreeMap<String, u64>> = Vec::with_capacity(nodes.len());
    for (node, addr) in nodes.iter().enumerate() {
        let listed = Client::connect(*addr, options.clone()).and_then(|mut client| {
            let entries = client.list(&format!("{}/", ctx.prefix))?;
            clients.push(client);
            Ok(entries)
        });
        match listed {
            Ok(entries) => listings.push(entries.into_iter().map(|e| (e.name, e.size)).collect()),
            Err(error) => {
                summary.breaches.push(Breach::global(
                    seed,
                    format!(
                        "{} does not answer a fresh client's listing after the run: {error}",
                        name(node)
                    ),
                ));
                return None;
            }
        }
    }
    let first = listings.swap_remove(0);
    for (i, other) in listings.iter().enumerate() {
        if *other != first {
            let differs = first.iter().zip(other).find(|(a, b)| a != b).map_or_else(
                || "one lists more".to_owned(),
                |(a, b)| format!("{a:?} against {b:?}"),
            );
            summary.breaches.push(Breach::global(
                seed,
                format!(
                    "the nodes do not share one namespace: {} lists {} files of the run, {} \
                     lists {} ({differs})",
                    name(0),
                    first.len(),
                    name(i + 1),
                    other.len()
                ),
            ));
        }
    }
    Some((clients, first))
}

/// The client and step a plan's name comes from: `c<client>/x<step>` (hostile uploads),
/// `c<client>/f<step>` (the step that first uploaded it) or `c<client>/m<step>_<k>` (file `k`
/// of a batch).
fn owner(prefix: &str, name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix("/c")?;
    let (client, file) = rest.split_once('/')?;
    let step = file
        .strip_prefix('x')
        .or_else(|| file.strip_prefix('f'))
        .or_else(|| {
            file.strip_prefix('m')
                .and_then(|m| Some(m.split_once('_')?.0))
        })?;
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
