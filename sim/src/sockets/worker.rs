//! One simulated client of the socket mode: runs its plan with the real `ferry_client`
//! library through its own fault-injecting relay, and judges every answer against a model of
//! what the server must hold under its names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{Client, ClientError, ClientOptions, ErrorCode, PutOptions, PutOutcome};
use rand::RngExt;

use super::balancer::Balancer;
use super::hostile::misbehave;
use super::relay::{FiredFault, Relay, RelayConfig};
use super::sink::CompareSink;
use crate::content::ContentId;
use crate::plan::{Op, rng_for};
use crate::report::{Breach, Summary};

/// Everything a client needs to know about the run.
#[derive(Clone, Debug)]
pub(crate) struct RunCtx {
    pub seed: u64,
    /// Where every connection goes: round robin over the nodes (or the one server).
    pub balancer: Arc<Balancer>,
    /// Every name of this run starts with this (so runs against one server do not meet).
    pub prefix: String,
    pub relay: RelayConfig,
    pub options: ClientOptions,
    /// Longest wait of a hostile client for the server's answer.
    pub hostile_wait: Duration,
}

/// The record of one client's run.
#[derive(Debug, Default)]
pub(crate) struct ClientRun {
    pub id: u32,
    /// Full name → content the server must hold.
    pub model: BTreeMap<String, ContentId>,
    /// Names whose state a failed step left unknown (an upload may have been stored although
    /// its answer never came): each may be absent or hold one of these contents.
    pub uncertain: BTreeMap<String, Vec<ContentId>>,
    /// Shared uploads acknowledged to this client: full name and content.
    pub shared: Vec<(String, ContentId)>,
    /// When each step ended, and whether as it should have.
    pub steps: Vec<(Instant, bool)>,
    pub fired: Vec<FiredFault>,
    pub summary: Summary,
}

/// How long a client waits for the server to let go of its own interrupted upload.
const IN_PROGRESS_PATIENCE: Duration = Duration::from_secs(30);

enum Outcome {
    Stored,
    Downloaded(Option<u64>),
    Listed(Vec<(String, u64)>),
    Removed,
    Refused(ErrorCode),
    Hostile(ErrorCode),
    Failed(String),
}

enum Verdict {
    Ok,
    Expected,
    Breach(String, Option<u64>),
}

