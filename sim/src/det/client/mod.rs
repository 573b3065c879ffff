//! A simulated client: runs its plan one step at a time over simulated connections, keeps a
//! model of what the server must hold under its own names, and judges every answer against it.
//!
//! Uploads run the client library's own transfer logic ([`Upload`], [`UploadAttempt`]): the
//! same requests, resume, refusal handling (an existing name holding the same bytes) and
//! retry pauses ([`RetryPolicy`]) as `ferry`; this file only moves their bytes over simulated
//! links and judges the outcome. When a connection fails in the middle of a step, the client
//! reconnects after a backoff and tries the step again: an upload resumes under the same tag,
//! a download from the hash checkpoint of what it already holds.

use std::collections::BTreeMap;

use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, HashCheckpoint, ProtocolError,
    Timestamp, limits::DEFAULT_DATA_CHUNK,
};
use std::time::Duration;

use std::path::PathBuf;

use ferry_client::transfer::{
    Download, DownloadAttempt, Listing, Removal, RetryPolicy, Upload, UploadAttempt,
};
use rand::RngExt;

mod batch;
mod hostile;
mod transfers;

use super::judge::{Outcome, Verdict, Who, judge};
use super::link::{Dir, Link, LinkFaults, LinkParams};
use super::world::Ctx;
use crate::content::ContentId;
use crate::plan::{HostileKind, Op, SimRng, rng_for};
use crate::report::Breach;

/// Attempts of one step before the client gives up (a breach: faults are bounded, so a
/// correct system always gets through).
const MAX_ATTEMPTS: u32 = 40;

/// Connections with a fault per client; later ones are clean, so every plan can finish.
const MAX_FAULTY_CONNECTIONS: u32 = 4;

/// The current step, across its attempts.
#[derive(Debug)]
pub(super) struct Task {
    pub(super) op: Op,
    started: u64,
    pub(super) attempts: u32,
    /// Upload data (generated once per step).
    data: Vec<u8>,
    /// A regular upload's state across attempts: the client library's.
    upload: Option<Upload>,
    /// The attempt under way on the current connection.
    attempt: Option<UploadAttempt>,
    digest: Digest,
    /// Upload position while sending.
    sending: Option<usize>,
    /// An attempt sent its final word (`DONE` or `REMOVE`) without hearing the answer.
    pub(super) maybe_done: bool,
    /// Download data received so far, from offset 0 (the sink of `fetching`).
    download: Vec<u8>,
    /// A download's state across attempts: the client library's.
    fetching: Option<Download>,
    /// The download attempt under way on the current connection.
    fetch: Option<DownloadAttempt>,
    /// A listing under way: the client library's.
    listing: Option<Listing>,
    /// A removal under way: the client library's.
    removal: Option<Removal>,
    /// A batch under way ([`Op::PutMany`]).
    batch: Option<batch::Batch>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Start (or retry) the current step at this time.
    Wait(u64),
    /// A request is under way.
    Active,
    /// The plan is over.
    Done,
}

/// One simulated client.
#[derive(Debug)]
pub(crate) struct SimClient {
    pub id: u32,
    pub hostile: bool,
    plan: Vec<Op>,
    /// Index of the current step.
    pub step: usize,
    rng: SimRng,
    config: Config,
    /// The connection in use, by index in the world.
    pub conn: Option<usize>,
    cc: Option<ClientConnection>,
    connected: bool,
    inbox: Vec<u8>,
    phase: Phase,
    task: Option<Task>,
    /// What the server must hold under this client's names.
    pub model: BTreeMap<String, ContentId>,
    blocked_since: Option<u64>,
    /// A connection of the current step failed with a fault injected into it.
    step_faulted: bool,
    /// The server refused an upload on this connection with `InProgress` (a takeover by
    /// another connection of this client ends the connection so).
    taken_over: bool,
    faulty_connections: u32,
    chunk: usize,
}

