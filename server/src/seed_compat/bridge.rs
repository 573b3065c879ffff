//! An original client's upload carried to a real server [`Session`], as a native client would
//! send it: every rule (name, size limit, quota, free space, name lock, existing name, staging,
//! checkpoints, commit, idle timeout, shutdown) is the session's, applied once for both
//! protocols.
//!
//! The bridge holds the protocol crate's client machine and the session side by side and moves
//! bytes between them in memory: the original header becomes `HELLO` and `PUT`, each chunk of
//! the original client's data a `DATA` frame, its close after exactly `size` bytes the `DONE`
//! with the digest computed on arrival. The session's `PUT_READY` is the original `go ahead`;
//! its `ACK` means the file is stored; anything else ends the upload, and the session was
//! opened for an original client, so nothing of it is kept ([`Session::for_original_client`]).

use std::net::SocketAddr;

use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Digest, ErrorCode, FileHasher, SourceTag,
    Timestamp, limits::MAX_DATA_CHUNK,
};

use crate::session::{Context, Session};

/// Why the session did not take an original client's upload or its data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BridgeError {
    /// The session refused the upload or ended it, with the server's message.
    #[error("{message} ({code})")]
    Refused {
        /// The server's reason.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The request could not be made (a name that breaks the name rules, bytes past the size).
    #[error("{0}")]
    Command(#[from] CommandError),
    /// The session closed the connection without a reason (a server bug if ever seen).
    #[error("the session closed the connection")]
    Closed,
}

/// One original client's upload, driven through a server session.
pub(crate) struct Bridge {
    session: Session,
    native: ClientConnection,
    hasher: FileHasher,
    /// Bytes of the native side not yet taken by the session.
    to_session: Vec<u8>,
    /// Scratch for the session's answers.
    to_client: Vec<u8>,
}

impl Bridge {
    /// Asks a new session, opened at `opened`, to take an upload of `size` bytes as `name`;
    /// `Ok` is the session's go-ahead.
    pub(crate) fn start(
        context: Context,
        peer: SocketAddr,
        opened: Timestamp,
        now: Timestamp,
        request: (&str, u64, bool, SourceTag),
    ) -> Result<Bridge, BridgeError> {
        let (name, size, overwrite, tag) = request;
        let config = context.config.protocol();
        let mut bridge = Bridge {
            session: Session::for_original_client(context, peer, opened),
            native: ClientConnection::new(config, now, &[])?,
            hasher: FileHasher::new(),
            to_session: Vec::new(),
            to_client: Vec::new(),
        };
        bridge.pump(now);
        bridge.expect(|event| matches!(event, ClientEvent::Connected { .. }))?;
        bridge.native.put(name, size, overwrite, false, tag)?;
        bridge.pump(now);
        bridge.expect(|event| matches!(event, ClientEvent::PutReady { offset: 0 }))?;
        Ok(bridge)
    }

    /// Hands the session the next bytes of the original client's data.
    pub(crate) fn receive(&mut self, now: Timestamp, data: &[u8]) -> Result<(), BridgeError> {
        for chunk in data.chunks(MAX_DATA_CHUNK) {
            self.native.send_file_data(chunk)?;
            self.native.poll_transmit(&mut self.to_session);
            self.to_session.extend_from_slice(chunk);
            self.hasher.update(chunk);
            self.pump(now);
            self.check_open()?;
        }
        Ok(())
    }

    /// The original client closed after every byte: the upload ends with the digest of what
    /// arrived, and `Ok` means the file is stored.
    pub(crate) fn finish(mut self, now: Timestamp) -> Result<Digest, BridgeError> {
        let digest = std::mem::take(&mut self.hasher).finalize();
        let stored = self.native.finish_upload(digest).map_err(BridgeError::from);
        let stored = stored.and_then(|()| {
            self.pump(now);
            self.expect(|event| matches!(event, ClientEvent::PutStored))
        });
        self.session.close();
        stored.map(|()| digest)
    }

    /// Ends the upload unfinished (the client left, sent too much, or the socket failed):
    /// nothing of it is kept.
    pub(crate) fn abandon(mut self, reason: &str) {
        self.session.handle_lost(reason);
        self.session.close();
    }

    /// When to call [`Bridge::handle_timeout`]: the session's own idle deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.session.poll_timeout()
    }

    /// Tells the session the time; an error once it closed a client silent for too long.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) -> Result<(), BridgeError> {
        self.session.handle_timeout(now);
        self.pump(now);
        self.check_open()
    }

    /// Tells the session the server is shutting down; an error once that ends the upload.
    pub(crate) fn handle_shutdown(
        &mut self,
        now: Timestamp,
        past_grace: bool,
    ) -> Result<(), BridgeError> {
        self.session.handle_shutdown(now, past_grace);
        self.pump(now);
        self.check_open()
    }

    /// Moves bytes both ways until neither side has any left to give.
    fn pump(&mut self, now: Timestamp) {
        loop {
            self.native.poll_transmit(&mut self.to_session);
            let taken = self.session.handle_input(now, &self.to_session);
            self.to_session.drain(..taken);
            self.to_client.clear();
            while self.session.poll_transmit(&mut self.to_client) > 0 {}
            let mut answered = &self.to_client[..];
            while !answered.is_empty() {
                match self.native.handle_input(now, answered) {
                    Ok(received) if received.consumed > 0 => {
                        answered = &answered[received.consumed..];
                    }
                    _ => break,
                }
            }
            if taken == 0 && self.to_client.is_empty() {
                return;
            }
        }
    }

    /// Waits for the answer `wanted` among the native side's events; a refusal or a closed
    /// session is the error.
    fn expect(&mut self, wanted: impl Fn(&ClientEvent) -> bool) -> Result<(), BridgeError> {
        while let Some(event) = self.native.poll_event() {
            match event {
                event if wanted(&event) => return Ok(()),
                ClientEvent::Refused { code, message } => {
                    return Err(BridgeError::Refused { code, message });
                }
                _ => {}
            }
        }
        Err(self.failure())
    }

    /// An error, with the server's reason, once the session has closed the connection.
    fn check_open(&mut self) -> Result<(), BridgeError> {
        if self.session.is_closed() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// Why the session stopped: its refusal or the error that closed the connection.
    fn failure(&mut self) -> BridgeError {
        while let Some(event) = self.native.poll_event() {
            if let ClientEvent::Refused { code, message } = event {
                return BridgeError::Refused { code, message };
            }
        }
        match self.native.error() {
            Some(error) => BridgeError::Refused {
                code: error.code(),
                message: error.to_string(),
            },
            None => BridgeError::Closed,
        }
    }
}