/// Runs client `id`'s plan.
pub(crate) fn run_client(ctx: &RunCtx, id: u32, hostile: bool, plan: Vec<Op>) -> ClientRun {
    let mut run = ClientRun {
        id,
        ..ClientRun::default()
    };
    run.summary.clients = 1;
    run.summary.hostile_clients = u64::from(hostile);
    let mut relay = match Relay::start(ctx.seed, id, Arc::clone(&ctx.balancer), ctx.relay) {
        Ok(relay) => relay,
        Err(error) => {
            run.summary.breaches.push(Breach::at(
                ctx.seed,
                id,
                0,
                format!("cannot start the relay: {error}"),
            ));
            return run;
        }
    };
    let mut rng = rng_for(ctx.seed, u64::from(id), 4);
    let mut client: Option<Client> = None;
    // Where the files of a batch are written for `put_files` (made at the first batch).
    let mut folder: Option<tempfile::TempDir> = None;
    for (step, op) in plan.iter().enumerate() {
        let step = step as u32;
        let started = Instant::now();
        let mut retried = false;
        let outcomes = match op {
            Op::Hostile {
                kind,
                name,
                content,
            } => vec![(
                op.clone(),
                match misbehave(
                    ctx.balancer.pick().1,
                    *kind,
                    &ctx.full(name),
                    *content,
                    ctx.hostile_wait,
                    &mut rng,
                ) {
                    Ok(code) => Outcome::Hostile(code),
                    Err(error) => Outcome::Failed(error),
                },
            )],
            _ => {
                let (size, download) = match op {
                    Op::Put { content, .. } | Op::PutShared { content, .. } => {
                        (content.size, false)
                    }
                    Op::PutMany { files } => (files.iter().map(|(_, c)| c.size).sum(), false),
                    Op::Get { name } => {
                        (run.model.get(&ctx.full(name)).map_or(0, |c| c.size), true)
                    }
                    _ => (0, false),
                };
                relay.hint(size, download);
                match connected(ctx, &relay, &mut client, &mut rng) {
                    Ok(client) => {
                        let before = relay.connections();
                        let began_on = relay.current_node();
                        let resumed_before = run.summary.resumed_mid_file;
                        let mut outcomes = match op {
                            Op::PutMany { files } => {
                                let (model, summary) = (&run.model, &mut run.summary);
                                execute_many(ctx, client, files, model, &mut folder, summary)
                            }
                            _ => vec![(
                                op.clone(),
                                execute(ctx, client, op, &run.model, &mut run.summary),
                            )],
                        };
                        for (op, outcome) in &mut outcomes {
                            // The server may hold our own interrupted upload until it notices
                            // the old connection died: wait for that, as a user would.
                            let mut waited = Duration::ZERO;
                            while matches!(outcome, Outcome::Refused(ErrorCode::InProgress))
                                && matches!(op, Op::Put { .. })
                                && !relay.fired().is_empty()
                                && waited < IN_PROGRESS_PATIENCE
                            {
                                std::thread::sleep(Duration::from_millis(500));
                                waited += Duration::from_millis(500);
                                run.summary.resumes += 1;
                                *outcome = execute(ctx, client, op, &run.model, &mut run.summary);
                            }
                        }
                        retried = relay.connections() > before;
                        // An upload retried on another node than the one it began on; if it
                        // went on from a byte past 0 there, the partial upload was shared
                        // through the store.
                        if matches!(op, Op::Put { .. } | Op::PutShared { .. })
                            && matches!(outcomes[..], [(_, Outcome::Stored)])
                            && retried
                            && relay.current_node() != began_on
                        {
                            run.summary.uploads_retried_on_other_node += 1;
                            run.summary.uploads_resumed_on_other_node +=
                                u64::from(run.summary.resumed_mid_file > resumed_before);
                        }
                        outcomes
                    }
                    Err(error) => {
                        let failed = || Outcome::Failed(format!("cannot connect: {error}"));
                        match op {
                            Op::PutMany { files } => files
                                .iter()
                                .map(|(name, content)| (put_of(name, content), failed()))
                                .collect(),
                            _ => vec![(op.clone(), failed())],
                        }
                    }
                }
            }
        };
        let mut ok = true;
        for (op, outcome) in outcomes {
            ok &= judge_step(ctx, &mut run, id, step, &op, outcome, retried);
        }
        if matches!(op, Op::Put { .. } | Op::PutShared { .. } | Op::Get { .. }) {
            run.summary
                .transfer_micros
                .push(started.elapsed().as_micros() as u64);
        }
        run.summary.operations += 1;
        run.steps.push((Instant::now(), ok));
    }
    drop(client);
    relay.stop();
    run.fired = relay.fired();
    for condition in relay.conditions() {
        run.summary.count_fault(condition);
    }
    run
}

/// Judges one outcome of step `step` and records it; whether it was as it should be.
fn judge_step(
    ctx: &RunCtx,
    run: &mut ClientRun,
    id: u32,
    step: u32,
    op: &Op,
    outcome: Outcome,
    retried: bool,
) -> bool {
    match judge(ctx, run, op, outcome, retried) {
        Verdict::Ok => true,
        Verdict::Expected => {
            run.summary.expected_failures += 1;
            true
        }
        Verdict::Breach(what, offset) => {
            run.summary.unexpected_failures += 1;
            // Report a failure once, not again at every later step on the same name.
            make_uncertain(ctx, run, op);
            let mut breach = Breach::at(ctx.seed, id, step, what);
            breach.first_difference = offset;
            run.summary.breaches.push(breach);
            false
        }
    }
}

/// The upload of one file of a batch, as the judge sees it: a [`Op::Put`] without overwrite.
fn put_of(name: &str, content: &ContentId) -> Op {
    Op::Put {
        name: name.to_owned(),
        content: *content,
        overwrite: false,
    }
}

