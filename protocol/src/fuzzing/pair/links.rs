//! The links of the [`pair`](super::pair) target: starting both machines, and delivering what
//! each transmits to the other in pieces cut at the input's split points.

use super::store::Store;
use super::{PAIR_MAX_PIECES, Pair, PairInput};
use crate::fuzzing::checks::{assert_tail_of, ts};
use crate::limits::PROTOCOL_VERSION;
use crate::{ClientConnection, ClientEvent, Config, ServerConnection, Timestamp};

impl Pair {
    pub(super) fn new(input: &PairInput) -> Self {
        let splits = |s: &[u16]| -> Vec<usize> {
            let v: Vec<usize> = s.iter().take(64).map(|&n| usize::from(n).max(1)).collect();
            if v.is_empty() { vec![usize::MAX] } else { v }
        };
        let mut pair = Pair {
            client: ClientConnection::new(Config::default(), Timestamp::ZERO, b"")
                .expect("empty token"),
            server: ServerConnection::new(Config::default(), Timestamp::ZERO),
            store: Store::default(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_splits: splits(&input.client_splits),
            server_splits: splits(&input.server_splits),
            split_at: (0, 0),
            now: 0,
            steps: 0,
            client_events: Vec::new(),
            downloaded: Vec::new(),
        };
        let connected = pair.wait_for(|e| matches!(e, ClientEvent::Connected { .. }));
        assert_eq!(
            connected,
            ClientEvent::Connected {
                version: PROTOCOL_VERSION
            }
        );
        pair
    }

    /// One round: both sides transmit, both links deliver their bytes in pieces.
    pub(super) fn step(&mut self) {
        self.steps += 1;
        assert!(self.steps < 100_000, "the pair stalled");
        self.now += 1_000;
        let _ = self.client.poll_transmit(&mut self.to_server);
        let _ = self.server.poll_transmit(&mut self.to_client);
        self.server_sends_chunk();
        self.deliver_to_server();
        self.deliver_to_client();
        let now = ts(self.now);
        assert_eq!(
            self.server.handle_timeout(now),
            Ok(()),
            "server timed out in a healthy pair"
        );
        assert_eq!(
            self.client.handle_timeout(now),
            Ok(()),
            "client timed out in a healthy pair"
        );
    }

    /// Runs steps until the client emits an event matching `want`, and returns it. Other
    /// events (a PONG, say) stay queued.
    pub(super) fn wait_for(&mut self, want: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        for _ in 0..10_000 {
            if let Some(i) = self.client_events.iter().position(&want) {
                return self.client_events.remove(i);
            }
            self.step();
        }
        panic!(
            "the pair stalled; client events so far: {:?}",
            self.client_events
        );
    }

    fn pieces(splits: &[usize], at: &mut usize, len: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut done = 0;
        while done < len {
            let n = if cuts.len() + 1 >= PAIR_MAX_PIECES {
                len - done
            } else {
                *at = (*at + 1) % splits.len();
                splits[*at].min(len - done)
            };
            cuts.push(n);
            done += n;
        }
        cuts
    }

    fn deliver_to_server(&mut self) {
        let bytes = std::mem::take(&mut self.to_server);
        let cuts = Self::pieces(&self.client_splits, &mut self.split_at.0, bytes.len());
        let mut buf = Vec::new();
        let mut fed = 0;
        for n in cuts {
            buf.extend_from_slice(&bytes[fed..fed + n]);
            fed += n;
            let mut start = 0;
            loop {
                let received = self
                    .server
                    .handle_input(ts(self.now), &buf[start..])
                    .expect("server fails on a healthy client");
                assert!(received.consumed <= buf.len() - start);
                assert_tail_of(received.file_data, &buf[start..], received.consumed);
                if !received.file_data.is_empty() {
                    let name = self
                        .store
                        .receiving
                        .as_ref()
                        .expect("file data outside an upload");
                    let partial = self
                        .store
                        .partials
                        .get_mut(name)
                        .expect("upload has a partial");
                    partial.bytes.extend_from_slice(received.file_data);
                }
                start += received.consumed;
                let mut events = 0;
                while let Some(event) = self.server.poll_event() {
                    events += 1;
                    self.server_event(event);
                }
                if received.consumed == 0 && events == 0 {
                    break;
                }
            }
            buf.drain(..start);
        }
        assert!(
            buf.is_empty(),
            "the server left {} bytes of a healthy client unread",
            buf.len()
        );
    }

    fn deliver_to_client(&mut self) {
        let bytes = std::mem::take(&mut self.to_client);
        let cuts = Self::pieces(&self.server_splits, &mut self.split_at.1, bytes.len());
        let mut buf = Vec::new();
        let mut fed = 0;
        for n in cuts {
            buf.extend_from_slice(&bytes[fed..fed + n]);
            fed += n;
            let mut start = 0;
            loop {
                let received = self
                    .client
                    .handle_input(ts(self.now), &buf[start..])
                    .expect("client fails on a healthy server");
                assert!(received.consumed <= buf.len() - start);
                assert_tail_of(received.file_data, &buf[start..], received.consumed);
                self.downloaded.extend_from_slice(received.file_data);
                start += received.consumed;
                let mut events = 0;
                while let Some(event) = self.client.poll_event() {
                    events += 1;
                    self.client_events.push(event);
                }
                if received.consumed == 0 && events == 0 {
                    break;
                }
            }
            buf.drain(..start);
        }
        assert!(
            buf.is_empty(),
            "the client left {} bytes of a healthy server unread",
            buf.len()
        );
    }
}