impl SimClient {
    pub(crate) fn new(seed: u64, id: u32, hostile: bool, plan: Vec<Op>, config: Config) -> Self {
        let mut rng = rng_for(seed, u64::from(id), 2);
        let start = rng.random_range(0..50_000);
        SimClient {
            id,
            hostile,
            plan,
            step: 0,
            rng,
            config,
            conn: None,
            cc: None,
            connected: false,
            inbox: Vec::new(),
            phase: Phase::Wait(start),
            task: None,
            model: BTreeMap::new(),
            blocked_since: None,
            step_faulted: false,
            taken_over: false,
            faulty_connections: 0,
            chunk: DEFAULT_DATA_CHUNK,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn step_u32(&self) -> u32 {
        self.step as u32
    }

    /// Ends the current step as a breach: `what` went wrong that a correct system never does.
    fn give_up(&mut self, ctx: &mut Ctx<'_>, what: String) {
        let step = self.step_u32();
        ctx.breach(Breach::at(ctx.seed, self.id, step, what));
        self.finish(ctx, None);
    }

    fn idle_micros(&self) -> u64 {
        self.config.idle_timeout.as_micros() as u64
    }

    /// When the client must next act by itself.
    pub(crate) fn next_time(&self) -> Option<u64> {
        match self.phase {
            Phase::Wait(at) => Some(at),
            Phase::Done => None,
            Phase::Active => {
                let silent_wait =
                    matches!(self.task.as_ref().map(|t| &t.op), Some(Op::Hostile { .. }));
                let deadline = self
                    .cc
                    .as_ref()
                    .filter(|_| !silent_wait)
                    .and_then(ClientConnection::poll_timeout)
                    .map(Timestamp::as_micros);
                let write_limit = self.blocked_since.map(|since| since + self.idle_micros());
                deadline.into_iter().chain(write_limit).min()
            }
        }
    }

    /// Acts on whatever is due at `ctx.now`.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match self.phase {
            Phase::Wait(at) if at <= now => self.start(ctx),
            Phase::Active => {
                if self
                    .blocked_since
                    .is_some_and(|since| now >= since + self.idle_micros())
                {
                    self.fail(ctx, "the server stopped reading (write timed out)".into());
                    return;
                }
                let hostile = matches!(self.task.as_ref().map(|t| &t.op), Some(Op::Hostile { .. }));
                if let Some(cc) = &mut self.cc
                    && !hostile
                    && let Err(error) = cc.handle_timeout(Timestamp::from_micros(now))
                {
                    self.on_error(ctx, error);
                }
            }
            _ => {}
        }
    }

