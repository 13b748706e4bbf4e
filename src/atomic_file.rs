//! The layer everything written stands on: files that get their name only
//! once they are complete.
//!
//! A file is written unnamed (Linux `O_TMPFILE`), then linked to its name
//! in one step, or replaces what is at the name in one step. Until then no
//! directory listing shows it, and a crash leaves nothing behind. Where the
//! file system cannot make unnamed files, a temporary file named
//! `.rx-repack-*.tmp` in the same directory stands in.
//!
//! Directories are created when an operation finds them missing, not
//! checked beforehand: they almost always exist, and a check per file
//! would cost system calls on every call. A name is made durable by an
//! fsync of its directory ([`sync_dir`]).
//!
//! A file can be made ahead of need ([`Unnamed::ahead`]) by whoever will
//! hand it to the code that writes it: rx-listen makes the files of a
//! sender's next instance while the sender prepares it, which costs it
//! nothing, instead of after the request came, which delays the response
//! (on ext4, making an inode was most of filing an instance).

use std::fs::{self, File, Permissions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, CWD, FallocateFlags, Mode, OFlags};
use tempfile::{Builder, TempPath};

/// Temporary files carry this prefix and suffix, so leftovers of a killed
/// run are recognisable (and skipped by the directory walk).
pub const TEMP_PREFIX: &str = ".rx-repack-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file being written, not yet at its name.
pub struct Unnamed {
    file: File,
    dir: PathBuf,
    /// The temporary name, when the file system could not leave it unnamed.
    temp: Option<TempPath>,
    /// The bytes allocated ahead (see [`Unnamed::ahead`]).
    room: u64,
}

/// The permission bits of new files (rw-rw-rw- less the umask, as
/// storescp and Python's open() make them), and of those made ahead.
pub const NEW_FILE_MODE: u32 = 0o666;

impl Unnamed {
    /// A new, empty file on the file system of `dir`, with the permission
    /// bits `mode` (less the umask, as for any new file), open for writing
    /// and reading (a received instance is read back before it is named).
    pub fn create_in(dir: &Path, mode: u32) -> io::Result<Unnamed> {
        if proc_fd_dir().is_some() {
            let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC;
            match rustix::fs::open(dir, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => {
                    return Ok(Unnamed {
                        file: File::from(fd),
                        dir: dir.to_path_buf(),
                        temp: None,
                        room: 0,
                    });
                }
                Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
                    return Err(e.into());
                }
                // Not supported by this file system or kernel.
                Err(_) => {}
            }
        }
        let (file, temp) = temp_name()
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir)?
            .into_parts();
        Ok(Unnamed {
            file,
            dir: dir.to_path_buf(),
            temp: Some(temp),
            room: 0,
        })
    }

    /// A new file in `dir`, made before it is needed, with room (blocks,
    /// or tmpfs pages, allocated) for `room` bytes where the file system
    /// gives it; [`Unnamed::give_back_room`] ends it at its real size.
    pub fn ahead(dir: &Path, room: u64) -> io::Result<Unnamed> {
        let mut file = Unnamed::create_in(dir, NEW_FILE_MODE)?;
        if room > 0 && rustix::fs::fallocate(&file.file, FallocateFlags::empty(), 0, room).is_ok() {
            file.room = room;
        }
        Ok(file)
    }

    /// A new file in `dir` with [`NEW_FILE_MODE`]: `ahead`, if it was made
    /// there (see [`Unnamed::ahead`]), else one made now.
    pub fn made_ahead_or_new(dir: &Path, ahead: Option<Unnamed>) -> io::Result<Unnamed> {
        match ahead.filter(|file| file.dir == dir) {
            Some(file) => Ok(file),
            None => Unnamed::create_in(dir, NEW_FILE_MODE),
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Ends the file after its first `size` bytes if it was given more room
    /// (its writer is done with it).
    pub fn give_back_room(&self, size: u64) -> io::Result<()> {
        match self.room > size {
            true => self.file.set_len(size),
            false => Ok(()),
        }
    }

    /// Gives the file the name `path` (on the same file system). Fails
    /// with `AlreadyExists` rather than replace anything there.
    pub fn link(&self, path: &Path) -> io::Result<()> {
        match &self.temp {
            Some(temp) => fs::hard_link(temp, path),
            None => link_unnamed(&self.file, path),
        }
    }

    /// Gives the file the name `path`, replacing what is there in one step
    /// (by renaming a temporary name in its own directory).
    pub fn replace(&mut self, path: &Path) -> io::Result<()> {
        match self.temp.take() {
            Some(temp) => temp.persist(path).map_err(|e| e.error),
            None => replace_through(&self.dir, path, |temp| link_unnamed(&self.file, temp)),
        }
    }
}

/// A builder of our temporary names, `.rx-repack-*.tmp`.
pub fn temp_name() -> Builder<'static, 'static> {
    let mut builder = Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    builder
}

/// Puts a file at `target`, replacing what is there in one step: `link`
/// gives it a temporary name in `dir` (on `target`'s file system), which is
/// then renamed to `target`.
pub fn replace_through(
    dir: &Path,
    target: &Path,
    link: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<()> {
    temp_name()
        .make_in(dir, link)?
        .into_temp_path()
        .persist(target)
        .map_err(|e| e.error)
}

/// Linking an unnamed file goes through its `/proc/self/fd` entry (linking
/// the descriptor itself needs a capability ordinary users lack). The
/// directory is opened once, not walked to through procfs for each link.
fn proc_fd_dir() -> Option<&'static OwnedFd> {
    static DIR: OnceLock<Option<OwnedFd>> = OnceLock::new();
    DIR.get_or_init(|| {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open("/proc/self/fd", flags, Mode::empty()).ok()
    })
    .as_ref()
}

/// Links the unnamed `file` at `path`.
fn link_unnamed(file: &File, path: &Path) -> io::Result<()> {
    let proc_fd = proc_fd_dir().ok_or(io::ErrorKind::Unsupported)?;
    let entry = file.as_raw_fd().to_string();
    Ok(rustix::fs::linkat(
        proc_fd,
        entry,
        CWD,
        path,
        AtFlags::SYMLINK_FOLLOW,
    )?)
}

/// Makes the name `path` durable: fsync of the directory holding it.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir).and_then(|d| d.sync_all()),
        None => Ok(()),
    }
}

