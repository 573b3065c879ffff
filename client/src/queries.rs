//! Many queries on one connection, pipelined: what a sync asks of every file whose size
//! matches, in a few round trips instead of one per file.

use std::collections::VecDeque;

use ferry_protocol::Digest;

use crate::client::Client;
use crate::eager_window::WINDOW_REQUESTS;
use crate::error::ClientError;
use crate::link::{Link, no_data};
use crate::requests::Query;
use crate::tag::name_tag;

impl Client {
    /// For each `(name, size)`, the digest the server recorded for it, as
    /// [`Client::stored_digest`] answers one: `None` unless the server stores a file of that
    /// size there and knows its digest. The queries are pipelined on this client's connection
    /// (protocol version 2); a query the server refuses, or one in flight when the connection
    /// failed, is asked again on its own, whose error (if any) is returned.
    pub fn stored_digests(
        &mut self,
        files: &[(String, u64)],
    ) -> Result<Vec<Option<Digest>>, ClientError> {
        let mut digests = vec![None; files.len()];
        let one_by_one = self.pipeline(files.len(), "queries", &mut |_, link, next, one_by_one| {
            let mut in_flight = VecDeque::new();
            let result = query_window(link, files, next, &mut in_flight, one_by_one, &mut digests);
            one_by_one.extend(in_flight);
            result
        });
        for index in one_by_one {
            let (name, size) = &files[index];
            digests[index] = self.stored_digest(name, *size)?;
        }
        Ok(digests)
    }
}

/// Keeps the window full until every file from `next` on is asked about and answered.
fn query_window(
    link: &mut Link,
    files: &[(String, u64)],
    next: &mut usize,
    in_flight: &mut VecDeque<usize>,
    one_by_one: &mut Vec<usize>,
    digests: &mut [Option<Digest>],
) -> Result<(), ClientError> {
    loop {
        while *next < files.len() && in_flight.len() < WINDOW_REQUESTS {
            let (name, size) = &files[*next];
            Query::begin(&mut link.conn, name, name_tag(name, *size))?;
            in_flight.push_back(*next);
            *next += 1;
        }
        link.flush("sending pipelined queries")?;
        let Some(&index) = in_flight.front() else {
            return Ok(());
        };
        let event = link.next_event(Query::DURING, &mut no_data)?;
        in_flight.pop_front();
        match Query.on_event(event) {
            Ok(Some(held)) => {
                digests[index] = held
                    .stored_digest
                    .filter(|_| held.stored_size == Some(files[index].1));
            }
            Ok(None) => {}
            // Asked again on its own, which retries a passing refusal and reports another.
            Err(ClientError::Refused { .. }) => one_by_one.push(index),
            Err(error) => return Err(error),
        }
    }
}
