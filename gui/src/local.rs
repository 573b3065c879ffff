//! Local files to upload: a file, or every file under a folder, with the name each gets on
//! the server.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The files under `path` and their names on the server: a file is named after itself, the
/// files of a folder `photos` are named `photos/…` with `/` between parts, each part in Unicode
/// NFC (`ferry_client::name_from_local`), so a file from a Mac uploads under its NFC name.
/// Sorted by name. A file name that is not valid Unicode is an error naming the file.
pub fn files_to_upload(path: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let base = path
        .file_name()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no file name", path.display()),
            )
        })
        .and_then(|n| local_name(n, path))?;
    let mut found = Vec::new();
    walk(path, &base, &mut found)?;
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// The name component for the file name `file_name` of `path`.
fn local_name(file_name: &OsStr, path: &Path) -> io::Result<String> {
    ferry_client::name_from_local(file_name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the name of {} is not valid Unicode; rename it to upload it",
                path.display()
            ),
        )
    })
}

fn walk(path: &Path, name: &str, found: &mut Vec<(PathBuf, String)>) -> io::Result<()> {
    let metadata = fs::metadata(path)?;
    if metadata.is_file() {
        found.push((path.to_path_buf(), name.to_owned()));
    } else if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let child = local_name(&entry.file_name(), &entry.path())?;
            walk(&entry.path(), &format!("{name}/{child}"), found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_uploads_every_file_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        fs::create_dir_all(photos.join("2024")).unwrap();
        fs::write(photos.join("2024/a.jpg"), b"a").unwrap();
        fs::write(photos.join("b.jpg"), b"b").unwrap();
        let names: Vec<String> = files_to_upload(&photos)
            .unwrap()
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(names, ["photos/2024/a.jpg", "photos/b.jpg"]);
        let single = files_to_upload(&photos.join("b.jpg")).unwrap();
        assert_eq!(single, [(photos.join("b.jpg"), "b.jpg".to_owned())]);
    }

    #[test]
    fn decomposed_file_names_upload_under_their_nfc_names() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("re\u{301}sume\u{301}");
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("cafe\u{301}.txt"), b"a").unwrap();
        let names: Vec<String> = files_to_upload(&folder)
            .unwrap()
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(names, ["r\u{e9}sum\u{e9}/caf\u{e9}.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_unicode_is_an_error_naming_it() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(OsStr::from_bytes(b"bad\xff")), b"a").unwrap();
        let error = files_to_upload(dir.path()).unwrap_err();
        assert!(error.to_string().contains("not valid Unicode"), "{error}");
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(files_to_upload(&dir.path().join("nope")).is_err());
    }
}
