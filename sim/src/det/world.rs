//! The discrete-event world: one simulated server (ferryd's real sessions over the in-memory
//! store), the clients and every connection's link, advanced by always processing the earliest
//! pending event on a virtual clock. Ties are broken by a fixed order (a server crash, links,
//! then server timers, then clients, each by index), so one seed always gives one run.

use std::collections::BTreeMap;

use super::client::SimClient;
use super::driver::ServerEnd;
use super::link::{Delivery, Dir, Link};
use super::server::SimServer;
use crate::content::ContentId;
use crate::report::{Breach, Summary};

/// Events after which a run is declared a livelock.
const MAX_EVENTS: u64 = 20_000_000;

/// Virtual time after which a run is declared stuck: one simulated day.
const MAX_VIRTUAL_MICROS: u64 = 24 * 3600 * 1_000_000;

/// The fault a server crash is to every connection open at the time.
const SERVER_CRASH: &str = "server_crash";

/// What a client learned about its upload to a shared name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SharedResult {
    /// `ACK`: this content must be what the name holds.
    Acknowledged,
    /// The answer was lost: this content may be what the name holds.
    Unknown,
}

/// One injected fault and what became of it.
#[derive(Debug)]
struct FaultRecord {
    kind: &'static str,
    client: u32,
    conn: usize,
    observed: bool,
    recovered: bool,
}

/// One connection: its link and its server end. The client end lives in the client.
#[derive(Debug)]
pub(crate) struct Conn {
    link: Link,
    server: ServerEnd,
    client: u32,
    /// The client has closed its end and forgotten the connection.
    client_gone: bool,
    faults: Vec<usize>,
}

/// What a client may touch while it acts: the network, the run's records.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub seed: u64,
    pub summary: &'a mut Summary,
    conns: &'a mut Vec<Conn>,
    faults: &'a mut Vec<FaultRecord>,
    shared: &'a mut Vec<(String, ContentId, SharedResult)>,
    trace: &'a mut u64,
    server: &'a SimServer,
}

impl Ctx<'_> {
    /// Opens a connection for `client`; the server accepts it at once.
    pub(crate) fn open(&mut self, client: u32, link: Link) -> usize {
        let id = self.conns.len();
        let server = self.server.accept(id, self.now);
        self.conns.push(Conn {
            link,
            server,
            client,
            client_gone: false,
            faults: Vec::new(),
        });
        mix(self.trace, 0xc0, id as u64);
        id
    }

    pub(crate) fn link(&mut self, id: usize) -> &mut Link {
        &mut self.conns[id].link
    }

    /// The client writes `bytes` to connection `id` now.
    pub(crate) fn send(&mut self, id: usize, bytes: &[u8]) {
        self.conns[id].link.write(Dir::ToServer, self.now, bytes);
    }

    /// The client closes its sending side of connection `id` now.
    pub(crate) fn close(&mut self, id: usize) {
        self.conns[id].link.close(Dir::ToServer, self.now);
    }

    /// The client closed its end and will not read it any more.
    pub(crate) fn detach(&mut self, id: usize) {
        collect_faults(self.conns, self.faults, id);
        let conn = &mut self.conns[id];
        conn.client_gone = true;
        // A crash whose end of stream had not reached the client when it left (it had its
        // answer already) never touched it.
        for &fault in &conn.faults {
            let fault = &mut self.faults[fault];
            if fault.kind == SERVER_CRASH && !fault.observed {
                fault.recovered = true;
            }
        }
    }

    /// The client saw connection `id` fail: marks its faults observed; false if it had none.
    pub(crate) fn observe_faults(&mut self, id: usize) -> bool {
        collect_faults(self.conns, self.faults, id);
        let conn = &self.conns[id];
        for &fault in &conn.faults {
            self.faults[fault].observed = true;
        }
        !conn.faults.is_empty()
    }

    /// The client finished a step: every fault it observed has been got over.
    pub(crate) fn recover_faults(&mut self, client: u32) {
        for fault in self.faults.iter_mut() {
            if fault.client == client && fault.observed {
                fault.recovered = true;
            }
        }
    }

    pub(crate) fn breach(&mut self, breach: Breach) {
        mix(self.trace, 0xbad, breach.step.map_or(0, u64::from));
        self.summary.breaches.push(breach);
    }

    pub(crate) fn shared(&mut self, name: &str, content: ContentId, result: SharedResult) {
        self.shared.push((name.to_owned(), content, result));
    }

    pub(crate) fn trace(&mut self, a: u64, b: u64) {
        mix(self.trace, a, b);
    }
}

