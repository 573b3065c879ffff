//! One step of a session, as the pool runs it: the inputs the event loop gathered go in, the
//! output comes back in a buffer with what the loop needs to know next (is there more to send,
//! is the session over, when is its next deadline). This file is the only place the events
//! engine calls the [`Session`]; the loop never does, because any session call may touch the
//! store.
//!
//! A connection that stays busy (a large upload or download) does not go back to the loop
//! after each step: [`run_away`] serves its link on the pool too — non-blocking reads and
//! writes — and runs the next step at once. When the socket has no room for a download's
//! output, or no bytes of an upload under way, the thread waits up to [`PATIENCE`] for them
//! before it hands the connection back, if no other job waits for a thread (a 1 GiB TLS get,
//! whose client decrypts more slowly than the server encrypts, took 1.73 s with a 500 µs wait
//! and 1.59 s with 2 ms, against the thread engine's 1.57 s). Each trip through the loop costs
//! two thread wake-ups; on a virtual machine they cost about as much as the step itself, and a
//! transfer whose steps hop from thread to thread runs on whichever processor each last ran on
//! (a 1 GiB `ferry put` moved between processors 104 times, and took 1.22 s against the thread
//! engine's 1.08 s; with the waits, the pool's last-idle-first wake-up and the trips below, 16
//! times and 1.09 s).
//!
//! Every [`STEPS_AWAY`] steps it goes back to the loop, and so to the end of the pool's queue,
//! if another job waits for a thread: busy connections then take turns. While nobody waits it
//! keeps its thread, as the thread engine's connection does. Nothing it must hear waits at
//! the loop: each step reads the shutdown state and the session's deadline itself, and a
//! takeover ends the socket's reads.

use std::cell::RefCell;
use std::time::Duration;

use ferry_protocol::Timestamp;

use super::input::Input;
use super::link::{Link, Next, read_buffer};
use super::pool::Pool;
use crate::server::Shared;
use crate::session::Session;

/// Steps one connection runs on the pool before it lets another job waiting for a thread go
/// first (4 MiB of a transfer at 256 KiB a step).
pub(super) const STEPS_AWAY: usize = 16;

/// How long a pool thread waits for room in a download's socket, or an upload's next bytes
/// (`Link::await_ready`), before it hands the connection back to the loop.
const PATIENCE: Duration = Duration::from_millis(2);

thread_local! {
    /// A pool thread's read buffer (`link::read_buffer`).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A connection's session and link on their way to the pool, with the step to run.
pub(super) struct Away {
    pub(super) session: Box<Session>,
    pub(super) link: Box<Link>,
    pub(super) step: Step,
}

/// Runs `away`'s step, and the next ones while its link asks for them (letting jobs that wait
/// in `pool` go first every [`STEPS_AWAY`]); returns the session and link with the link's
/// last word.
pub(super) fn run_away(
    shared: &Shared,
    pool: &Pool,
    away: Away,
) -> (Box<Session>, Box<Link>, Next) {
    let Away {
        mut session,
        mut link,
        mut step,
    } = away;
    SCRATCH.with_borrow_mut(|scratch| {
        let scratch = read_buffer(scratch);
        let mut steps = 0;
        loop {
            link.handle_outcome(run(shared, &mut session, step));
            steps += 1;
            if steps % STEPS_AWAY == 0 && pool.has_waiting() {
                // Back to the loop, which serves the link again.
                return (session, link, Next::Wait);
            }
            let mut waits = 0;
            let next = loop {
                match link.serve(shared, scratch) {
                    // Bounded too: a socket ready again and again with nothing moved (which
                    // should not happen) still goes back to the loop.
                    Next::Wait
                        if waits < STEPS_AWAY
                            && !pool.has_waiting()
                            && link.await_ready(PATIENCE, session.is_busy()) =>
                    {
                        waits += 1
                    }
                    next => break next,
                }
            };
            match next {
                Next::Step(next) => step = next,
                next => return (session, link, next),
            }
        }
    })
}

/// Output gathered in one step before it goes back to the loop to be written: a few data
/// chunks, so that a download moves in large writes yet a connection never holds much.
pub(super) const OUTPUT_BATCH: usize = 256 * 1024;

/// What the loop hands the session in one step.
#[derive(Debug, Default)]
pub(super) struct Step {
    /// Bytes read and not yet taken (offered when `offer`); what is left comes back.
    pub(super) input: Input,
    /// Whether to offer `input`.
    pub(super) offer: bool,
    /// The client closed its side.
    pub(super) eof: bool,
    /// A buffer for the output (empty; reused while data flows).
    pub(super) out: Vec<u8>,
}

/// What one step gave back.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The input the session left, to offer again.
    pub(super) input: Input,
    /// How many input bytes the session took.
    pub(super) consumed: usize,
    /// Bytes to write to the client.
    pub(super) out: Vec<u8>,
    /// The session has more to send than fit in this step's batch.
    pub(super) more: bool,
    /// The session is over (once `out` is written).
    pub(super) closed: bool,
    /// When the session next wants to be told the time.
    pub(super) deadline: Option<Timestamp>,
}

/// Runs one step: the shutdown phase, the input, the end of stream and the time, then the
/// output until it is drained or a batch is full — the same order as the thread driver.
pub(super) fn run(shared: &Shared, session: &mut Session, step: Step) -> Outcome {
    let Step {
        mut input,
        offer,
        eof,
        mut out,
    } = step;
    let now = shared.now();
    if shared.shutdown.is_stopping() {
        session.handle_shutdown(now, shared.shutdown.is_past_grace());
    }
    let mut consumed = 0;
    if offer && !input.is_empty() {
        consumed = session.handle_input(now, input.bytes());
        input.consume(consumed);
    }
    if eof {
        session.handle_eof(now);
    }
    if session
        .poll_timeout()
        .is_some_and(|deadline| deadline <= now)
    {
        session.handle_timeout(now);
    }
    // Again after the input: a transfer that just ended is followed by the close.
    if shared.shutdown.is_stopping() {
        session.handle_shutdown(now, shared.shutdown.is_past_grace());
    }
    let more = loop {
        if session.poll_transmit(&mut out) == 0 {
            break false;
        }
        if shared.shutdown.is_past_grace() {
            session.handle_shutdown(shared.now(), true);
        }
        if out.len() >= OUTPUT_BATCH {
            break true;
        }
    };
    Outcome {
        input,
        consumed,
        out,
        more,
        closed: session.is_closed(),
        deadline: session.poll_timeout(),
    }
}

/// The last step: the connection is over (`lost` says why when the transport broke); an upload
/// under way is left resumable and the session is dropped, here, because that may sync.
pub(super) fn finish(mut session: Box<Session>, lost: Option<&str>) {
    if let Some(reason) = lost {
        session.handle_lost(reason);
    }
    session.close();
    drop(session);
}
