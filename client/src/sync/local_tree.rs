//! The regular files under a local folder, as a sync sees them: relative paths with `/`
//! (each component a name in NFC), sizes and stamps. Symbolic links are skipped and never
//! followed, so nothing a sync reads, writes or deletes lies outside the folder; so are the
//! partial files of downloads under way.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ClientError;
use crate::files::PARTIAL_SUFFIX;
use crate::local_name::name_from_local;
use crate::sync::digest_cache::FileStamp;
use crate::sync::filter::Filter;

/// One regular file under the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Its path relative to the folder, components joined by `/`.
    pub relative: String,
    /// Its path on the disk.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its size and modification time, the key of its cached digest.
    pub stamp: Option<FileStamp>,
}

/// Every regular file under `root` that `filter` keeps, sorted by relative path. Folders the
/// filter excludes are not entered. A missing `root` has no files.
pub fn walk(root: &Path, filter: &Filter) -> Result<Vec<LocalFile>, ClientError> {
    let mut files = Vec::new();
    match fs::symlink_metadata(root) {
        Ok(metadata) if metadata.is_dir() => walk_into(root, "", filter, &mut files)?,
        Ok(_) => {
            return Err(ClientError::Local {
                action: "cannot sync",
                path: root.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a folder (sync takes a folder on each side)",
                ),
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(read_error(root, source)),
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    filter: &Filter,
    files: &mut Vec<LocalFile>,
) -> Result<(), ClientError> {
    let entries = fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let path = entry.path();
        let Some(name) = name_from_local(&entry.file_name()) else {
            return Err(ClientError::Local {
                action: "cannot sync",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "its name is not valid UTF-8; rename it",
                ),
            });
        };
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // `DirEntry::metadata` does not follow symbolic links.
        let metadata = entry.metadata().map_err(|e| read_error(&path, e))?;
        if metadata.is_dir() {
            if filter.keeps(&relative, true) {
                walk_into(&path, &relative, filter, files)?;
            }
        } else if metadata.is_file()
            && !is_partial_download(&name)
            && filter.keeps(&relative, false)
        {
            files.push(LocalFile {
                relative,
                path,
                size: metadata.len(),
                stamp: FileStamp::of(&metadata),
            });
        }
    }
    Ok(())
}

/// Whether a file name is that of a download's partial file (`.NAME.ferry-partial`).
fn is_partial_download(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)
}

fn read_error(path: &Path, source: std::io::Error) -> ClientError {
    ClientError::Local {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::filter::RuleKind;

    #[test]
    fn the_walk_lists_regular_files_sorted_and_skips_partials_and_excluded_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/skip")).unwrap();
        fs::write(root.join("b/one"), b"1").unwrap();
        fs::write(root.join("b/skip/two"), b"22").unwrap();
        fs::write(root.join("a"), b"").unwrap();
        fs::write(root.join(".a.ferry-partial"), b"half").unwrap();
        let mut filter = Filter::new();
        filter.push(RuleKind::Exclude, "skip/").unwrap();
        let files = walk(root, &filter).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["a", "b/one"]);
        assert_eq!(files[1].size, 1);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"s").unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("file-link")).unwrap();
        assert!(walk(&root, &Filter::new()).unwrap().is_empty());
    }

    #[test]
    fn a_missing_folder_has_no_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            walk(&dir.path().join("nope"), &Filter::new())
                .unwrap()
                .is_empty()
        );
    }
}
