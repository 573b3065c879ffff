//! Running a list of transfers on N connections in parallel. Each worker keeps its connection
//! for file after file; a file that fails does not stop the others.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_client::{Client, ClientError, Progress, display_name};

use crate::plan::Job;
use crate::show::Display;

/// A transfer of one job on a client, reporting progress.
pub type Transfer<'a, R> =
    dyn Fn(&mut Client, &Job, &mut dyn FnMut(Progress)) -> Result<R, ClientError> + Sync + 'a;

/// Runs every job on `workers` connections made by `connect`; results come back in job order.
pub fn parallel<R: Send>(
    jobs: &[Job],
    workers: usize,
    connect: &(dyn Fn() -> Result<Client, ClientError> + Sync),
    display: &Display,
    transfer: &Transfer<'_, R>,
) -> Vec<Result<R, ClientError>> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, ClientError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                let mut client: Option<Client> = None;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else { break };
                    let mut shown = display.start(&job.name);
                    let result = match &mut client {
                        Some(client) => Ok(client),
                        None => connect().map(|made| client.insert(made)),
                    }
                    .and_then(|client| {
                        transfer(client, job, &mut |progress| shown.update(progress))
                    });
                    shown.finish(result.is_ok());
                    if let Err(error) = &result {
                        display.error(&format!("{}: {error}", display_name(&job.name)));
                    }
                    display.file_done(finished.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(ClientError::Internal(ferry_protocol::CommandError::Closed)))
        })
        .collect()
}
