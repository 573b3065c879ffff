//! The bounded pool that runs session calls off the event loops: every call that may block on
//! the disk's durability or on the network (a write, an fsync, a rename, an object-store
//! request, the read of a download's next chunk) runs on one of its threads.
//!
//! Each connection has at most one job queued or running at a time (its session travels with
//! the job), so the queue never holds more jobs than there are connections, and a session
//! blocked for seconds holds one worker while the others serve everybody else.
//!
//! A job goes to the worker that went idle last. The steps of one busy connection then run on
//! the same thread trip after trip (it is the one that just handed the connection back), which
//! stays on its processor and keeps its caches; waking the worker that waited longest, as a
//! shared condition variable does, sent each trip of a large upload to another of the 32
//! threads, wherever that one last ran — as often as not beside the client.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, Thread};

/// A unit of work: one step of one session.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Worker threads of the pool.
#[derive(Debug)]
pub(super) struct Pool {
    queue: Arc<Queue>,
    workers: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job, the one that went idle last on top.
    idle: Vec<Thread>,
    stopping: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `threads` workers with stacks of `stack` bytes.
    pub(super) fn start(threads: usize, stack: usize) -> io::Result<Pool> {
        let queue = Arc::new(Queue::default());
        let mut pool = Pool {
            queue,
            workers: Vec::with_capacity(threads),
        };
        for _ in 0..threads.max(1) {
            let queue = Arc::clone(&pool.queue);
            let worker = thread::Builder::new()
                .name("ferry-store".into())
                .stack_size(stack)
                .spawn(move || work(&queue))?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Queues `job` and wakes the worker that went idle last, if one waits.
    pub(super) fn run(&self, job: Job) {
        let mut state = self.queue.lock();
        state.jobs.push_back(job);
        let worker = state.idle.pop();
        drop(state);
        if let Some(worker) = worker {
            worker.unpark();
        }
    }

    /// Whether jobs wait for a free worker.
    pub(super) fn has_waiting(&self) -> bool {
        !self.queue.lock().jobs.is_empty()
    }

    /// Lets the workers finish the jobs queued and waits for them.
    pub(super) fn stop(&mut self) {
        let idle = {
            let mut state = self.queue.lock();
            state.stopping = true;
            std::mem::take(&mut state.idle)
        };
        for worker in idle {
            worker.unpark();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn work(queue: &Queue) {
    loop {
        let mut state = queue.lock();
        let job = loop {
            if let Some(job) = state.jobs.pop_front() {
                break job;
            }
            if state.stopping {
                return;
            }
            // Idle until a job's `run` takes this worker off the stack and unparks it (an
            // unpark that comes before the park is kept, so none is lost; a spurious wake-up
            // finds no job and parks again, still on the stack).
            let me = thread::current();
            if !state.idle.iter().any(|idle| idle.id() == me.id()) {
                state.idle.push(me);
            }
            drop(state);
            thread::park();
            state = queue.lock();
        };
        drop(state);
        job();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;

    /// Waits until all `workers` of `pool` are idle.
    fn until_all_idle(pool: &Pool, workers: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.queue.lock().idle.len() < workers {
            assert!(Instant::now() < deadline, "the workers never went idle");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn each_job_goes_to_the_worker_that_went_idle_last() {
        let mut pool = Pool::start(4, 64 * 1024).unwrap();
        let (sent, ran_on) = mpsc::channel();
        let mut workers = Vec::new();
        for _ in 0..6 {
            until_all_idle(&pool, 4);
            let sent = sent.clone();
            pool.run(Box::new(move || sent.send(thread::current().id()).unwrap()));
            workers.push(ran_on.recv().unwrap());
        }
        // The first job takes whichever worker parked last; every later one the worker that
        // ran the job before it (a shared condition variable would have rotated through all).
        assert!(workers.windows(2).all(|w| w[0] == w[1]), "{workers:?}");
        pool.stop();
    }

    #[test]
    fn jobs_queued_while_every_worker_is_busy_all_run_and_dropping_the_pool_waits_for_them() {
        let pool = Pool::start(2, 64 * 1024).unwrap();
        let (sent, done) = mpsc::channel();
        for job in 0..20 {
            let sent = sent.clone();
            pool.run(Box::new(move || {
                thread::sleep(Duration::from_millis(2));
                sent.send(job).unwrap();
            }));
        }
        assert!(
            pool.has_waiting(),
            "two workers cannot have taken 20 jobs at once"
        );
        drop(pool);
        let mut ran: Vec<i32> = done.try_iter().collect();
        ran.sort_unstable();
        assert_eq!(ran, (0..20).collect::<Vec<_>>());
    }
}