/// Runs `op`; if it finds a directory missing, creates `dir` and runs it
/// once more.
pub fn creating_dir<T>(dir: &Path, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    match op() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            op()
        }
        other => other,
    }
}

/// [`creating_dir`] for the directory that holds `path`.
pub fn creating_parent<T>(path: &Path, op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    creating_dir(path.parent().unwrap_or(Path::new(".")), op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn unnamed_until_linked_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let file = Unnamed::create_in(dir.path(), 0o644).unwrap();
        file.file().write_all(b"first").unwrap();
        assert!(names(dir.path()).is_empty(), "an unnamed file is listed");
        let path = dir.path().join("a");
        file.link(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");

        let mut second = Unnamed::create_in(dir.path(), 0o644).unwrap();
        second.file().write_all(b"second").unwrap();
        let err = second.link(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        second.replace(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["a"], "a temporary name is left");
    }

    #[test]
    fn missing_directories_are_made_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x/y");
        let file = creating_dir(&deep, || Unnamed::create_in(&deep, 0o600)).unwrap();
        let path = dir.path().join("p/q/r.json");
        creating_parent(&path, || file.link(&path)).unwrap();
        assert!(path.is_file());
        assert!(deep.is_dir());
    }

    #[test]
    fn a_file_made_ahead_is_taken_in_its_directory_and_gives_back_its_room() {
        use std::os::unix::fs::MetadataExt;
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let inode = |file: &Unnamed| file.file().metadata().unwrap().ino();
        let ahead = Unnamed::ahead(dir.path(), 1 << 20).unwrap();
        assert!(names(dir.path()).is_empty(), "a file made ahead is listed");
        // Made ahead for another directory: a new file, there (the one
        // made ahead is dropped, and its inode may be the new file's).
        let elsewhere = Unnamed::made_ahead_or_new(other.path(), Some(ahead)).unwrap();
        assert_eq!(elsewhere.dir, other.path());
        let ahead = Unnamed::ahead(dir.path(), 1 << 20).unwrap();
        let made = inode(&ahead);
        let file = Unnamed::made_ahead_or_new(dir.path(), Some(ahead)).unwrap();
        assert_eq!(inode(&file), made);
        assert_ne!(
            inode(&Unnamed::made_ahead_or_new(dir.path(), None).unwrap()),
            made
        );
        file.file().write_all(b"data set").unwrap();
        file.give_back_room(8).unwrap();
        let metadata = file.file().metadata().unwrap();
        assert_eq!(metadata.len(), 8);
        assert!(
            metadata.blocks() * 512 <= 8192,
            "{} blocks",
            metadata.blocks()
        );
    }
}
