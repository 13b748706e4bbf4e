//! Writing shared files so that concurrent writers never lose an update and
//! readers never see half a file: everything is written unnamed first (see
//! [`Unnamed`]), then linked or renamed into place. pypx's readers list and
//! read every file in their directories, so no temporary name may appear
//! there: where a temporary name is needed, it is in a work directory of
//! our own.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::atomic_file::{Unnamed, creating_dir, creating_parent};
use crate::syncing::Owed;

/// Opens the lock file `name` in `dir`, making both if need be. Its lock
/// (`flock`) is held until the file is closed, and released by the
/// kernel if its holder dies.
pub fn open_lock(dir: &Path, name: &str) -> io::Result<File> {
    let path = dir.join(name);
    creating_dir(dir, || {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
    })
}

/// What writes a file's contents.
pub type Contents<'a> = &'a dyn Fn(&mut dyn Write) -> io::Result<()>;

/// A directory for temporary files and locks, on the same file system as
/// the files they become. It is created when first needed.
pub struct WorkDir<'a> {
    dir: PathBuf,
    /// With fsyncs `owed`, files written through it are made durable:
    /// each file's contents before it is named, and the directory it is
    /// named in owed an fsync (see [`crate::syncing`]).
    owed: Option<&'a Owed>,
    /// A file made ahead in it, for the first file written (see
    /// [`Unnamed::ahead`]).
    ahead: Cell<Option<Unnamed>>,
}

impl<'a> WorkDir<'a> {
    /// The work dir `dir`, durable with `owed`; `ahead`, made there, is
    /// the first file written.
    pub fn new(dir: PathBuf, owed: Option<&'a Owed>, ahead: Option<Unnamed>) -> Self {
        WorkDir {
            dir,
            owed,
            ahead: Cell::new(ahead),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new unnamed file holding what `write` writes (streamed, so that
    /// a large record is never held whole in memory).
    pub fn unnamed_with(&self, write: Contents) -> io::Result<Unnamed> {
        let file = creating_dir(&self.dir, || {
            Unnamed::made_ahead_or_new(&self.dir, self.ahead.take())
        })?;
        let mut out = BufWriter::with_capacity(64 << 10, file.file());
        write(&mut out)?;
        out.flush()?;
        drop(out);
        if self.owed.is_some() {
            file.file().sync_all()?;
        }
        Ok(file)
    }

    /// The name `path` was just made or removed: when durable, its
    /// directory is owed an fsync.
    pub fn named(&self, path: &Path) {
        if let Some(owed) = self.owed {
            owed.name(path);
        }
    }

    /// Replaces `path` with what `write` writes, in one step.
    pub fn replace(&self, path: &Path, write: Contents) -> io::Result<()> {
        let file = self.unnamed_with(write)?;
        self.replace_with(path, file)
    }

    /// Replaces `path` with `file` (from [`WorkDir::unnamed_with`], whose
    /// contents are durable when this work dir is), in one step.
    pub fn replace_with(&self, path: &Path, mut file: Unnamed) -> io::Result<()> {
        match creating_parent(path, || file.link(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            // There already, or no hard links on this file system.
            Err(_) => file.replace(path)?,
        }
        self.named(path);
        Ok(())
    }

    /// Creates `path` with what `write` writes unless it exists. Returns
    /// whether this call created it. Linking (not renaming) makes the check
    /// and the creation one step, so concurrent callers cannot both create
    /// it.
    pub fn create_once(&self, path: &Path, write: Contents) -> io::Result<bool> {
        let mut file = self.unnamed_with(write)?;
        let created = match creating_parent(path, || file.link(path)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            // File systems without hard links: fall back to a rename that
            // may, in a race, replace an identical file.
            Err(_) if !path.exists() => file.replace(path).map(|()| true)?,
            Err(_) => false,
        };
        if created {
            self.named(path);
        }
        Ok(created)
    }

    /// Runs `update` while holding the exclusive lock `name` in this
    /// directory, so read-modify-write cycles of concurrent processes
    /// follow one another.
    pub fn locked<T>(&self, name: &str, update: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let lock = open_lock(&self.dir, name)?;
        lock.lock()?;
        // The lock is released when `lock` is closed, even if `update` fails.
        update()
    }
}
