//! Writing to a client that may read slowly, without ever blocking for good.
//!
//! The socket's write timeout is a short tick; a write that makes no progress in a tick is
//! retried as long as the client took bytes within the idle timeout and the shutdown grace
//! period is not over. So a download to a slow reader goes on, one to a reader that stopped
//! ends after the idle timeout, and shutdown is never held up by a full socket.

use std::io::{self, IoSlice, Write};
use std::time::Instant;

use super::Connection;
use crate::server::is_timeout;

/// What to write.
pub(super) enum WriteFrom {
    /// The bytes queued by the machine (in `out`).
    Out,
    /// The bytes queued by the machine, then the first `n` bytes of `file_buf`.
    OutThenFile(usize),
}

impl Connection<'_> {
    /// Writes `out` (and the file chunk, if any) with as few system calls as possible.
    pub(super) fn write(&mut self, what: WriteFrom) -> io::Result<()> {
        let mut head: &[u8] = &self.out;
        let mut body: &[u8] = match what {
            WriteFrom::Out => &[],
            WriteFrom::OutThenFile(n) => &self.file_buf[..n],
        };
        let stall_limit = self.shared.config.idle_timeout;
        let mut progress = Instant::now();
        let mut flushed = false;
        while !flushed {
            let result = if head.is_empty() && body.is_empty() {
                // Under TLS the last bytes may still wait in rustls: push them out.
                self.stream.flush().map(|()| {
                    flushed = true;
                    usize::MAX
                })
            } else if head.is_empty() {
                self.stream.write(body)
            } else if body.is_empty() {
                self.stream.write(head)
            } else {
                self.stream
                    .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            };
            let n = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_timeout(&error) => {
                    if progress.elapsed() >= stall_limit {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped reading",
                        ));
                    }
                    if self.shared.shutdown.is_past_grace() {
                        return Err(io::Error::other("the server is shutting down"));
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            progress = Instant::now();
            if flushed {
                break;
            }
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
        }
        Ok(())
    }
}
