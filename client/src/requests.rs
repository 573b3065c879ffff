//! The small requests (listing, removal, move, query) without sockets: how each is asked and what
//! each answer of the server means. [`Client`](crate::Client) and the deterministic simulator
//! drive the same pieces, so the rules (a removal retried after a lost connection that finds
//! the name gone succeeded) live here once.

use ferry_protocol::limits::MOVE_VERSION;
use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Digest, ErrorCode, ListEntry, SourceTag,
};

use crate::client::{check_name, name_error};
use crate::error::ClientError;
use crate::link::unexpected;

/// What the server holds under a name, as a [`Query`] learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Size of the stored file, if any.
    pub stored_size: Option<u64>,
    /// Its digest, if the server recorded it for this exact version.
    pub stored_digest: Option<Digest>,
    /// Resumable bytes of a partial upload with the asked tag, if any.
    pub partial_offset: Option<u64>,
}

/// A listing under way: its entries as they arrive.
#[derive(Debug)]
pub struct Listing {
    entries: Vec<ListEntry>,
}

impl Listing {
    /// What the driver says while it waits for the entries.
    pub const DURING: &'static str = "receiving a listing";

    /// Asks for the names under `prefix`.
    pub fn begin(conn: &mut ClientConnection, prefix: &str) -> Result<Listing, ClientError> {
        conn.list(prefix).map_err(|e| name_error(prefix, e))?;
        Ok(Listing {
            entries: Vec::new(),
        })
    }

    /// Takes the next answer: the whole listing once it ended, `None` while entries come.
    pub fn on_event(&mut self, event: ClientEvent) -> Result<Option<Vec<ListEntry>>, ClientError> {
        match event {
            ClientEvent::ListEntry(entry) => {
                self.entries.push(entry);
                Ok(None)
            }
            ClientEvent::ListEnd => Ok(Some(std::mem::take(&mut self.entries))),
            other => Err(refused_or_unexpected(other, "listing", Self::DURING)),
        }
    }
}

/// A removal under way.
#[derive(Debug)]
pub struct Removal {
    attempt: u32,
}

impl Removal {
    /// What the driver says while it waits for the answer.
    pub const DURING: &'static str = "waiting for the removal";

    /// Asks to remove `name`; `attempt` counts from 1 across reconnections.
    pub fn begin(
        conn: &mut ClientConnection,
        name: &str,
        attempt: u32,
    ) -> Result<Removal, ClientError> {
        check_name(name)?;
        conn.remove(name)?;
        Ok(Removal { attempt })
    }

    /// Takes the answer: `Some(())` once the name is gone.
    pub fn on_event(&self, event: ClientEvent) -> Result<Option<()>, ClientError> {
        done_or_gone(
            event,
            self.attempt,
            &ClientEvent::Removed,
            "removal",
            Self::DURING,
        )
    }
}

/// A move (rename) under way.
#[derive(Debug)]
pub struct Move {
    attempt: u32,
}

impl Move {
    /// What the driver says while it waits for the answer.
    pub const DURING: &'static str = "waiting for the move";

    /// Asks to move `from` to `to` (replacing a file there with `overwrite`); `attempt` counts
    /// from 1 across reconnections. A server that agreed on a version without `MOVE` is never
    /// sent it: [`ClientError::ServerTooOld`].
    pub fn begin(
        conn: &mut ClientConnection,
        from: &str,
        to: &str,
        overwrite: bool,
        attempt: u32,
    ) -> Result<Move, ClientError> {
        check_name(from)?;
        check_name(to)?;
        conn.move_file(from, to, overwrite)
            .map_err(|error| match error {
                CommandError::ServerTooOld { version, .. } => ClientError::ServerTooOld {
                    operation: "mv",
                    version,
                    needs: MOVE_VERSION,
                },
                other => ClientError::Internal(other),
            })?;
        Ok(Move { attempt })
    }

    /// Takes the answer: `Some(())` once the file is under its new name.
    pub fn on_event(&self, event: ClientEvent) -> Result<Option<()>, ClientError> {
        done_or_gone(
            event,
            self.attempt,
            &ClientEvent::Moved,
            "move",
            Self::DURING,
        )
    }
}

