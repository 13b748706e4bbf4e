//! Making what one filing wrote durable in as few of the file system's
//! commits as the guarantee allows.
//!
//! The guarantee (`--fsync always`: an acknowledged instance survives a
//! power cut with its name and every record that says it exists) needs,
//! on any POSIX file system, an fsync of every new file and of every
//! directory that got a new name in it; and a name must not become
//! durable before its file's contents, or a crash could leave a name on a
//! file that is empty or half there. So a filing syncs in two rounds:
//!
//! 1. [`contents`]: every new file, before any of its names is made;
//! 2. [`Names::sync`]: every directory that got a name, once the filing
//!    has made them all.
//!
//! Within a round the fsyncs are issued at once, one thread each. A
//! journaling file system (ext4's jbd2, XFS's log) covers calls that wait
//! together with one commit, and concurrent associations' calls share
//! commits too (group commit). Issued one after another, each later call
//! finds its commit done and asks the disk for a cache flush of its own,
//! or starts a commit of its own for the data it writes back.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Makes the contents of `files` durable (fsync), all at once.
pub fn contents(files: &[&File]) -> io::Result<()> {
    together(files, |file| file.sync_all())
}

/// The directories in which a filing made names it has not made durable
/// yet; [`Names::sync`] makes them durable together, at its end.
#[derive(Default)]
pub struct Names {
    dirs: RefCell<Vec<PathBuf>>,
}

impl Names {
    /// The name `path` was made (or removed): its directory is owed an
    /// fsync.
    pub fn made(&self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut dirs = self.dirs.borrow_mut();
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }

    /// Makes every name made so far durable: one fsync of each directory,
    /// all at once.
    pub fn sync(&self) -> io::Result<()> {
        let dirs = self.dirs.take();
        together(&dirs, |dir| File::open(dir).and_then(|d| d.sync_all()))
    }
}

/// Runs `sync` on every item at once: on this thread for the first, on a
/// thread of its own for each other. The first error, if any.
fn together<T: Sync>(items: &[T], sync: impl Fn(&T) -> io::Result<()> + Sync) -> io::Result<()> {
    let Some((first, rest)) = items.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        return sync(first);
    }
    std::thread::scope(|scope| {
        let sync = &sync;
        let others: Vec<_> = rest
            .iter()
            .map(|item| scope.spawn(move || sync(item)))
            .collect();
        let mut result = sync(first);
        for other in others {
            let done = other
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("an fsync thread panicked")));
            result = result.and(done);
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_directory_is_owed_once_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::default();
        names.made(&dir.path().join("a"));
        names.made(&dir.path().join("b"));
        names.made(&dir.path().join("sub/c"));
        assert_eq!(names.dirs.borrow().len(), 2);
        // The subdirectory does not exist: its fsync fails, and says so.
        let err = names.sync().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(names.dirs.borrow().is_empty(), "a sync leaves debts owed");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        names.made(&dir.path().join("sub/c"));
        names.made(&dir.path().join("a"));
        names.sync().unwrap();
    }

    #[test]
    fn contents_of_several_files_are_synced_together_and_any_error_told() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<File> = (0..3)
            .map(|i| {
                let mut file = File::create(dir.path().join(i.to_string())).unwrap();
                file.write_all(b"data").unwrap();
                file
            })
            .collect();
        contents(&files.iter().collect::<Vec<_>>()).unwrap();
        contents(&[]).unwrap();
        // A pipe cannot be synced: its error comes back, wherever it is.
        let (reader, _writer) = io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        for set in [[&files[0], &pipe], [&pipe, &files[1]]] {
            let err = contents(&set).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(22), "{err}");
        }
    }
}
