//! The mixed load: client threads uploading through the real client library (its retries and
//! resume included), recording every upload in the [`Ledger`].
//!
//! Each upload is drawn from the client's own seeded generator:
//!
//! - a **fresh** small file under a name of the client's own (`c<client>/f<step>`), without
//!   overwrite;
//! - or a file under one of the **shared** names (`pool/p<k>`) every client writes, small or
//!   large, with or without overwrite (without it, a name already stored is refused);
//! - or, right after an upload of its own that was not acknowledged, sometimes a **resend**
//!   of it: the same client file (same tag) sent again with overwrite, as a user would after
//!   an error. The others are left to the final rerun, their partial uploads untouched.
//!
//! A version's bytes come from (seed, client, step, size) ([`ContentId`]), so the checker can
//! produce every version ever sent. Clients start an upload only while the server is up (the
//! [`Gate`]); a kill then lands in uploads under way, which the library retries and resumes
//! against the restarted server until its retry budget runs out.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ferry_client::{Client, ClientError, ClientOptions, ErrorCode, PutOptions};
use rand::RngExt;

use super::ledger::{Ledger, Origin, Outcome};
use crate::content::ContentId;
use crate::plan::{SimRng, rng_for};

/// Stream of the clients' generators (see [`rng_for`]).
const LOAD_STREAM: u64 = 0xC4A5;

/// What the clients upload.
#[derive(Clone, Debug)]
pub struct LoadShape {
    /// Client threads.
    pub clients: u32,
    /// Shared names, written by every client.
    pub shared_names: u32,
    /// Largest small file, in bytes (small files are 0 to this).
    pub small_max: u64,
    /// Sizes of large files, in bytes.
    pub large: std::ops::RangeInclusive<u64>,
    /// Chance that an upload to a shared name is large.
    pub large_chance: f64,
    /// Chance that an upload is a fresh file of the client's own.
    pub fresh_chance: f64,
    /// Chance that an upload to a shared name asks to overwrite.
    pub overwrite_chance: f64,
    /// Chance that an upload that was not acknowledged is sent again at once.
    pub resend_chance: f64,
}

/// Whether clients may start uploads: open while the server is up, closed around a kill.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    stopped: bool,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate::default()
    }

    /// Lets clients start uploads.
    pub fn open(&self) {
        self.set(|state| state.open = true);
    }

    /// Holds clients back before their next upload.
    pub fn close(&self) {
        self.set(|state| state.open = false);
    }

    /// Ends the load: clients finish the upload under way and stop.
    pub fn stop(&self) {
        self.set(|state| state.stopped = true);
    }

    /// Waits until the gate is open; `false` once the load is stopped.
    fn wait_open(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.open && !state.stopped {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !state.stopped
    }

    fn set(&self, change: impl FnOnce(&mut GateState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }
}

/// The running client threads; stopped (each finishing its upload under way) when dropped.
#[derive(Debug)]
pub struct Load {
    threads: Vec<JoinHandle<()>>,
    gate: Arc<Gate>,
}

impl Load {
    /// Starts the clients against `addr`.
    pub fn start(
        seed: u64,
        shape: &LoadShape,
        addr: std::net::SocketAddr,
        options: &ClientOptions,
        ledger: &Arc<Ledger>,
        gate: &Arc<Gate>,
    ) -> std::io::Result<Load> {
        let mut threads = Vec::new();
        for id in 0..shape.clients {
            let worker = Worker {
                id,
                seed,
                shape: shape.clone(),
                addr,
                options: options.clone(),
                ledger: Arc::clone(ledger),
                gate: Arc::clone(gate),
            };
            threads.push(
                thread::Builder::new()
                    .name(format!("crash-client-{id}"))
                    .spawn(move || worker.run())?,
            );
        }
        Ok(Load {
            threads,
            gate: Arc::clone(gate),
        })
    }

    /// Stops the load: every client finishes the upload under way, then its thread ends.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.gate.stop();
        for thread in self.threads.drain(..) {
            // A panicking client thread is a harness bug; its panic message is already printed.
            let _ = thread.join();
        }
    }
}

struct Worker {
    id: u32,
    seed: u64,
    shape: LoadShape,
    addr: std::net::SocketAddr,
    options: ClientOptions,
    ledger: Arc<Ledger>,
    gate: Arc<Gate>,
}

impl Worker {
    fn run(self) {
        let mut rng = rng_for(self.seed, u64::from(self.id), LOAD_STREAM);
        let mut client: Option<Client> = None;
        let mut step = 0u32;
        let mut unacked: Option<(String, ContentId)> = None;
        while self.gate.wait_open() {
            let connected = match client.as_mut() {
                Some(client) => client,
                None => match Client::connect(self.addr, self.options.clone()) {
                    Ok(new) => client.insert(new),
                    // The server is restarting; the gate will say when it is back.
                    Err(_) => {
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                },
            };
            let (name, content, overwrite, origin) = self.draw(&mut rng, &mut step, &mut unacked);
            let id = self.ledger.begin(&name, content, overwrite, origin);
            let options = PutOptions {
                overwrite,
                resume: true,
                tag: Some(content.tag()),
            };
            let result = connected.put_from(
                &mut content.reader(),
                content.size,
                &name,
                &options,
                &mut |_| {},
            );
            let acked = result.is_ok();
            let refused = is_refusal(&result);
            self.ledger.finish(id, |at| outcome(at, result));
            if !acked && !refused {
                unacked = Some((name, content));
            }
        }
    }

    /// The next upload: its name, version, overwrite flag and origin.
    fn draw(
        &self,
        rng: &mut SimRng,
        step: &mut u32,
        unacked: &mut Option<(String, ContentId)>,
    ) -> (String, ContentId, bool, Origin) {
        let shape = &self.shape;
        if let Some((name, content)) = unacked.take()
            && rng.random_bool(shape.resend_chance)
        {
            return (name, content, true, Origin::Resend);
        }
        let this = *step;
        *step += 1;
        let small = |rng: &mut SimRng| rng.random_range(0..=shape.small_max);
        let version = |size| ContentId {
            seed: self.seed,
            client: self.id,
            step: this,
            size,
        };
        if rng.random_bool(shape.fresh_chance) {
            let name = format!("c{}/f{this}", self.id);
            return (name, version(small(rng)), false, Origin::Load);
        }
        let name = format!("pool/p{}", rng.random_range(0..shape.shared_names.max(1)));
        let size = if rng.random_bool(shape.large_chance) {
            rng.random_range(shape.large.clone())
        } else {
            small(rng)
        };
        let overwrite = rng.random_bool(shape.overwrite_chance);
        (name, version(size), overwrite, Origin::Load)
    }
}

/// Whether an upload's result is a refusal that retrying cannot change.
pub fn is_refusal<T>(result: &Result<T, ClientError>) -> bool {
    matches!(
        result,
        Err(ClientError::Refused {
            code: ErrorCode::AlreadyExists,
            ..
        })
    )
}

/// The ledger's outcome for an upload's result, at `at`.
pub fn outcome(
    at: super::ledger::Tick,
    result: Result<ferry_client::PutReport, ClientError>,
) -> Outcome {
    match result {
        Ok(report) => Outcome::Acked {
            at,
            resumed_from: report.resumed_from,
            attempts: report.attempts,
        },
        Err(ClientError::Refused { code, .. }) if code == ErrorCode::AlreadyExists => {
            Outcome::Refused { at, code }
        }
        Err(error) => Outcome::Interrupted {
            at,
            error: error.to_string(),
        },
    }
}
