//! The end of a crash run: every interrupted upload is run again, one at a time against the
//! last server, from the same client file (same tag, so it resumes what the server kept), and
//! must complete with its bytes stored.
//!
//! With nothing else running, a rerun's outcome is exact: an acknowledged rerun leaves the
//! name holding its bytes (downloaded and compared); a create-only rerun may instead be
//! refused because the name exists, which is right whether another version holds it or its
//! own bytes do (an earlier attempt committed and its acknowledgement was lost); the summary
//! counts the two apart. Any other end is a [`Rule::RerunFailed`] violation, and so is an
//! acknowledged rerun that resumed from less than the server said it held for it (a `QUERY`
//! just before): the promise that a resume sends only what is missing.

use std::net::SocketAddr;

use ferry_client::{Client, ClientError, ClientOptions, PutOptions};

use super::ledger::{Ledger, Origin, Outcome};
use super::load::{is_refusal, outcome};
use super::rules::{Rule, Violation, show_one};
use super::summary::CrashSummary;
use crate::content::ContentId;
use crate::sockets::CompareSink;

/// Runs every interrupted upload of the ledger again against `addr`.
pub fn rerun_interrupted(
    addr: SocketAddr,
    options: &ClientOptions,
    ledger: &Ledger,
    summary: &mut CrashSummary,
) -> Result<Vec<Violation>, ClientError> {
    let interrupted: Vec<_> = ledger
        .snapshot()
        .into_iter()
        .filter(|r| r.origin != Origin::Rerun && matches!(r.outcome, Outcome::Interrupted { .. }))
        .collect();
    let mut violations = Vec::new();
    let mut client = Client::connect(addr, options.clone())?;
    for record in interrupted {
        summary.reruns += 1;
        let (name, content) = (&record.name, record.content);
        let mut violation = |detail: String| {
            violations.push(Violation {
                rule: Rule::RerunFailed,
                name: name.clone(),
                detail: format!("rerun of {}: {detail}", show_one(&content)),
                when: "at the end".into(),
            });
        };
        // What the server kept of it: a rerun must resume from there.
        let (_, kept) = client.query(name, content.tag())?;
        let kept = kept.unwrap_or(0);
        summary.rerun_partials_kept += u64::from(kept > 0);
        let id = ledger.begin(name, content, record.overwrite, Origin::Rerun);
        let put = PutOptions {
            overwrite: record.overwrite,
            resume: true,
            tag: Some(content.tag()),
        };
        let result = client.put_from(&mut content.reader(), content.size, name, &put, &mut |_| {});
        let refused = is_refusal(&result);
        let resumed = result.as_ref().map_or(0, |report| report.resumed_from);
        let error = result.as_ref().err().map(ToString::to_string);
        ledger.finish(id, |at| outcome(at, result));
        let holds_it = holds(&mut client, name, content)?;
        match error {
            None => {
                summary.rerun_acked += 1;
                summary.rerun_resumed += u64::from(resumed > 0);
                if let Err(what) = holds_it {
                    violation(format!("acknowledged, but the server then serves {what}"));
                }
                if resumed < kept {
                    violation(format!(
                        "the server held {kept} resumable bytes but the rerun resumed from {resumed}"
                    ));
                }
            }
            Some(_) if refused && !record.overwrite => match holds_it {
                Ok(()) => summary.rerun_refused_already_stored += 1,
                Err(_) => summary.rerun_refused_name_taken += 1,
            },
            Some(error) => violation(format!("did not complete: {error}")),
        }
    }
    Ok(violations)
}

/// Whether the server serves exactly `content` under `name`; `Err` says what it serves
/// instead.
fn holds(
    client: &mut Client,
    name: &str,
    content: ContentId,
) -> Result<Result<(), String>, ClientError> {
    let mut sink = CompareSink::new(Some(content));
    match client.get_to(name, &mut sink, &mut |_| {}) {
        Ok(report) => Ok(match sink.first_difference() {
            None => Ok(()),
            Some(at) => Err(format!("{} bytes differing at byte {at}", report.size)),
        }),
        Err(error) if !error.is_transient() => Ok(Err(format!("nothing ({error})"))),
        Err(error) => Err(error),
    }
}
