//! What the server says about one stored file without sending it: its size and modification
//! time (from a listing) and the BLAKE3 digest it recorded (from a query).

use ferry_protocol::{Digest, ErrorCode};

use crate::client::{Client, check_name};
use crate::error::ClientError;
use crate::tag::name_tag;

/// One stored file, as [`Client::stat`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Its name on the server.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last stored, in milliseconds since the Unix epoch (UTC).
    pub modified_ms: u64,
    /// The BLAKE3 digest the server recorded for it; `None` when the server does not know it
    /// without reading the file again (a file placed in its folder by other means).
    pub digest: Option<Digest>,
}

impl Client {
    /// The stored file `name`: size and modification time from a listing, digest from a
    /// query. Nothing of the file is sent. A name that is not a file is refused as
    /// [`ErrorCode::NotFound`], saying so when it is a folder.
    pub fn stat(&mut self, name: &str) -> Result<RemoteFile, ClientError> {
        check_name(name)?;
        let listed = self
            .list(name)?
            .into_iter()
            .find(|entry| entry.name == name);
        let Some(entry) = listed else {
            let under = self.list(&format!("{name}/"))?.len();
            let message = if under > 0 {
                format!("{name:?} is a folder ({under} files under it), not a file")
            } else {
                format!("no file named {name:?}")
            };
            return Err(ClientError::Refused {
                request: "stat",
                code: ErrorCode::NotFound,
                message,
            });
        };
        let digest = self.stored_digest(name, entry.size)?;
        Ok(RemoteFile {
            name: entry.name,
            size: entry.size,
            modified_ms: entry.modified_ms,
            digest,
        })
    }

    /// The digest the server recorded for `name`, if it stores a file of `size` bytes there
    /// and knows the digest; `None` otherwise (no file, another size, or no digest recorded).
    pub fn stored_digest(&mut self, name: &str, size: u64) -> Result<Option<Digest>, ClientError> {
        let held = self.held(name, name_tag(name, size))?;
        let reply = (held.stored_size, held.stored_digest);
        Ok(match reply {
            (Some(stored), digest) if stored == size => digest,
            _ => None,
        })
    }
}
