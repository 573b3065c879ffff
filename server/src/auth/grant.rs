//! What one connection may do once its token is accepted, and the mapping between the names a
//! confined client uses and the names stored. Names go into the store through
//! [`Grant::name`] and come back to the client through [`Grant::client_name`] and
//! [`Grant::message`]; nothing else turns a stored name into text for a client.

use crate::store::error::StorageError;

/// How a stored name outside the token's folder (the folder itself, or one above it) is shown
/// to a confined client: the top of everything the client sees.
const OUTSIDE_FOLDER: &str = ".";

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rights {
    /// Download, list and query only; uploads and removals get `Forbidden`.
    ReadOnly,
    /// Everything.
    ReadWrite,
}

/// What one connection may do, decided at its `HELLO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(super) rights: Rights,
    /// Every name the client uses is taken inside this folder.
    pub(super) folder: Option<String>,
}

impl Grant {
    /// Everything, everywhere: the grant when the server has no tokens file.
    pub(crate) fn full() -> Grant {
        Grant {
            rights: Rights::ReadWrite,
            folder: None,
        }
    }

    /// Whether the token may upload and remove.
    pub(crate) fn may_write(&self) -> bool {
        self.rights == Rights::ReadWrite
    }

    /// The stored name for a client's name: inside the token's folder. A valid client name
    /// has no `..` and is relative (the protocol checks it first), so the result stays inside.
    pub(crate) fn name(&self, name: &str) -> String {
        match &self.folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_owned(),
        }
    }

    /// The client's name for a stored name, or `None` if it lies outside the token's folder.
    pub(crate) fn client_name<'a>(&self, stored: &'a str) -> Option<&'a str> {
        match &self.folder {
            Some(folder) => stored.strip_prefix(folder.as_str())?.strip_prefix('/'),
            None => Some(stored),
        }
    }

    /// What the client reads for `error`: every name in it is the client's own name, relative
    /// to the token's folder, so a confined client never learns where its folder lies.
    pub(crate) fn message(&self, error: &StorageError) -> String {
        let shown = |stored: &str| {
            self.client_name(stored)
                .unwrap_or(OUTSIDE_FOLDER)
                .to_owned()
        };
        // Every variant is listed, so a new one that carries a name cannot be forgotten here.
        match error {
            StorageError::BadName { name, reason } => StorageError::BadName {
                name: shown(name),
                reason,
            }
            .to_string(),
            StorageError::NotFound(name) => StorageError::NotFound(shown(name)).to_string(),
            StorageError::NameTaken { name, reason } => StorageError::NameTaken {
                name: shown(name),
                reason,
            }
            .to_string(),
            StorageError::AlreadyExists
            | StorageError::InProgress
            | StorageError::TooLarge { .. }
            | StorageError::StreamTooLarge { .. }
            | StorageError::OverQuota { .. }
            | StorageError::DiskFull { .. }
            | StorageError::NoSpace { .. }
            | StorageError::OffsetPastEnd { .. }
            | StorageError::ShuttingDown
            | StorageError::Unsupported { .. }
            | StorageError::TakenOver
            | StorageError::ObjectStore { .. }
            | StorageError::Io { .. } => error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confined() -> Grant {
        Grant {
            rights: Rights::ReadWrite,
            folder: Some("home/alice".to_owned()),
        }
    }

    #[test]
    fn a_confined_name_is_stored_inside_its_folder_and_shown_without_it() {
        let grant = confined();
        assert_eq!(grant.name("a.jpg"), "home/alice/a.jpg");
        assert_eq!(grant.client_name("home/alice/a.jpg"), Some("a.jpg"));
        assert_eq!(grant.client_name("home/alice2/a.jpg"), None);
        assert_eq!(grant.client_name("home/alice"), None);
    }

    #[test]
    fn error_messages_name_files_relative_to_the_tokens_folder() {
        let grant = confined();
        let not_found = StorageError::NotFound(grant.name("OWN.TXT"));
        assert_eq!(grant.message(&not_found), r#"no file named "OWN.TXT""#);
        let bad = StorageError::BadName {
            name: grant.name("a/b"),
            reason: "a folder in the name is a file",
        };
        assert_eq!(
            grant.message(&bad),
            r#"bad name "a/b": a folder in the name is a file"#
        );
    }

    #[test]
    fn a_name_above_the_tokens_folder_is_shown_as_its_top() {
        let grant = confined();
        let bad = StorageError::BadName {
            name: "home".to_owned(),
            reason: "a folder in the name is a file",
        };
        let message = grant.message(&bad);
        assert!(!message.contains("home"), "{message}");
        assert!(message.starts_with(r#"bad name ".""#), "{message}");
    }

    #[test]
    fn an_unconfined_token_sees_stored_names_unchanged() {
        let grant = Grant::full();
        let error = StorageError::NotFound("home/alice/OWN.TXT".to_owned());
        assert_eq!(grant.message(&error), error.to_string());
    }

    #[test]
    fn messages_without_names_are_unchanged() {
        let error = StorageError::AlreadyExists;
        assert_eq!(confined().message(&error), error.to_string());
    }
}
