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

/// Files a worker takes at once for [`pipelined`]: enough to keep a window full, few enough
/// that the workers share the list evenly.
const BATCH_MAX: usize = 1024;

/// A pipelined transfer of many jobs on a client: it reports each job's outcome by its index
/// in the slice.
pub type BatchTransfer<'a, R> =
    dyn Fn(&mut Client, &[Job], &mut dyn FnMut(usize, Result<R, ClientError>)) + Sync + 'a;

/// Runs every job on `workers` connections made by `connect`, each worker taking a batch of
/// jobs at a time and pipelining it with `transfer`; results come back in job order.
pub fn pipelined<R: Send>(
    jobs: &[Job],
    workers: usize,
    connect: &(dyn Fn() -> Result<Client, ClientError> + Sync),
    display: &Display,
    transfer: &BatchTransfer<'_, R>,
) -> Vec<Result<R, ClientError>> {
    let workers = workers.clamp(1, jobs.len().max(1));
    let batch = (jobs.len() / (2 * workers)).clamp(1, BATCH_MAX);
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, ClientError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut client: Option<Client> = None;
                loop {
                    let start = next.fetch_add(batch, Ordering::Relaxed);
                    let Some(taken) = jobs.get(start..(start + batch).min(jobs.len())) else {
                        break;
                    };
                    let record = |index: usize, result: Result<R, ClientError>| {
                        if let Err(error) = &result {
                            display
                                .error(&format!("{}: {error}", display_name(&taken[index].name)));
                        }
                        display.file_done(finished.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
                        results.lock().unwrap_or_else(|e| e.into_inner())[start + index] =
                            Some(result);
                    };
                    // Each job of the batch is one more try at connecting, as in `parallel`.
                    let mut first = 0;
                    while client.is_none() && first < taken.len() {
                        match connect() {
                            Ok(made) => client = Some(made),
                            Err(error) => {
                                record(first, Err(error));
                                first += 1;
                            }
                        }
                    }
                    if let Some(client) = client.as_mut() {
                        transfer(client, &taken[first..], &mut |index, result| {
                            record(first + index, result)
                        });
                    }
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
