//! How a simulated client judges the end of a step against its model of the server.

use std::collections::BTreeMap;

use ferry_protocol::{ErrorCode, ListEntry};

use super::client::Task;
use super::world::{Ctx, SharedResult};
use crate::content::ContentId;
use crate::plan::Op;
use crate::report::Breach;

/// How a step ended, as the client saw it.
#[derive(Debug)]
pub(super) enum Outcome {
    Stored,
    /// The client library found these very bytes stored under the name already.
    AlreadyStored,
    Downloaded(Vec<u8>),
    Listed(Vec<ListEntry>),
    Removed,
    Refused(ErrorCode),
}

/// Whose step is judged.
pub(super) struct Who<'a> {
    pub client: u32,
    pub step: u32,
    /// What the server must hold under the client's names; updated by the verdict.
    pub model: &'a mut BTreeMap<String, ContentId>,
}

/// What a step's end means.
pub(super) enum Verdict {
    /// As predicted.
    Ok,
    /// The error the plan predicted.
    Expected,
    /// A transient refusal after a fault: try the step again.
    Retry,
    /// A broken promise.
    Breach(Breach),
}

pub(super) fn judge(who: Who<'_>, ctx: &mut Ctx<'_>, task: &Task, outcome: Outcome) -> Verdict {
    let Who {
        client,
        step,
        model,
    } = who;
    let breach = |what: String| Verdict::Breach(Breach::at(ctx.seed, client, step, what));
    match (&task.op, outcome) {
        (
            Op::Put {
                name,
                content,
                overwrite,
            },
            outcome,
        ) => judge_put(
            ctx,
            (client, step),
            model,
            (name, *content, *overwrite),
            (task.maybe_done, task.attempts > 0),
            outcome,
        ),
        (Op::Get { name }, outcome) => match (model.get(name), outcome) {
            (Some(content), Outcome::Downloaded(data)) => match content.first_difference(&data) {
                None => Verdict::Ok,
                Some(offset) => Verdict::Breach(
                    Breach::at(
                        ctx.seed,
                        client,
                        step,
                        format!("download of {name:?} differs from what was uploaded"),
                    )
                    .differing_at(offset),
                ),
            },
            (None, Outcome::Refused(ErrorCode::NotFound)) => Verdict::Expected,
            (expected, other) => breach(format!(
                "download of {name:?} (expected {}) ended {}",
                if expected.is_some() {
                    "its data"
                } else {
                    "NotFound"
                },
                describe(&other)
            )),
        },
        (Op::List { .. }, Outcome::Listed(entries)) => {
            let got: Vec<(String, u64)> = entries.into_iter().map(|e| (e.name, e.size)).collect();
            let want: Vec<(String, u64)> = model
                .iter()
                .map(|(name, content)| (name.clone(), content.size))
                .collect();
            if got == want {
                Verdict::Ok
            } else {
                breach(format!(
                    "listing shows {got:?}, the client expected {want:?}"
                ))
            }
        }
        (Op::Remove { name }, outcome) => match (model.contains_key(name), outcome) {
            (true, Outcome::Removed) => {
                model.remove(name);
                Verdict::Ok
            }
            // Gone when a retry asked (an earlier attempt removed it, its answer lost): the
            // client library counts that as removed, and so does the model.
            (false, Outcome::Removed) if task.attempts > 0 => Verdict::Ok,
            (false, Outcome::Refused(ErrorCode::NotFound)) => Verdict::Expected,
            (exists, other) => breach(format!(
                "remove of {name:?} (exists: {exists}) ended {}",
                describe(&other)
            )),
        },
        (Op::PutShared { name, content }, outcome) => match outcome {
            Outcome::Stored => {
                ctx.shared(name, *content, SharedResult::Acknowledged);
                Verdict::Ok
            }
            Outcome::Refused(ErrorCode::AlreadyExists) => {
                if task.maybe_done {
                    ctx.shared(name, *content, SharedResult::Unknown);
                }
                Verdict::Expected
            }
            // Another client stored the same bytes first (its ACK recorded them).
            Outcome::AlreadyStored => Verdict::Expected,
            Outcome::Refused(ErrorCode::InProgress) => {
                if task.maybe_done {
                    ctx.shared(name, *content, SharedResult::Unknown);
                }
                Verdict::Expected
            }
            other => breach(format!(
                "shared upload of {name:?} ended {}",
                describe(&other)
            )),
        },
        (Op::Hostile { kind, .. }, Outcome::Refused(code)) if code == kind.expected_code() => {
            ctx.summary.count_fault(kind.label());
            Verdict::Expected
        }
        (op, other) => breach(format!("{} ended {}", op.label(), describe(&other))),
    }
}

/// Judges an upload of `content` to `name` (`overwrite` or not) by `client` at `step`:
/// `maybe_done` if an earlier attempt sent `DONE` and never heard the answer (it may have
/// stored the file), `retried` if an earlier attempt was interrupted (it may still hold the
/// name on the server for a while).
pub(super) fn judge_put(
    ctx: &mut Ctx<'_>,
    (client, step): (u32, u32),
    model: &mut BTreeMap<String, ContentId>,
    (name, content, overwrite): (&str, ContentId, bool),
    (maybe_done, retried): (bool, bool),
    outcome: Outcome,
) -> Verdict {
    let exists = model.contains_key(name);
    match outcome {
        Outcome::Stored if overwrite || !exists => {
            model.insert(name.to_owned(), content);
            Verdict::Ok
        }
        // The library compared digests: the name holds this content (put before by this
        // client, or by an earlier attempt whose ACK was lost).
        Outcome::AlreadyStored
            if maybe_done
                || model
                    .get(name)
                    .is_some_and(|held| held.digest() == content.digest()) =>
        {
            model.insert(name.to_owned(), content);
            Verdict::Ok
        }
        Outcome::Refused(ErrorCode::AlreadyExists) if exists && !overwrite => Verdict::Expected,
        // Our own earlier attempt was stored, but its ACK was lost.
        Outcome::Refused(ErrorCode::AlreadyExists) if maybe_done => {
            model.insert(name.to_owned(), content);
            Verdict::Ok
        }
        // Our own interrupted attempt still holds the name on the server.
        Outcome::Refused(ErrorCode::InProgress) if retried => Verdict::Retry,
        other => Verdict::Breach(Breach::at(
            ctx.seed,
            client,
            step,
            format!(
                "upload of {name:?} (exists: {exists}, overwrite: {overwrite}) ended {other:?}"
            ),
        )),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Stored => "stored".into(),
        Outcome::AlreadyStored => "found stored already".into(),
        Outcome::Downloaded(data) => format!("downloaded {} bytes", data.len()),
        Outcome::Listed(entries) => format!("listed {} entries", entries.len()),
        Outcome::Removed => "removed".into(),
        Outcome::Refused(code) => format!("refused: {code} ({code:?})"),
    }
}
