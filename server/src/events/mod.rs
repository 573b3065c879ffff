//! The events engine (`--engine events`): every connection served from a few event-loop
//! threads with readiness I/O (mio), and every session call run on a bounded pool.
//!
//! ```text
//!  accept thread ── seat under the limits ──► loop k (round robin), by its channel + waker
//!
//!  event loop (1 per core, at most 4)             pool (POOL_THREADS, bounded)
//!  ┌──────────────────────────────────┐           ┌───────────────────────────────────┐
//!  │ mio Poll over its sockets        │  Away     │ step::run: handle_shutdown,       │
//!  │ Link::serve: non-blocking reads  │ ────────► │ handle_input, handle_eof,         │
//!  │ and writes, rustls (sans-IO TLS: │ (session  │ handle_timeout, poll_transmit ×N; │
//!  │ computation only), first byte    │ and link  │ then Link::serve and the next     │
//!  │ timers: session deadlines,       │  travel)  │ step, while the transfer flows    │
//!  │ write stalls, lingering closes   │ ◄──────── │ step::finish: handle_lost, close  │
//!  └──────────────────────────────────┘  Stepped  └───────────────────────────────────┘
//! ```
//!
//! **Where the line is drawn.** The loop threads never call the [`Session`](crate::Session):
//! any of its calls may block on the store — an upload's write, its checkpoint's `fdatasync`,
//! the commit's rename, a download's next chunk read, every object-store request — and one
//! such wait on a loop thread would stall every connection of that loop. The loop only does
//! what cannot wait: non-blocking socket reads and writes, TLS records (rustls computes, it does
//! not wait), the first-byte sniff, and timers. A session travels to the pool with the input
//! the loop gathered and comes back with its output, the bytes it left, and its next deadline;
//! each connection has at most one step in flight, so the pool's queue is bounded by the
//! connections, and a session blocked for seconds holds one worker while the rest serve
//! everybody else.
//!
//! **Busy connections.** A step takes the connection's link (its wire and buffers) along with
//! the session, and when the step is done the pool serves the link itself — the same
//! non-blocking reads and writes the loop makes (`link.rs`), waiting, while no other job
//! waits for a thread, at most 2 ms for a download's room or an upload's next bytes — and
//! runs the next step at once. Every `step::STEPS_AWAY` steps (4 MiB) the connection goes
//! back to the loop, and so behind the others, if another job waits for a thread; otherwise
//! it keeps its thread, as a connection of the thread engine does. Each trip through the loop
//! costs two thread wake-ups, which on a virtual machine cost about as much as the step, and
//! the pool wakes the worker that went idle last (`pool.rs`), so that a transfer's trips come
//! back to the same thread, on the same processor. Meanwhile the loop's poll does not watch
//! the socket (`event_loop::watch`), so its bytes arriving do not wake the loop.
//!
//! **Memory.** An idle connection holds its socket, its session and (under TLS) rustls'
//! state; its input and output buffers exist only while bytes flow and are freed once reads
//! have found nothing for 100 ms (`link::KEEP_BUFFERS`). A connection's input holds only what
//! it sent until it holds a transfer's data (`input.rs`); then it grows to its full size and
//! reads go straight into it. Smaller reads go through the serving thread's read buffer: the
//! loop's one serves all its connections, and a pool thread has one of its own, allocated
//! zeroed so that its pages cost memory only once a read fills them.
//!
//! **Rules.** The engine holds none: it offers bytes, tells the session the time when the
//! session's own deadline comes, and offers bytes the session left again once its output
//! drained (a pipelined request behind a download). The one timer of its own is the
//! transport's, as the thread driver's socket write timeout: a client that takes no bytes for
//! the idle timeout is gone.

mod conn;
mod event_loop;
mod input;
mod link;
mod pool;
mod step;
mod wire;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use event_loop::{EventLoop, Mailbox, Message, WAKE};
use pool::Pool;

use crate::server::{Seat, Shared};

/// Most event-loop threads (one per core up to this).
const MAX_LOOPS: usize = 4;

/// Threads of the pool that runs session calls: enough that a few stores blocked for seconds
/// leave most of them serving, few enough to stay cheap.
const POOL_THREADS: usize = 32;

/// Stack of a pool thread (the session's calls need little; buffers live on the heap).
const POOL_STACK: usize = 512 * 1024;

/// The running engine: its loops and its pool.
#[derive(Debug)]
pub(crate) struct EventEngine {
    mailboxes: Vec<Mailbox>,
    loops: Vec<JoinHandle<()>>,
    pool: Arc<Pool>,
    quit: Arc<AtomicBool>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl EventEngine {
    /// Starts the loops and the pool of `shared`'s server.
    pub(crate) fn start(shared: &Arc<Shared>) -> io::Result<EventEngine> {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        let pool = Arc::new(Pool::start(POOL_THREADS, POOL_STACK)?);
        let quit = Arc::new(AtomicBool::new(false));
        let mut engine = EventEngine {
            mailboxes: Vec::new(),
            loops: Vec::new(),
            pool,
            quit,
        };
        for _ in 0..cores.clamp(1, MAX_LOOPS) {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
            let (sender, inbox) = std::sync::mpsc::channel();
            let mailbox = Mailbox { sender, waker };
            shared.shutdown.add_waker(Arc::clone(&mailbox.waker));
            let event_loop = EventLoop::new(
                Arc::clone(shared),
                poll,
                mailbox.clone(),
                inbox,
                Arc::clone(&engine.pool),
                Arc::clone(&engine.quit),
            );
            let spawned = thread::Builder::new()
                .name("ferry-events".into())
                .spawn(move || event_loop.run());
            match spawned {
                Ok(handle) => engine.loops.push(handle),
                Err(error) => {
                    engine.stop();
                    return Err(error);
                }
            }
            engine.mailboxes.push(mailbox);
        }
        Ok(engine)
    }

    /// What the accept thread hands connections to.
    pub(crate) fn dispatcher(&self) -> Dispatcher {
        Dispatcher {
            mailboxes: self.mailboxes.clone(),
            next: 0,
        }
    }

    /// Ends the loops (closing what connections are left) and the pool.
    pub(crate) fn stop(&mut self) {
        self.quit.store(true, Ordering::Release);
        for mailbox in &self.mailboxes {
            let _ = mailbox.waker.wake();
        }
        for handle in self.loops.drain(..) {
            let _ = handle.join();
        }
        if let Some(pool) = Arc::get_mut(&mut self.pool) {
            pool.stop();
        }
    }
}

impl Drop for EventEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Hands accepted connections to the loops in turn.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    mailboxes: Vec<Mailbox>,
    next: usize,
}

impl Dispatcher {
    /// Hands an accepted connection to the next loop.
    pub(crate) fn serve(&mut self, stream: TcpStream, peer: SocketAddr, seat: Seat) {
        self.next = (self.next + 1) % self.mailboxes.len().max(1);
        if let Some(mailbox) = self.mailboxes.get(self.next) {
            mailbox.send(Message::Accepted(stream, peer, seat));
        }
    }
}