/// Moves the faults that fired on connection `id` into the records, if its client still
/// listens (a fault on a connection its client already left changes nothing).
fn collect_faults(conns: &mut [Conn], faults: &mut Vec<FaultRecord>, id: usize) {
    let conn = &mut conns[id];
    for kind in conn.link.take_fired() {
        if conn.client_gone {
            continue;
        }
        conn.faults.push(faults.len());
        faults.push(FaultRecord {
            kind,
            client: conn.client,
            conn: id,
            observed: false,
            recovered: false,
        });
    }
}

fn mix(trace: &mut u64, a: u64, b: u64) {
    *trace = (trace.rotate_left(7) ^ a)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(11)
        ^ b;
}

/// A whole deterministic run.
pub(crate) struct World {
    seed: u64,
    now: u64,
    server: SimServer,
    /// When the server crashes, earliest last (each is popped when it happens).
    crashes: Vec<u64>,
    clients: Vec<SimClient>,
    conns: Vec<Conn>,
    /// Connections that may still have something to do.
    live: Vec<usize>,
    faults: Vec<FaultRecord>,
    shared: Vec<(String, ContentId, SharedResult)>,
    pub summary: Summary,
    pub trace: u64,
}

impl World {
    pub(crate) fn new(
        seed: u64,
        server: SimServer,
        mut crashes: Vec<u64>,
        clients: Vec<SimClient>,
    ) -> Self {
        crashes.sort_unstable_by(|a, b| b.cmp(a));
        let summary = Summary {
            mode: "deterministic".into(),
            seed,
            seeds: 1,
            clients: clients.len() as u64,
            hostile_clients: clients.iter().filter(|c| c.hostile).count() as u64,
            ..Summary::default()
        };
        World {
            seed,
            now: 0,
            server,
            crashes,
            clients,
            conns: Vec::new(),
            live: Vec::new(),
            faults: Vec::new(),
            shared: Vec::new(),
            summary,
            trace: seed,
        }
    }

    /// Runs until nothing is pending, then checks every promise.
    pub(crate) fn run(&mut self) {
        let mut events = 0u64;
        while let Some(at) = self.next_time() {
            events += 1;
            if events > MAX_EVENTS || at > MAX_VIRTUAL_MICROS {
                let what = format!(
                    "livelock: {events} events, virtual time {} s, clients not done: {:?}",
                    at / 1_000_000,
                    self.clients
                        .iter()
                        .filter(|c| !c.is_done())
                        .map(|c| (c.id, c.step))
                        .collect::<Vec<_>>()
                );
                self.summary.breaches.push(Breach::global(self.seed, what));
                break;
            }
            self.now = self.now.max(at);
            self.server.set_time(self.now);
            self.step_once();
        }
        self.summary.elapsed_secs = self.now as f64 / 1e6;
        self.check();
    }

    fn next_time(&mut self) -> Option<u64> {
        let conns = &self.conns;
        self.live.retain(|&id| {
            let conn = &conns[id];
            !(conn.link.is_finished() && conn.server.is_closed() && conn.client_gone)
        });
        let links = self.live.iter().filter_map(|&id| {
            let conn = &self.conns[id];
            [conn.link.next_time(), conn.server.next_time()]
                .into_iter()
                .flatten()
                .min()
        });
        let clients = self.clients.iter().filter_map(SimClient::next_time);
        let next = links.chain(clients).min()?;
        // A crash happens only while something is still to come.
        Some(self.crashes.last().map_or(next, |&crash| crash.min(next)))
    }

    fn ctx(&mut self) -> (Ctx<'_>, &mut Vec<SimClient>) {
        (
            Ctx {
                now: self.now,
                seed: self.seed,
                summary: &mut self.summary,
                conns: &mut self.conns,
                faults: &mut self.faults,
                shared: &mut self.shared,
                trace: &mut self.trace,
                server: &self.server,
            },
            &mut self.clients,
        )
    }

