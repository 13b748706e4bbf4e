//! Writing shared files so that concurrent writers never lose an update and
//! readers never see half a file: everything is written under a temporary
//! name first, in a work directory of its own (pypx's readers list and read
//! every file in their directories, so temporary files must not appear
//! there), then renamed or linked into place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::place::{TEMP_PREFIX, TEMP_SUFFIX};

/// A directory for temporary files, on the same file system as the files
/// they become.
#[derive(Debug, Clone)]
pub struct WorkDir {
    dir: PathBuf,
}

impl WorkDir {
    pub fn create(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(WorkDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn temp_with(&self, contents: &str) -> io::Result<NamedTempFile> {
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)?;
        temp.write_all(contents.as_bytes())?;
        Ok(temp)
    }

    /// Replaces `path` with `contents` in one step.
    pub fn replace(&self, path: &Path, contents: &str) -> io::Result<()> {
        self.temp_with(contents)?
            .persist(path)
            .map(drop)
            .map_err(|e| e.error)
    }

    /// Creates `path` with `contents` unless it exists. Returns whether this
    /// call created it. Linking (not renaming) makes the check and the
    /// creation one step, so concurrent callers cannot both create it.
    pub fn create_once(&self, path: &Path, contents: &str) -> io::Result<bool> {
        let temp = self.temp_with(contents)?;
        match fs::hard_link(temp.path(), path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // File systems without hard links: fall back to a rename that
            // may, in a race, replace an identical file.
            Err(_) if !path.exists() => temp.persist(path).map(|_| true).map_err(|e| e.error),
            Err(_) => Ok(false),
        }
    }

    /// Runs `update` while holding the exclusive lock `name` in this
    /// directory, so read-modify-write cycles of concurrent processes
    /// follow one another.
    pub fn locked<T>(&self, name: &str, update: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(name))?;
        lock.lock()?;
        // The lock is released when `lock` is closed, even if `update` fails.
        update()
    }
}
