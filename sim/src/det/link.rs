//! The simulated network of one connection: two one-way pipes with latency, a bandwidth limit,
//! a segment size, and two faults drawn from the seed — a stall and a cut at a given byte.
//!
//! Times are virtual microseconds. A pipe delivers its segments in order, each at its arrival
//! time; a sender may write only while fewer than [`WINDOW`] bytes are in flight, which is the
//! simulator's flow control. A stall holds every segment of both pipes until it ends; a cut
//! delivers what was written up to the cut byte, then end-of-stream to both ends; a server
//! crash breaks the link the same way at the moment it happens.

use std::collections::VecDeque;

/// Most bytes a sender keeps in flight on one pipe.
pub(crate) const WINDOW: usize = 64 * 1024;

/// Direction of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

/// The network conditions of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkParams {
    /// One-way latency, µs.
    pub latency: u64,
    /// Time to put one KiB on the wire, µs (0: unlimited bandwidth).
    pub micros_per_kib: u64,
    /// Largest segment delivered at once.
    pub max_segment: usize,
}

/// The faults waiting in a connection, each firing when its byte is written.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LinkFaults {
    /// Cut after this many bytes in this direction.
    pub cut: Option<(Dir, u64)>,
    /// Stall both pipes for `.2` µs once this many bytes went this way.
    pub stall: Option<(Dir, u64, u64)>,
}

/// What a pipe hands to its receiving end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Bytes.
    Data(Vec<u8>),
    /// The stream ended.
    Eof,
}

#[derive(Debug, Default)]
struct Pipe {
    /// Segments in flight: arrival time and bytes.
    segments: VecDeque<(u64, Vec<u8>)>,
    in_flight: usize,
    written: u64,
    last_arrival: u64,
    wire_free: u64,
    /// Arrival time of end-of-stream, once the writer closed or the link broke.
    fin: Option<u64>,
    eof_delivered: bool,
}

/// Both pipes of one connection.
#[derive(Debug)]
pub(crate) struct Link {
    pipes: [Pipe; 2],
    params: LinkParams,
    faults: LinkFaults,
    stalled_until: u64,
    broken: bool,
    fired: Vec<&'static str>,
}

impl Link {
    pub(crate) fn new(params: LinkParams, faults: LinkFaults) -> Self {
        Link {
            pipes: [Pipe::default(), Pipe::default()],
            params,
            faults,
            stalled_until: 0,
            broken: false,
            fired: Vec::new(),
        }
    }

    /// Bytes written but not yet delivered in `dir`.
    pub(crate) fn in_flight(&self, dir: Dir) -> usize {
        self.pipes[dir.index()].in_flight
    }

    /// Whether a sender in `dir` may write now.
    pub(crate) fn has_room(&self, dir: Dir) -> bool {
        self.in_flight(dir) < WINDOW
    }