    /// Processes the first event due now.
    fn step_once(&mut self) {
        let now = self.now;
        if self.crashes.last().is_some_and(|&crash| crash <= now) {
            self.crashes.pop();
            mix(&mut self.trace, now, 0xc7a5);
            self.crash();
            return;
        }
        for i in 0..self.live.len() {
            let id = self.live[i];
            let Some((dir, delivery)) = self.conns[id].link.pop_due(now) else {
                continue;
            };
            mix(
                &mut self.trace,
                now,
                id as u64 * 4 + dir_code(dir, &delivery),
            );
            self.deliver(id, dir, delivery);
            self.settle(id);
            return;
        }
        for i in 0..self.live.len() {
            let id = self.live[i];
            if self.conns[id].server.next_time().is_some_and(|t| t <= now) {
                mix(&mut self.trace, now, id as u64 * 4 + 3);
                let conn = &mut self.conns[id];
                conn.server.on_timer(now, &mut conn.link);
                self.settle(id);
                return;
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].next_time().is_some_and(|t| t <= now) {
                mix(&mut self.trace, now, 0xc11e57 + c as u64);
                let (mut ctx, clients) = self.ctx();
                clients[c].on_timer(&mut ctx);
                if let Some(id) = self.clients[c].conn {
                    if !self.live.contains(&id) {
                        self.live.push(id);
                    }
                    self.settle(id);
                }
                return;
            }
        }
    }

    fn deliver(&mut self, id: usize, dir: Dir, delivery: Delivery) {
        let now = self.now;
        match dir {
            Dir::ToServer => {
                let conn = &mut self.conns[id];
                match delivery {
                    Delivery::Data(bytes) => conn.server.on_data(now, &bytes, &mut conn.link),
                    Delivery::Eof => conn.server.on_eof(now, &mut conn.link),
                }
            }
            Dir::ToClient => {
                if self.conns[id].client_gone {
                    return;
                }
                let c = self.conns[id].client as usize;
                if self.clients[c].conn != Some(id) {
                    return;
                }
                let (mut ctx, clients) = self.ctx();
                match delivery {
                    Delivery::Data(bytes) => clients[c].on_data(&mut ctx, &bytes),
                    Delivery::Eof => clients[c].on_eof(&mut ctx),
                }
            }
        }
    }

    /// After anything happened on connection `id`: both senders use the room in the window,
    /// and faults that fired are recorded.
    fn settle(&mut self, id: usize) {
        let now = self.now;
        {
            let conn = &mut self.conns[id];
            conn.server.pump(now, &mut conn.link);
        }
        let c = self.conns[id].client as usize;
        if self.clients[c].conn == Some(id) {
            let (mut ctx, clients) = self.ctx();
            clients[c].pump(&mut ctx);
        }
        collect_faults(&mut self.conns, &mut self.faults, id);
        if !self.live.contains(&id) {
            self.live.push(id);
        }
    }

    /// The server process dies and starts again at once: the store keeps what was durable,
    /// every open connection breaks (a fault its client must get over), and new connections
    /// meet the restarted server.
    fn crash(&mut self) {
        let now = self.now;
        self.summary.count_fault("server_restart");
        let open: Vec<usize> = self
            .live
            .iter()
            .copied()
            .filter(|&id| !self.conns[id].server.is_closed())
            .collect();
        self.server.crash();
        for &id in &open {
            self.conns[id].server.crash();
            self.conns[id].link.break_now(now, SERVER_CRASH);
            collect_faults(&mut self.conns, &mut self.faults, id);
        }
    }

