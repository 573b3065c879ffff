//! The bounded pool that runs session calls off the event loops: every call that may block on
//! the disk's durability or on the network (a write, an fsync, a rename, an object-store
//! request, the read of a download's next chunk) runs on one of its threads.
//!
//! Each connection has at most one job queued or running at a time (its session travels with
//! the job), so the queue never holds more jobs than there are connections, and a session
//! blocked for seconds holds one worker while the others serve everybody else.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

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
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
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

    /// Queues `job` for the next free worker.
    pub(super) fn run(&self, job: Job) {
        let mut jobs = self.queue.lock();
        jobs.0.push_back(job);
        drop(jobs);
        self.queue.ready.notify_one();
    }

    /// Lets the workers finish the jobs queued and waits for them.
    pub(super) fn stop(&mut self) {
        self.queue.lock().1 = true;
        self.queue.ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Job>, bool)> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn work(queue: &Queue) {
    loop {
        let mut jobs = queue.lock();
        let job = loop {
            if let Some(job) = jobs.0.pop_front() {
                break job;
            }
            if jobs.1 {
                return;
            }
            jobs = queue
                .ready
                .wait(jobs)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(jobs);
        job();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}
