//! A small tmpfs to fill: the disk of the full-disk tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted on a folder, unmounted (and the folder removed) when
/// dropped, so that a test that fails midway leaves no mount behind.
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `50m`) on `path`, an empty
    /// folder; `None` where mounting is not allowed (not root).
    pub fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .is_ok_and(|out| out.status.success());
        mounted.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}