/// A query under way.
#[derive(Debug)]
pub struct Query;

impl Query {
    /// What the driver says while it waits for the answer.
    pub const DURING: &'static str = "waiting for the query's answer";

    /// Asks what the server holds under `name`, and of a partial upload with `tag`.
    pub fn begin(
        conn: &mut ClientConnection,
        name: &str,
        tag: SourceTag,
    ) -> Result<Query, ClientError> {
        check_name(name)?;
        conn.query(name, tag)?;
        Ok(Query)
    }

    /// Takes the answer.
    pub fn on_event(&self, event: ClientEvent) -> Result<Option<Held>, ClientError> {
        match event {
            ClientEvent::QueryReply {
                stored_size,
                stored_digest,
                partial_offset,
            } => Ok(Some(Held {
                stored_size,
                stored_digest,
                partial_offset,
            })),
            other => Err(refused_or_unexpected(other, "query", Self::DURING)),
        }
    }
}

/// The answer to a removal or a move: `done` is success, and so is "not found" on a retry
/// after a lost connection (the first attempt may have done it, its answer lost).
fn done_or_gone(
    event: ClientEvent,
    attempt: u32,
    done: &ClientEvent,
    request: &'static str,
    during: &'static str,
) -> Result<Option<()>, ClientError> {
    match event {
        event if &event == done => Ok(Some(())),
        ClientEvent::Refused {
            code: ErrorCode::NotFound,
            ..
        } if attempt > 1 => Ok(Some(())),
        other => Err(refused_or_unexpected(other, request, during)),
    }
}

/// The error an answer that is not the awaited one stands for: the server's refusal of
/// `request`, or an event that does not fit (a bug the machine prevents).
fn refused_or_unexpected(
    event: ClientEvent,
    request: &'static str,
    during: &'static str,
) -> ClientError {
    match event {
        ClientEvent::Refused { code, message } => ClientError::Refused {
            request,
            code,
            message,
        },
        other => unexpected(&other, during).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ErrorCode) -> ClientEvent {
        ClientEvent::Refused {
            code,
            message: "no".into(),
        }
    }

    #[test]
    fn a_removal_that_finds_the_name_gone_succeeded_only_on_a_retry() {
        let first = Removal { attempt: 1 };
        assert!(matches!(
            first.on_event(refused(ErrorCode::NotFound)),
            Err(ClientError::Refused {
                code: ErrorCode::NotFound,
                ..
            })
        ));
        let retry = Removal { attempt: 2 };
        assert_eq!(
            retry.on_event(refused(ErrorCode::NotFound)).unwrap(),
            Some(())
        );
        assert_eq!(first.on_event(ClientEvent::Removed).unwrap(), Some(()));
        assert!(matches!(
            retry.on_event(refused(ErrorCode::Forbidden)),
            Err(ClientError::Refused {
                code: ErrorCode::Forbidden,
                ..
            })
        ));
    }

    #[test]
    fn a_listing_gathers_its_entries_until_the_end() {
        let mut listing = Listing {
            entries: Vec::new(),
        };
        for name in ["a", "b"] {
            let entry = ListEntry {
                name: name.into(),
                size: 1,
                modified_ms: 2,
            };
            assert_eq!(
                listing.on_event(ClientEvent::ListEntry(entry)).unwrap(),
                None
            );
        }
        let entries = listing.on_event(ClientEvent::ListEnd).unwrap().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(
            listing.on_event(refused(ErrorCode::BadName)),
            Err(ClientError::Refused {
                request: "listing",
                ..
            })
        ));
    }

    #[test]
    fn an_answer_that_does_not_fit_the_request_is_a_protocol_error() {
        assert!(matches!(
            Query.on_event(ClientEvent::Removed),
            Err(ClientError::Protocol(_))
        ));
        let held = Query
            .on_event(ClientEvent::QueryReply {
                stored_size: Some(3),
                stored_digest: None,
                partial_offset: Some(1),
            })
            .unwrap();
        assert_eq!(
            held,
            Some(Held {
                stored_size: Some(3),
                stored_digest: None,
                partial_offset: Some(1),
            })
        );
    }
}
