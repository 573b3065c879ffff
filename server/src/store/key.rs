//! Which upload is which: a client file's upload to a name, whatever the backend keeps of it.

use ferry_protocol::{Digest, SourceTag};

/// Identifies one partial upload: a hash of its name and source tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PartialKey(pub(crate) String);

impl PartialKey {
    /// The key of `name` uploaded from a file tagged `tag`.
    pub(crate) fn new(name: &str, tag: &SourceTag) -> Self {
        let mut input = Vec::with_capacity(name.len() + 17);
        input.extend_from_slice(name.as_bytes());
        input.push(0);
        input.extend_from_slice(&tag.0);
        PartialKey(Digest::of(&input).to_hex()[..32].to_owned())
    }
}