    /// Faults that fired since the last call.
    pub(crate) fn take_fired(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.fired)
    }

    /// Writes `bytes` into `dir` at `now`. Bytes after a cut, or after the writer closed, are lost.
    pub(crate) fn write(&mut self, dir: Dir, now: u64, mut bytes: &[u8]) {
        let i = dir.index();
        if self.broken || self.pipes[i].fin.is_some() || bytes.is_empty() {
            return;
        }
        let written = self.pipes[i].written;
        let end = written + bytes.len() as u64;
        if let Some((stall_dir, at, duration)) = self.faults.stall
            && stall_dir == dir
            && end > at
        {
            self.faults.stall = None;
            self.stall(now + duration);
        }
        let mut cut = false;
        if let Some((cut_dir, at)) = self.faults.cut
            && cut_dir == dir
            && end > at
        {
            self.faults.cut = None;
            bytes = &bytes[..usize::try_from(at.saturating_sub(written)).unwrap_or(0)];
            cut = true;
        }
        self.enqueue(i, now, bytes);
        if cut {
            self.break_now(now, "cut");
        }
    }

    /// Breaks the link at `now` as fault `kind` (a cut, or the server process dying): what
    /// was written arrives, then end-of-stream both ways; later writes are lost.
    pub(crate) fn break_now(&mut self, now: u64, kind: &'static str) {
        if self.broken {
            return;
        }
        self.fired.push(kind);
        self.broken = true;
        for pipe in &mut self.pipes {
            let at = (now + self.params.latency)
                .max(pipe.last_arrival)
                .max(self.stalled_until);
            pipe.fin = Some(pipe.fin.map_or(at, |fin| fin.min(at)));
        }
    }

    fn enqueue(&mut self, i: usize, now: u64, bytes: &[u8]) {
        let params = self.params;
        let stalled_until = self.stalled_until;
        let pipe = &mut self.pipes[i];
        for piece in bytes.chunks(params.max_segment.max(1)) {
            let wire = (piece.len() as u64 * params.micros_per_kib) / 1024;
            let depart = now.max(pipe.wire_free) + wire;
            pipe.wire_free = depart;
            let arrival = (depart + params.latency)
                .max(pipe.last_arrival)
                .max(stalled_until);
            pipe.last_arrival = arrival;
            pipe.segments.push_back((arrival, piece.to_vec()));
            pipe.in_flight += piece.len();
            pipe.written += piece.len() as u64;
        }
    }

    /// Holds everything in flight, both ways, until `until`.
    fn stall(&mut self, until: u64) {
        self.fired.push("stall");
        self.stalled_until = until;
        for pipe in &mut self.pipes {
            for segment in &mut pipe.segments {
                segment.0 = segment.0.max(until);
            }
            pipe.last_arrival = pipe.last_arrival.max(until);
            if let Some(fin) = &mut pipe.fin {
                *fin = (*fin).max(until);
            }
        }
    }

    /// The writer of `dir` closed its side: end-of-stream follows the bytes in flight.
    pub(crate) fn close(&mut self, dir: Dir, now: u64) {
        let latency = self.params.latency;
        let stalled_until = self.stalled_until;
        let pipe = &mut self.pipes[dir.index()];
        if pipe.fin.is_none() {
            pipe.fin = Some((now + latency).max(pipe.last_arrival).max(stalled_until));
        }
    }

    /// When the next delivery is due, if any is pending.
    pub(crate) fn next_time(&self) -> Option<u64> {
        self.pipes
            .iter()
            .filter_map(|pipe| match pipe.segments.front() {
                Some((arrival, _)) => Some(*arrival),
                None if !pipe.eof_delivered => pipe.fin,
                None => None,
            })
            .min()
    }

    /// One delivery due at `now`, and its direction.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<(Dir, Delivery)> {
        for dir in [Dir::ToServer, Dir::ToClient] {
            let pipe = &mut self.pipes[dir.index()];
            match pipe.segments.front() {
                Some((arrival, _)) if *arrival <= now => {
                    let (_, bytes) = pipe.segments.pop_front()?;
                    pipe.in_flight -= bytes.len();
                    return Some((dir, Delivery::Data(bytes)));
                }
                Some(_) => {}
                None => {
                    if !pipe.eof_delivered && pipe.fin.is_some_and(|fin| fin <= now) {
                        pipe.eof_delivered = true;
                        return Some((dir, Delivery::Eof));
                    }
                }
            }
        }
        None
    }

    /// Whether both directions have delivered their end-of-stream.
    pub(crate) fn is_finished(&self) -> bool {
        self.pipes.iter().all(|pipe| pipe.eof_delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LinkParams {
        LinkParams {
            latency: 100,
            micros_per_kib: 0,
            max_segment: 3,
        }
    }

    fn drain(link: &mut Link, now: u64) -> Vec<(Dir, Delivery)> {
        std::iter::from_fn(|| link.pop_due(now)).collect()
    }

    #[test]
    fn bytes_arrive_in_segments_after_the_latency() {
        let mut link = Link::new(params(), LinkFaults::default());
        link.write(Dir::ToServer, 0, b"abcdefg");
        assert_eq!(link.next_time(), Some(100));
        assert!(drain(&mut link, 99).is_empty());
        let got = drain(&mut link, 100);
        assert_eq!(
            got,
            vec![
                (Dir::ToServer, Delivery::Data(b"abc".to_vec())),
                (Dir::ToServer, Delivery::Data(b"def".to_vec())),
                (Dir::ToServer, Delivery::Data(b"g".to_vec())),
            ]
        );
        assert_eq!(link.in_flight(Dir::ToServer), 0);
    }

    #[test]
    fn a_cut_delivers_bytes_before_it_then_eof_both_ways() {
        let faults = LinkFaults {
            cut: Some((Dir::ToServer, 4)),
            stall: None,
        };
        let mut link = Link::new(params(), faults);
        link.write(Dir::ToServer, 0, b"abcdefg");
        assert_eq!(link.take_fired(), vec!["cut"]);
        link.write(Dir::ToClient, 0, b"lost");
        let got = drain(&mut link, 1000);
        assert_eq!(
            got,
            vec![
                (Dir::ToServer, Delivery::Data(b"abc".to_vec())),
                (Dir::ToServer, Delivery::Data(b"d".to_vec())),
                (Dir::ToServer, Delivery::Eof),
                (Dir::ToClient, Delivery::Eof),
            ]
        );
        assert!(link.is_finished());
    }

    #[test]
    fn a_stall_holds_both_directions_until_it_ends() {
        let faults = LinkFaults {
            cut: None,
            stall: Some((Dir::ToClient, 0, 5_000)),
        };
        let mut link = Link::new(params(), faults);
        link.write(Dir::ToServer, 0, b"ab");
        link.write(Dir::ToClient, 10, b"xy");
        assert_eq!(link.take_fired(), vec!["stall"]);
        assert_eq!(link.next_time(), Some(5_010));
        assert!(drain(&mut link, 5_009).is_empty());
        assert_eq!(drain(&mut link, 5_010).len(), 2);
    }
}
