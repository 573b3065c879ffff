//! Transfers to and from local files: uploads tagged with the file's identity, downloads
//! written atomically (a partial file beside the target, fsync, rename) and resumable across
//! runs from that partial file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ferry_protocol::{FileHasher, HashCheckpoint};

use crate::client::{Client, check_name};
use crate::error::ClientError;
use crate::options::{GetOptions, GetReport, Progress, PutOptions, PutReport};
use crate::tag::file_tag;

/// Suffix of the partial file a download writes before it is complete.
pub const PARTIAL_SUFFIX: &str = ".ferry-partial";

/// Write buffer of a download's partial file: small, so that the large pieces a download
/// arrives in (up to a data chunk) go straight to the file without a copy into the buffer, while
/// small pieces are still gathered into fewer writes.
const WRITE_BUF_LEN: usize = 64 * 1024;

/// Read buffer for hashing a partial file's bytes.
const READ_BUF_LEN: usize = 256 * 1024;

/// Where the download to `target` is staged: a hidden file in the same folder, so the final
/// rename never crosses file systems.
pub fn partial_path(target: &Path) -> PathBuf {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{file_name}{PARTIAL_SUFFIX}"))
}

impl Client {
    /// Uploads the local file `local` as `name`. Its resume tag comes from the file's path,
    /// size and modification time (unless `opts.tag` is given), so an interrupted upload of an
    /// unchanged file resumes even from a new process.
    pub fn put_file(
        &mut self,
        local: &Path,
        name: &str,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PutReport, ClientError> {
        check_name(name)?;
        let read_error = |source| ClientError::Local {
            action: "cannot read",
            path: local.to_path_buf(),
            source,
        };
        let mut file = File::open(local).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(read_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (use -r for folders)",
            )));
        }
        let mut opts = opts.clone();
        opts.tag = Some(opts.tag.unwrap_or_else(|| file_tag(local, &metadata)));
        self.put_from(&mut file, metadata.len(), name, &opts, progress)
    }

    /// Downloads `name` to the local path `local`. The bytes go to a partial file beside it,
    /// which is synced and renamed over `local` only once the digest matched: `local` never
    /// holds a half file. A partial file left by an interrupted run is continued (with
    /// `opts.resume`); if it turns out not to belong to the server's file, the download starts
    /// over once.
    pub fn get_file(
        &mut self,
        name: &str,
        local: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GetReport, ClientError> {
        check_name(name)?;
        let partial = partial_path(local);
        let write_error = |source| ClientError::Local {
            action: "cannot write",
            path: partial.clone(),
            source,
        };
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(write_error)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(write_error)?;
        let checkpoint = if opts.resume && self.options().resume {
            hash_prefix(&mut file).map_err(write_error)?
        } else {
            HashCheckpoint::start()
        };
        let mut result = self.get_into(name, &partial, &mut file, checkpoint.clone(), progress);
        // A partial file from an earlier run may belong to an older version of the file: it
        // fails verification, or is refused as longer than the file now is.
        let stale = matches!(
            result,
            Err(ClientError::Integrity { .. } | ClientError::Refused { .. })
        );
        if checkpoint.offset() > 0 && stale {
            tracing::info!(
                name,
                "the partial download does not match the server's file; starting over"
            );
            result = self.get_into(name, &partial, &mut file, HashCheckpoint::start(), progress);
        }
        match result {
            Ok(report) => {
                file.sync_all().map_err(write_error)?;
                drop(file);
                fs::rename(&partial, local).map_err(|source| ClientError::Local {
                    action: "cannot rename the download to",
                    path: local.to_path_buf(),
                    source,
                })?;
                sync_parent(local);
                Ok(report)
            }
            Err(error) => {
                let useless = matches!(error, ClientError::Integrity { .. })
                    || !(opts.resume && self.options().resume)
                    || file.metadata().is_ok_and(|m| m.len() == 0);
                if useless {
                    drop(file);
                    let _ = fs::remove_file(&partial);
                }
                Err(error)
            }
        }
    }

    /// Downloads into `file` from `checkpoint.offset()`, truncating what lies beyond.
    fn get_into(
        &mut self,
        name: &str,
        partial: &Path,
        file: &mut File,
        checkpoint: HashCheckpoint,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GetReport, ClientError> {
        let write_error = |source| ClientError::Local {
            action: "cannot write",
            path: partial.to_path_buf(),
            source,
        };
        file.set_len(checkpoint.offset()).map_err(write_error)?;
        file.seek(SeekFrom::Start(checkpoint.offset()))
            .map_err(write_error)?;
        let mut writer = BufWriter::with_capacity(WRITE_BUF_LEN, file);
        let result = self.get_from(
            name,
            partial.to_path_buf(),
            &mut writer,
            checkpoint,
            progress,
        );
        // Keep what arrived, even on failure, so the next run can resume from it.
        io::Write::flush(&mut writer).map_err(write_error)?;
        result
    }
}

/// Hashes the partial file's bytes and returns the checkpoint to resume from; the caller
/// truncates the file to its offset.
fn hash_prefix(file: &mut File) -> io::Result<HashCheckpoint> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; READ_BUF_LEN];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.checkpoint());
        }
        hasher.update(&buf[..n]);
    }
}

/// Makes a rename durable by syncing the folder that holds it (best effort: not every
/// platform can open a folder).
pub(crate) fn sync_parent(path: &Path) {
    sync_folder(path.parent().unwrap_or(Path::new("")));
}

/// Makes the renames into `folder` durable (best effort, as [`sync_parent`]); `""` is the
/// current folder.
pub(crate) fn sync_folder(folder: &Path) {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_path_is_a_hidden_sibling() {
        assert_eq!(
            partial_path(Path::new("out/a.txt")),
            PathBuf::from("out/.a.txt.ferry-partial")
        );
    }

    #[test]
    fn hash_prefix_resumes_at_a_unit_boundary_at_or_before_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let unit = ferry_protocol::HASH_UNIT_LEN as usize;
        std::fs::write(&path, vec![7u8; unit * 3 + 100]).unwrap();
        let mut file = File::open(&path).unwrap();
        let checkpoint = hash_prefix(&mut file).unwrap();
        assert_eq!(checkpoint.offset(), 3 * unit as u64);
        let mut hasher = FileHasher::resume(&checkpoint);
        hasher.update(&[7u8; 100]);
        assert_eq!(
            hasher.finalize(),
            ferry_protocol::Digest::of(&vec![7u8; unit * 3 + 100])
        );
    }
}
