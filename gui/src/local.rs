//! Local files to upload: a file, or every file under a folder, with the name each gets on
//! the server.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The files under `path` and their names on the server: a file is named after itself, the
/// files of a folder `photos` are named `photos/…` with `/` between parts. Sorted by name.
pub fn files_to_upload(path: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no file name", path.display()),
            )
        })?;
    let mut found = Vec::new();
    walk(path, &base, &mut found)?;
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

fn walk(path: &Path, name: &str, found: &mut Vec<(PathBuf, String)>) -> io::Result<()> {
    let metadata = fs::metadata(path)?;
    if metadata.is_file() {
        found.push((path.to_path_buf(), name.to_owned()));
    } else if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let child = entry.file_name().to_string_lossy().into_owned();
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
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(files_to_upload(&dir.path().join("nope")).is_err());
    }
}
