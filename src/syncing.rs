//! Making what one filing wrote durable in one commit of the file system.
//!
//! The promise (`--fsync always`): when an instance is acknowledged, its
//! bytes, its name and every record that says it exists survive a power
//! cut. On any POSIX file system that takes an fsync of every new file
//! and of every directory that got a new name, each after the last change
//! it must cover. A filing therefore owes ([`Owed`]) the fsyncs of what it
//! writes and names, and pays them all at its end, before the answer goes
//! out: files first, then directories.
//!
//! Paid at the end, one after another, they cost one journal commit on
//! ext4 and XFS: the first fsync commits the transaction that holds every
//! change of the filing, and the others find their changes committed
//! (each then costs at most a cache flush). Paid as each change is made,
//! as before, they cost a commit each. Concurrent associations do not
//! share commits (measured: a commit per instance with four senders,
//! and batching their payments did not change it; see
//! docs/durability.md), but no lock is held while a filing pays.
//!
//! An instance is named before its fsync, so a power cut during a filing
//! could, on some file systems, leave its name on data not yet written.
//! [`write_back`] closes that on the journaling file systems Linux users
//! run: before the name is made, the new file's data is written to the
//! device and its size and blocks are in the journal, and a journal commit
//! that makes the name durable flushes the device's cache first (ext4 in
//! its default ordered mode, XFS). Records other than the image record
//! are few; their contents are synced before they are named, as before.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Writes the data of `files` to the device and waits for it, without a
/// journal commit or a cache flush (Linux's `sync_file_range`): done
/// before the files are named (see the module's text). The writes of all
/// are started before any is waited for, so they are on their way
/// together. Where the call is not supported it is skipped: the fsyncs
/// owed still keep the promise.
pub fn write_back(files: &[&File]) -> io::Result<()> {
    let start = libc::SYNC_FILE_RANGE_WRITE;
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE | start | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    for flags in [start, wait] {
        for file in files {
            sync_file_range(file, flags)?;
        }
    }
    Ok(())
}

fn sync_file_range(file: &File, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: a plain system call on a descriptor that `file` keeps open
    // for the duration of the call; it touches no memory of ours.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE)
        ) =>
        {
            Ok(())
        }
        e => Err(e),
    }
}

/// The fsyncs a filing owes: of the files it wrote and of the directories
/// in which it made or removed names. [`Owed::pay`] makes them.
#[derive(Default)]
pub struct Owed {
    files: RefCell<Vec<File>>,
    dirs: RefCell<Vec<PathBuf>>,
}

impl Owed {
    /// `file`'s contents are owed an fsync (through a descriptor of its
    /// own, so the file may be closed meanwhile).
    pub fn file(&self, file: &File) -> io::Result<()> {
        self.files.borrow_mut().push(file.try_clone()?);
        Ok(())
    }

    /// The name `path` was made or removed: its directory is owed an
    /// fsync.
    pub fn name(&self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut dirs = self.dirs.borrow_mut();
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }

    /// Makes every fsync owed so far, files first, then directories; the
    /// first error, if any (the rest are made even so, and owed no more).
    pub fn pay(&self) -> io::Result<()> {
        let files = self.files.take();
        let dirs = self.dirs.take();
        let files = files.iter().map(File::sync_all);
        let dirs = dirs
            .iter()
            .map(|dir| File::open(dir).and_then(|d| d.sync_all()));
        files.chain(dirs).fold(Ok(()), Result::and)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn each_directory_is_owed_once_and_a_failed_fsync_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let owed = Owed::default();
        owed.name(&dir.path().join("a"));
        owed.name(&dir.path().join("b"));
        owed.name(&dir.path().join("sub/c"));
        assert_eq!(owed.dirs.borrow().len(), 2);
        // The subdirectory does not exist: its fsync fails, and says so.
        let err = owed.pay().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(owed.dirs.borrow().is_empty(), "a payment leaves debts");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        owed.name(&dir.path().join("sub/c"));
        owed.name(&dir.path().join("a"));
        owed.pay().unwrap();
    }

    #[test]
    fn files_written_back_and_synced_even_once_closed_and_errors_told() {
        let dir = tempfile::tempdir().unwrap();
        let owed = Owed::default();
        let files: Vec<File> = (0..3)
            .map(|i| {
                let mut file = File::create(dir.path().join(i.to_string())).unwrap();
                file.write_all(b"data").unwrap();
                file
            })
            .collect();
        write_back(&files.iter().collect::<Vec<_>>()).unwrap();
        for file in files {
            owed.file(&file).unwrap();
        }
        owed.pay().unwrap();
        // A pipe cannot be synced: its error comes back.
        let (reader, _writer) = io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        owed.file(&pipe).unwrap();
        let err = owed.pay().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert!(owed.files.borrow().is_empty());
    }
}