/// Uploads a batch with the library's `put_files` (pipelined), from local files written into
/// `folder`; each file's outcome, as the upload of that file alone.
fn execute_many(
    ctx: &RunCtx,
    client: &mut Client,
    files: &[(String, ContentId)],
    model: &BTreeMap<String, ContentId>,
    folder: &mut Option<tempfile::TempDir>,
    summary: &mut Summary,
) -> Vec<(Op, Outcome)> {
    let mut outcomes: Vec<(Op, Outcome)> = files
        .iter()
        .map(|(name, content)| {
            let unknown = Outcome::Failed("put_files never reported it".into());
            (put_of(name, content), unknown)
        })
        .collect();
    let dir = match folder {
        Some(dir) => dir,
        None => match tempfile::tempdir() {
            Ok(dir) => folder.insert(dir),
            Err(error) => {
                for (_, outcome) in &mut outcomes {
                    *outcome = Outcome::Failed(format!("cannot make a local folder: {error}"));
                }
                return outcomes;
            }
        },
    };
    let mut list = Vec::with_capacity(files.len());
    for (k, (name, content)) in files.iter().enumerate() {
        let local = dir
            .path()
            .join(format!("{}_{}_{k}", content.step, content.size));
        if let Err(error) = std::fs::write(&local, content.bytes()) {
            outcomes[k].1 = Outcome::Failed(format!("cannot write {}: {error}", local.display()));
            return outcomes;
        }
        list.push((local, ctx.full(name)));
    }
    let options = PutOptions {
        overwrite: false,
        resume: true,
        tag: None,
    };
    let full_names: Vec<String> = list.iter().map(|(_, name)| name.clone()).collect();
    client.put_files(&list, &options, &mut |k, result| {
        outcomes[k].1 = match result {
            Ok(report) => {
                summary.bytes_moved += report.bytes_sent;
                summary.resumes += u64::from(report.attempts - 1);
                summary.resumed_mid_file += u64::from(report.resumed_from > 0);
                match report.outcome {
                    // A file in flight when a connection was lost, settled one by one, finds
                    // the bytes its pipelined attempt stored: under a name the model does not
                    // hold, no other upload sent them (a batch's contents are its own).
                    PutOutcome::AlreadyStored if !model.contains_key(&full_names[k]) => {
                        Outcome::Stored
                    }
                    outcome => put_outcome(outcome),
                }
            }
            Err(ClientError::Refused { code, .. }) => Outcome::Refused(code),
            Err(error) => Outcome::Failed(error.to_string()),
        };
    });
    for (local, _) in &list {
        let _ = std::fs::remove_file(local);
    }
    outcomes
}

impl RunCtx {
    /// The name on the server of a plan's name.
    pub(crate) fn full(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

/// The client's connection, opened (with retries: the relay may cut the handshake) if needed.
fn connected<'a>(
    ctx: &RunCtx,
    relay: &Relay,
    client: &'a mut Option<Client>,
    rng: &mut crate::plan::SimRng,
) -> Result<&'a mut Client, ClientError> {
    if client.is_none() {
        let mut attempt = 0;
        *client = Some(loop {
            match Client::connect(relay.addr(), ctx.options.clone()) {
                Ok(new) => break new,
                // A stalled or cut handshake: the server's `ERROR(Timeout)` reaches
                // `Client::connect` as a refusal, which it does not retry by itself.
                Err(error)
                    if error.is_transient()
                        || matches!(
                            error,
                            ClientError::Protocol(_)
                                | ClientError::Refused {
                                    code: ErrorCode::Timeout,
                                    ..
                                }
                        ) =>
                {
                    attempt += 1;
                    if attempt > ctx.options.retries {
                        return Err(error);
                    }
                    let pause = 20u64 << attempt.min(6);
                    std::thread::sleep(Duration::from_millis(pause + rng.random_range(0..20)));
                }
                Err(error) => return Err(error),
            }
        });
    }
    Ok(client.as_mut().expect("set just above"))
}