    /// Starts the current step (or retries it), connecting first if needed.
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if self.task.is_none() {
            let Some(op) = self.plan.get(self.step).cloned() else {
                self.disconnect(ctx);
                self.phase = Phase::Done;
                return;
            };
            self.task = Some(self.new_task(op, ctx.now));
        }
        self.phase = Phase::Active;
        let fresh = matches!(
            self.task.as_ref().map(|t| &t.op),
            Some(Op::Hostile {
                kind: HostileKind::GarbageMagic | HostileKind::SilentHandshake,
                ..
            })
        );
        if fresh {
            self.disconnect(ctx);
        }
        if self.cc.is_none() {
            self.connect(ctx, fresh);
            if fresh {
                self.hostile_raw_start(ctx);
            }
            return;
        }
        self.issue(ctx);
    }

    fn new_task(&mut self, op: Op, now: u64) -> Task {
        let (data, digest) = match &op {
            Op::Put { content, .. }
            | Op::PutShared { content, .. }
            | Op::Hostile { content, .. } => {
                let data = content.bytes();
                let digest = Digest::of(&data);
                (data, digest)
            }
            _ => (Vec::new(), Digest([0; 32])),
        };
        let upload = match &op {
            Op::Put {
                name,
                content,
                overwrite,
            } => Some((name, content, *overwrite)),
            Op::PutShared { name, content } => Some((name, content, false)),
            _ => None,
        }
        .map(|(name, content, overwrite)| {
            let chunk = self.rng.random_range(1..=DEFAULT_DATA_CHUNK);
            Upload::new(name, content.size, content.tag(), overwrite, chunk)
        });
        let batch = match &op {
            Op::PutMany { files } => Some(batch::Batch::new(files)),
            _ => None,
        };
        let fetching = match &op {
            Op::Get { name } => Some(Download::new(
                name,
                PathBuf::from(name),
                HashCheckpoint::start(),
            )),
            _ => None,
        };
        Task {
            op,
            started: now,
            attempts: 0,
            data,
            upload,
            attempt: None,
            digest,
            sending: None,
            maybe_done: false,
            download: Vec::new(),
            fetching,
            fetch: None,
            listing: None,
            removal: None,
            batch,
        }
    }

    /// Opens a connection with network conditions and (perhaps) a fault drawn from the seed.
    fn connect(&mut self, ctx: &mut Ctx<'_>, raw: bool) {
        let rng = &mut self.rng;
        let latency = if rng.random_bool(0.2) {
            rng.random_range(20_000..=150_000)
        } else {
            rng.random_range(50..=5_000)
        };
        let micros_per_kib = if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(10..=1_000)
        };
        let max_segment = match rng.random_range(0..10u32) {
            0 => rng.random_range(1..=512),
            1..=3 => 1460,
            _ => 64 * 1024,
        };
        self.chunk = rng.random_range(1..=DEFAULT_DATA_CHUNK);
        let params = LinkParams {
            latency,
            micros_per_kib,
            max_segment,
        };
        if latency >= 20_000 {
            ctx.summary.count_fault("net_high_latency");
        }
        if micros_per_kib > 0 {
            ctx.summary.count_fault("net_bandwidth_limit");
        }
        if max_segment <= 512 {
            ctx.summary.count_fault("net_tiny_segments");
        }
        let mut faults = LinkFaults::default();
        if !self.hostile
            && self.faulty_connections < MAX_FAULTY_CONNECTIONS
            && self.rng.random_bool(0.3)
        {
            self.faulty_connections += 1;
            let (hint, dir) = match self.task.as_ref().map(|t| (&t.op, &t.batch)) {
                Some((Op::Put { content, .. } | Op::PutShared { content, .. }, _)) => {
                    (content.size, Dir::ToServer)
                }
                // Anywhere in the batch's windows.
                Some((Op::PutMany { .. }, Some(batch))) => (batch.size(), Dir::ToServer),
                Some((Op::Get { name }, _)) => (
                    self.model.get(name).map_or(0, |content| content.size),
                    Dir::ToClient,
                ),
                _ => (0, Dir::ToClient),
            };
            let dir = if self.rng.random_bool(0.8) {
                dir
            } else if dir == Dir::ToServer {
                Dir::ToClient
            } else {
                Dir::ToServer
            };
            let at = self.rng.random_range(0..=hint + 200);
            if self.rng.random_bool(0.75) {
                faults.cut = Some((dir, at));
            } else {
                let duration = self.idle_micros() + self.rng.random_range(1_000_000..=30_000_000);
                faults.stall = Some((dir, at, duration));
            }
        }
        let link = Link::new(params, faults);
        let id = ctx.open(self.id, link);
        self.conn = Some(id);
        let mut cc = ClientConnection::new(self.config, Timestamp::from_micros(ctx.now), b"")
            .expect("an empty token is within the limit");
        let mut hello = Vec::new();
        cc.poll_transmit(&mut hello);
        if !raw {
            ctx.send(id, &hello);
        }
        self.cc = Some(cc);
        self.connected = false;
        self.inbox.clear();
        self.blocked_since = None;
        self.taken_over = false;
    }

    /// Closes the current connection from this side, if there is one.
    fn disconnect(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(id) = self.conn.take() {
            ctx.close(id);
            ctx.detach(id);
        }
        self.cc = None;
        self.connected = false;
        self.inbox.clear();
        self.blocked_since = None;
    }

    /// Sends the request of the current step on a connected connection.
    fn issue(&mut self, ctx: &mut Ctx<'_>) {
        if !self.connected {
            return;
        }
        if let Some(task) = &self.task
            && let Some(batch) = &task.batch
            && task.upload.is_none()
        {
            if !batch.is_windowing() {
                self.issue_batch(ctx);
            }
            return;
        }
        let (Some(cc), Some(task), Some(id)) = (&mut self.cc, &mut self.task, self.conn) else {
            return;
        };
        if let Some(upload) = &mut task.upload {
            match UploadAttempt::begin(upload, cc, task.attempts + 1) {
                Ok(attempt) => task.attempt = Some(attempt),
                Err(error) => {
                    self.give_up(
                        ctx,
                        format!("the client library refused its own upload: {error}"),
                    );
                    return;
                }
            }
            self.flush(ctx);
            return;
        }
        if let Some(fetching) = &mut task.fetching {
            match DownloadAttempt::begin(fetching, cc, task.attempts + 1) {
                Ok(fetch) => task.fetch = Some(fetch),
                Err(error) => {
                    self.give_up(
                        ctx,
                        format!("the client library refused its own download: {error}"),
                    );
                    return;
                }
            }
            self.flush(ctx);
            return;
        }
        let begun = match &task.op {
            Op::List { prefix } => Listing::begin(cc, prefix).map(|l| task.listing = Some(l)),
            Op::Remove { name } => {
                task.maybe_done = true;
                Removal::begin(cc, name, task.attempts + 1).map(|r| task.removal = Some(r))
            }
            _ => Ok(()),
        };
        if let Err(error) = begun {
            self.give_up(
                ctx,
                format!("the client library refused its own request: {error}"),
            );
            return;
        }
        let sent = match &task.op {
            Op::Put { .. }
            | Op::PutMany { .. }
            | Op::PutShared { .. }
            | Op::Get { .. }
            | Op::List { .. }
            | Op::Remove { .. } => Ok(()),
            Op::Hostile {
                kind,
                name,
                content,
                ..
            } => match kind {
                HostileKind::SizeLieOver | HostileKind::SizeLieUnder | HostileKind::WrongDigest => {
                    cc.put(name, content.size, false, false, content.tag())
                }
                HostileKind::GarbageFrame => {
                    let mut garbage = vec![0x50 + self.rng.random_range(0..0x20u8)];
                    let len = self.rng.random_range(0..64);
                    garbage.extend((0..len).map(|_| self.rng.random::<u8>()));
                    ctx.send(id, &garbage);
                    Ok(())
                }
                _ => Ok(()),
            },
        };
        if let Err(error) = sent {
            self.give_up(ctx, format!("client refused its own request: {error}"));
            return;
        }
        self.flush(ctx);
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if let (Some(cc), Some(id)) = (&mut self.cc, self.conn) {
            let mut out = Vec::new();
            if cc.poll_transmit(&mut out) > 0 {
                ctx.send(id, &out);
            }
        }
    }

    /// Bytes from the server on connection `id`: each piece of file data and each event is
    /// handled as the machine gives it, in order.
    pub(crate) fn on_data(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        if self.cc.is_none() {
            return;
        }
        let now = Timestamp::from_micros(ctx.now);
        self.inbox.extend_from_slice(bytes);
        let inbox = std::mem::take(&mut self.inbox);
        let mut start = 0;
        loop {
            // An event may have dropped the connection: the rest of its bytes are moot.
            let Some(cc) = &mut self.cc else { return };
            let received = match cc.handle_input(now, &inbox[start..]) {
                Ok(received) => received,
                Err(error) => {
                    self.on_error(ctx, error);
                    return;
                }
            };
            start += received.consumed;
            let events: Vec<_> = std::iter::from_fn(|| cc.poll_event()).collect();
            let progressed = received.consumed > 0 || !events.is_empty();
            if !received.file_data.is_empty() && !self.on_file_data(ctx, received.file_data) {
                return;
            }
            for event in events {
                self.on_event(ctx, event);
            }
            if !progressed {
                break;
            }
        }
        self.inbox = inbox[start..].to_vec();
    }

    /// The server's end of the stream.
    pub(crate) fn on_eof(&mut self, ctx: &mut Ctx<'_>) {
        let Some(cc) = &mut self.cc else { return };
        match cc.handle_eof(Timestamp::from_micros(ctx.now)) {
            Ok(()) => self.fail(ctx, "the server closed the connection".into()),
            Err(error) => self.on_error(ctx, error),
        }
    }

    fn on_event(&mut self, ctx: &mut Ctx<'_>, event: ClientEvent) {
        if let ClientEvent::Refused {
            code: ErrorCode::InProgress,
            ..
        } = event
        {
            self.taken_over = true;
        }
        if !matches!(
            event,
            ClientEvent::Connected { .. } | ClientEvent::Pong { .. }
        ) {
            if let Some(task) = &self.task
                && task.batch.as_ref().is_some_and(batch::Batch::is_windowing)
            {
                self.on_window_event(ctx, event);
                return;
            }
            if self.task.as_ref().is_some_and(|t| t.attempt.is_some()) {
                self.on_upload_event(ctx, event);
                return;
            }
            if self.task.as_ref().is_some_and(|t| t.fetch.is_some()) {
                self.on_download_event(ctx, event);
                return;
            }
            if self
                .task
                .as_ref()
                .is_some_and(|t| t.listing.is_some() || t.removal.is_some())
            {
                self.on_request_event(ctx, event);
                return;
            }
        }
        match event {
            ClientEvent::Connected { .. } => {
                self.connected = true;
                self.issue(ctx);
            }
            ClientEvent::PutReady { offset } => {
                if offset > 0 {
                    ctx.summary.resumed_mid_file += 1;
                }
                if let Some(task) = &mut self.task {
                    task.sending = Some(offset as usize);
                }
                self.pump(ctx);
            }
            ClientEvent::PutStored => self.finish(ctx, Some(Outcome::Stored)),
            ClientEvent::GetReady { offset, .. } => {
                if offset > 0 {
                    ctx.summary.resumed_mid_file += 1;
                }
                if let Some(task) = &mut self.task {
                    task.download.truncate(offset as usize);
                }
            }
            ClientEvent::GetVerified { .. } => {
                let data = self
                    .task
                    .as_mut()
                    .map(|t| std::mem::take(&mut t.download))
                    .unwrap_or_default();
                self.finish(ctx, Some(Outcome::Downloaded(data)));
            }
            ClientEvent::Refused { code, message } => {
                let connection_level = matches!(
                    code,
                    ErrorCode::Timeout
                        | ErrorCode::UnexpectedFrame
                        | ErrorCode::MalformedFrame
                        | ErrorCode::ShuttingDown
                        | ErrorCode::Busy
                        | ErrorCode::NotFerry
                );
                if connection_level && !self.is_hostile_task() {
                    self.fail(ctx, format!("server ended the exchange: {code}: {message}"));
                } else {
                    self.finish(ctx, Some(Outcome::Refused(code)));
                }
            }
            _ => {}
        }
    }

    fn is_hostile_task(&self) -> bool {
        matches!(self.task.as_ref().map(|t| &t.op), Some(Op::Hostile { .. }))
    }

    /// A fatal protocol error: the expected answer to a hostile step, or a failed connection.
    fn on_error(&mut self, ctx: &mut Ctx<'_>, error: ProtocolError) {
        if self.is_hostile_task()
            && let ProtocolError::Peer { code, .. } = &error
        {
            let code = *code;
            self.drop_connection(ctx);
            self.finish(ctx, Some(Outcome::Refused(code)));
            return;
        }
        if let ProtocolError::Peer {
            code: ErrorCode::InProgress,
            ..
        } = &error
        {
            self.taken_over = true;
        }
        self.fail(ctx, error.to_string());
    }

    /// Forgets the connection after a failure (closing our side).
    fn drop_connection(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(batch) = self.task.as_mut().and_then(|t| t.batch.as_mut()) {
            batch.interrupted(ctx);
        }
        if let (Some(task), Some(cc)) = (&mut self.task, &self.cc)
            && let (Some(fetching), Some(fetch)) = (&mut task.fetching, task.fetch.take())
        {
            fetch.interrupted(fetching, cc);
        }
        self.disconnect(ctx);
    }

    /// The connection failed: expected if a fault was injected into it; then retry the step.
    fn fail(&mut self, ctx: &mut Ctx<'_>, reason: String) {
        let Some(id) = self.conn else { return };
        let step = self.step_u32();
        let faulted = ctx.observe_faults(id);
        self.drop_connection(ctx);
        // The bytes of a connection an earlier fault broke may reach the server after those
        // of its successor (a slower link): an eager `PUT` of a file among them then takes
        // the file's upload over from the successor, which the server ends with `InProgress`
        // (the client library retries it). A consequence of that fault, not a new failure.
        let late_takeover = !faulted && self.taken_over && self.step_faulted;
        if late_takeover {
            ctx.summary.count_fault("takeover_by_late_bytes");
        }
        self.step_faulted |= faulted;
        if !faulted && !late_takeover {
            ctx.summary.unexpected_failures += 1;
            ctx.breach(Breach::at(
                ctx.seed,
                self.id,
                step,
                format!("connection failed with no fault injected: {reason}"),
            ));
            if self.task.is_some() {
                self.finish(ctx, None);
            }
            return;
        }
        if self.task.is_none() {
            // Between two steps there is nothing to get over: the next step connects again.
            ctx.recover_faults(self.id);
        }
        if let Some(task) = &mut self.task {
            task.sending = None;
            task.attempt = None;
            task.fetch = None;
            task.attempts += 1;
            ctx.summary.resumes += 1;
            if task.attempts > MAX_ATTEMPTS {
                ctx.breach(Breach::at(
                    ctx.seed,
                    self.id,
                    step,
                    format!("gave up after {MAX_ATTEMPTS} attempts: {reason}"),
                ));
                self.finish(ctx, None);
            } else {
                let attempts = task.attempts;
                let backoff = self.backoff(attempts);
                self.phase = Phase::Wait(ctx.now + backoff);
            }
        }
    }

    /// The client library's own rule ([`RetryPolicy`]), with the seed's randomness; the
    /// attempts are bounded separately ([`MAX_ATTEMPTS`]), so the pause is never `None`.
    fn backoff(&mut self, attempt: u32) -> u64 {
        let policy = RetryPolicy {
            retries: MAX_ATTEMPTS + 1,
            initial: Duration::from_millis(20),
            max: Duration::from_secs(2),
        };
        let pause = policy
            .pause(attempt.clamp(1, MAX_ATTEMPTS + 1), self.rng.random::<f64>())
            .unwrap_or(policy.max);
        pause.as_micros() as u64
    }

    /// Ends the current step with `outcome` (`None`: already reported as a breach), judged
    /// against the model.
    fn finish(&mut self, ctx: &mut Ctx<'_>, outcome: Option<Outcome>) {
        let settling = |task: &Task| task.batch.as_ref().is_some_and(|b| b.is_settling());
        if outcome.is_some() && self.task.as_ref().is_some_and(settling) {
            // One file of a batch, settled one by one: the batch goes on.
            if let Some(outcome) = outcome {
                self.finish_file(ctx, outcome);
            }
            return;
        }
        let Some(task) = self.task.take() else { return };
        let step = self.step_u32();
        if let Some(outcome) = outcome {
            let who = Who {
                client: self.id,
                step,
                model: &mut self.model,
            };
            match judge(who, ctx, &task, outcome) {
                Verdict::Ok => {}
                Verdict::Expected => ctx.summary.expected_failures += 1,
                Verdict::Retry => {
                    let mut task = task;
                    task.attempts += 1;
                    task.sending = None;
                    task.attempt = None;
                    task.fetch = None;
                    let backoff = self.backoff(task.attempts);
                    self.task = Some(task);
                    self.phase = Phase::Wait(ctx.now + backoff);
                    return;
                }
                Verdict::Breach(breach) => {
                    ctx.summary.unexpected_failures += 1;
                    ctx.breach(breach);
                }
            }
        }
        if matches!(
            task.op,
            Op::Put { .. } | Op::PutShared { .. } | Op::Get { .. }
        ) {
            ctx.summary
                .transfer_micros
                .push(ctx.now.saturating_sub(task.started));
        }
        ctx.summary.operations += 1;
        ctx.recover_faults(self.id);
        self.step_faulted = false;
        ctx.trace(u64::from(self.id), step as u64);
        self.step += 1;
        let think = self.rng.random_range(0..=50_000);
        self.phase = Phase::Wait(ctx.now + think);
    }
}