    /// The promises, checked once the run is over.
    fn check(&mut self) {
        let seed = self.seed;
        let mut breaches = Vec::new();
        for conn in &self.conns {
            self.summary.bytes_moved += conn.server.bytes_sent();
        }
        let store = self.server.store();
        let names = store.names();
        for client in &self.clients {
            let step = client.step as u32;
            if !client.is_done() {
                breaches.push(Breach::at(
                    seed,
                    client.id,
                    step,
                    "client did not finish its plan",
                ));
            }
            let prefix = format!("c{}/", client.id);
            let stored: BTreeMap<&String, _> = names
                .iter()
                .filter(|name| name.starts_with(&prefix))
                .filter_map(|name| Some((name, store.file(name)?)))
                .collect();
            for (name, file) in &stored {
                match client.model.get(*name) {
                    None => breaches.push(Breach::at(
                        seed,
                        client.id,
                        step,
                        format!("{name:?} is visible but no upload of it was acknowledged"),
                    )),
                    Some(content) => {
                        if let Some(offset) = content.first_difference(&file.bytes) {
                            breaches.push(
                                Breach::at(
                                    seed,
                                    client.id,
                                    content.step,
                                    format!("stored {name:?} differs from the acknowledged upload"),
                                )
                                .differing_at(offset),
                            );
                        }
                    }
                }
            }
            for (name, content) in &client.model {
                if !stored.contains_key(name) {
                    breaches.push(Breach::at(
                        seed,
                        client.id,
                        content.step,
                        format!("acknowledged upload {name:?} is missing from the server"),
                    ));
                }
            }
        }
        breaches.extend(self.check_shared());
        for name in &names {
            let owned = name.starts_with('c') || name.starts_with("shared/");
            if !owned {
                breaches.push(Breach::global(
                    seed,
                    format!("{name:?} appeared from nowhere"),
                ));
            }
        }
        let under_way = store.uploads_under_way();
        if under_way > 0 {
            breaches.push(Breach::global(
                seed,
                format!(
                    "{under_way} uploads still marked as under way after every connection closed"
                ),
            ));
        }
        for fault in &self.faults {
            self.summary.count_fault(fault.kind);
            if !fault.recovered {
                let step = self.clients[fault.client as usize].step as u32;
                breaches.push(Breach::at(
                    seed,
                    fault.client,
                    step,
                    format!(
                        "{} on connection {} was never {}",
                        fault.kind,
                        fault.conn,
                        if fault.observed {
                            "recovered from"
                        } else {
                            "noticed"
                        }
                    ),
                ));
            }
        }
        self.summary.breaches.extend(breaches);
    }

    fn check_shared(&self) -> Vec<Breach> {
        let seed = self.seed;
        let mut by_name: BTreeMap<&str, Vec<(ContentId, SharedResult)>> = BTreeMap::new();
        for (name, content, result) in &self.shared {
            by_name.entry(name).or_default().push((*content, *result));
        }
        let mut breaches = Vec::new();
        let store = self.server.store();
        let shared_files = store
            .names()
            .into_iter()
            .filter(|name| name.starts_with("shared/"))
            .filter_map(|name| Some((store.file(&name)?, name)))
            .map(|(file, name)| (name, file));
        for (name, file) in shared_files {
            let claims = by_name.remove(name.as_str()).unwrap_or_default();
            let acked: Vec<&ContentId> = claims
                .iter()
                .filter(|(_, r)| *r == SharedResult::Acknowledged)
                .map(|(c, _)| c)
                .collect();
            if acked.len() > 1 {
                breaches.push(Breach::global(
                    seed,
                    format!(
                        "{name:?} acknowledged to {} uploads without overwrite",
                        acked.len()
                    ),
                ));
                continue;
            }
            let candidates: Vec<&ContentId> = match acked.first() {
                Some(content) => vec![content],
                None => claims.iter().map(|(c, _)| c).collect(),
            };
            let matches = candidates
                .iter()
                .any(|content| content.first_difference(&file.bytes).is_none());
            if !matches {
                let mut breach = Breach::global(
                    seed,
                    format!("{name:?} holds bytes no acknowledged upload sent"),
                );
                if let Some(content) = candidates.first() {
                    breach.client = Some(content.client);
                    breach.step = Some(content.step);
                    breach.first_difference = content.first_difference(&file.bytes);
                }
                breaches.push(breach);
            }
        }
        for (name, claims) in by_name {
            if let Some((content, _)) = claims
                .iter()
                .find(|(_, r)| *r == SharedResult::Acknowledged)
            {
                breaches.push(Breach::at(
                    seed,
                    content.client,
                    content.step,
                    format!("acknowledged shared upload {name:?} is missing"),
                ));
            }
        }
        breaches
    }
}

fn dir_code(dir: Dir, delivery: &Delivery) -> u64 {
    match (dir, delivery) {
        (Dir::ToServer, Delivery::Data(_)) => 0,
        (Dir::ToClient, Delivery::Data(_)) => 1,
        (_, Delivery::Eof) => 2,
    }
}