fn execute(
    ctx: &RunCtx,
    client: &mut Client,
    op: &Op,
    model: &BTreeMap<String, ContentId>,
    summary: &mut Summary,
) -> Outcome {
    let put = |client: &mut Client, name: &str, content: &ContentId, overwrite: bool| {
        let options = PutOptions {
            overwrite,
            resume: true,
            tag: Some(content.tag()),
        };
        client.put_from(
            &mut content.reader(),
            content.size,
            &ctx.full(name),
            &options,
            &mut |_| {},
        )
    };
    let result = match op {
        Op::Put {
            name,
            content,
            overwrite,
        } => put(client, name, content, *overwrite).map(|report| {
            summary.bytes_moved += report.bytes_sent;
            summary.resumes += u64::from(report.attempts - 1);
            summary.resumed_mid_file += u64::from(report.resumed_from > 0);
            put_outcome(report.outcome)
        }),
        Op::PutShared { name, content } => put(client, name, content, false).map(|report| {
            summary.bytes_moved += report.bytes_sent;
            summary.resumes += u64::from(report.attempts - 1);
            summary.resumed_mid_file += u64::from(report.resumed_from > 0);
            put_outcome(report.outcome)
        }),
        Op::Get { name } => {
            let full = ctx.full(name);
            let mut sink = CompareSink::new(model.get(&full).copied());
            client.get_to(&full, &mut sink, &mut |_| {}).map(|report| {
                summary.bytes_moved += report.bytes_received;
                summary.resumes += u64::from(report.attempts - 1);
                summary.resumed_mid_file += u64::from(report.resumed_from > 0);
                summary.resumed_mid_file += u64::from(report.resumed_from > 0);
                Outcome::Downloaded(sink.first_difference())
            })
        }
        Op::List { prefix } => client.list(&ctx.full(prefix)).map(|entries| {
            Outcome::Listed(entries.into_iter().map(|e| (e.name, e.size)).collect())
        }),
        Op::Remove { name } => client.remove(&ctx.full(name)).map(|()| Outcome::Removed),
        Op::Hostile { .. } => Ok(Outcome::Failed("hostile step on the library client".into())),
        Op::PutMany { .. } => Ok(Outcome::Failed("a batch is not one request".into())),
    };
    match result {
        Ok(outcome) => outcome,
        Err(ClientError::Refused { code, .. }) => Outcome::Refused(code),
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// Judges a step's outcome against the model; `retried` says whether the library had to open
/// a new connection during the step (then an answer to an earlier attempt may have been lost).
fn judge(ctx: &RunCtx, run: &mut ClientRun, op: &Op, outcome: Outcome, retried: bool) -> Verdict {
    let breach = |what: String| Verdict::Breach(what, None);
    if let Outcome::Failed(reason) = &outcome {
        return breach(format!("{} failed: {reason}", op.label()));
    }
    if let Op::Put { name, .. } | Op::Get { name } | Op::Remove { name } = op
        && run.uncertain.contains_key(&ctx.full(name))
    {
        return settle_uncertain(ctx, run, op, outcome);
    }
    match op {
        Op::Put {
            name,
            content,
            overwrite,
        } => {
            let full = ctx.full(name);
            let exists = run.model.contains_key(&full);
            match outcome {
                Outcome::Stored if *overwrite || !exists => {
                    run.model.insert(full, *content);
                    Verdict::Ok
                }
                Outcome::Refused(ErrorCode::AlreadyExists) if exists && !*overwrite => {
                    Verdict::Expected
                }
                other => breach(format!(
                    "upload of {full:?} (exists: {exists}, overwrite: {overwrite}) ended {}",
                    describe(&other)
                )),
            }
        }
        Op::Get { name } => {
            let full = ctx.full(name);
            match (run.model.contains_key(&full), outcome) {
                (true, Outcome::Downloaded(None)) => Verdict::Ok,
                (true, Outcome::Downloaded(Some(offset))) => Verdict::Breach(
                    format!("download of {full:?} differs from what was uploaded"),
                    Some(offset),
                ),
                (false, Outcome::Refused(ErrorCode::NotFound)) => Verdict::Expected,
                (exists, other) => breach(format!(
                    "download of {full:?} (exists: {exists}) ended {}",
                    describe(&other)
                )),
            }
        }
        Op::List { prefix } => {
            let want: Vec<(String, u64)> = run
                .model
                .range(ctx.full(prefix)..)
                .take_while(|(name, _)| name.starts_with(&ctx.full(prefix)))
                .map(|(name, content)| (name.clone(), content.size))
                .collect();
            match outcome {
                Outcome::Listed(mut got) => {
                    got.retain(|(name, _)| !run.uncertain.contains_key(name));
                    if got == want {
                        Verdict::Ok
                    } else {
                        breach(format!(
                            "listing shows {got:?}, the client expected {want:?}"
                        ))
                    }
                }
                other => breach(format!("listing ended {}", describe(&other))),
            }
        }
        Op::Remove { name } => {
            let full = ctx.full(name);
            match (run.model.contains_key(&full), outcome) {
                (true, Outcome::Removed) => {
                    run.model.remove(&full);
                    Verdict::Ok
                }
                (false, Outcome::Refused(ErrorCode::NotFound)) => Verdict::Expected,
                // The library takes NotFound on a retry as its earlier attempt's success, so
                // after a retry it cannot tell a missing name from one it removed.
                (false, Outcome::Removed) if retried => Verdict::Expected,
                (exists, other) => breach(format!(
                    "remove of {full:?} (exists: {exists}) ended {}",
                    describe(&other)
                )),
            }
        }
        Op::PutShared { name, content } => match outcome {
            Outcome::Stored => {
                run.shared.push((ctx.full(name), *content));
                Verdict::Ok
            }
            Outcome::Refused(ErrorCode::AlreadyExists | ErrorCode::InProgress) => Verdict::Expected,
            other => breach(format!(
                "shared upload of {name:?} ended {}",
                describe(&other)
            )),
        },
        // Each file of a batch is judged as its own upload (`execute_many`).
        Op::PutMany { .. } => breach(format!("a batch ended {}", describe(&outcome))),
        Op::Hostile { kind, .. } => match outcome {
            Outcome::Hostile(code) if code == kind.expected_code() => {
                run.summary.count_fault(kind.label());
                Verdict::Expected
            }
            other => breach(format!(
                "{} expected {:?}, ended {}",
                kind.label(),
                kind.expected_code(),
                describe(&other)
            )),
        },
    }
}

/// After a failed upload or removal the name may or may not have changed on the server: keep
/// every content it may hold, and stop predicting it until a later step settles it.
fn make_uncertain(ctx: &RunCtx, run: &mut ClientRun, op: &Op) {
    let (name, new) = match op {
        Op::Put { name, content, .. } => (name, Some(*content)),
        Op::Remove { name } => (name, None),
        _ => return,
    };
    let full = ctx.full(name);
    let mut candidates = run.uncertain.remove(&full).unwrap_or_default();
    candidates.extend(run.model.remove(&full));
    candidates.extend(new);
    run.uncertain.insert(full, candidates);
}

/// A step on a name in doubt: a stored upload or a removal settles it; anything else is
/// accepted (there is nothing certain to compare it with).
fn settle_uncertain(ctx: &RunCtx, run: &mut ClientRun, op: &Op, outcome: Outcome) -> Verdict {
    match (op, outcome) {
        (Op::Put { name, content, .. }, Outcome::Stored) => {
            let full = ctx.full(name);
            run.uncertain.remove(&full);
            run.model.insert(full, *content);
        }
        (Op::Remove { name }, Outcome::Removed | Outcome::Refused(ErrorCode::NotFound)) => {
            run.uncertain.remove(&ctx.full(name));
        }
        _ => {}
    }
    Verdict::Ok
}

/// What a successful upload means to the judge. A name that already held the same bytes (two
/// empty files, say) was not stored by this step: to the model that is a refusal for an
/// existing name, whose content it keeps (the bytes are the same).
fn put_outcome(outcome: PutOutcome) -> Outcome {
    match outcome {
        PutOutcome::AlreadyStored => Outcome::Refused(ErrorCode::AlreadyExists),
        _ => Outcome::Stored,
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Stored => "stored".into(),
        Outcome::Downloaded(None) => "downloaded intact".into(),
        Outcome::Downloaded(Some(at)) => format!("downloaded, differing at byte {at}"),
        Outcome::Listed(entries) => format!("listed {} entries", entries.len()),
        Outcome::Removed => "removed".into(),
        Outcome::Refused(code) => format!("refused: {code} ({code:?})"),
        Outcome::Hostile(code) => format!("answered {code} ({code:?})"),
        Outcome::Failed(reason) => format!("failed: {reason}"),
    }
}
