//! Files that get their name only once they are complete.
//!
//! A file is written unnamed (Linux `O_TMPFILE`), then linked to its name
//! in one step. Until then no directory listing shows it, and a crash
//! leaves nothing behind. Where the file system cannot make unnamed files,
//! a temporary file named `.rx-repack-*.tmp` in the same directory stands in.
//!
//! Directories are created when an operation finds them missing, not
//! checked beforehand: they almost always exist, and a check per file
//! would cost system calls on every call.
//!
//! A file can be made ahead of need ([`make_ready`]): rx-listen makes the
//! files of a sender's next instance while the sender prepares it, which
//! costs it nothing, instead of after the request came, which delays the
//! response (on ext4, making an inode was most of filing an instance).

use std::cell::RefCell;
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
    /// The bytes allocated ahead (see [`make_ready`]).
    room: u64,
}

/// The permission bits of new files (rw-rw-rw- less the umask, as
/// storescp and Python's open() make them), and of those made ahead.
pub const NEW_FILE_MODE: u32 = 0o666;

thread_local! {
    /// The files this thread made ahead of need, for [`Unnamed::create_in`]
    /// to take.
    static READY: RefCell<Vec<Unnamed>> = const { RefCell::new(Vec::new()) };
}

/// Makes an unnamed file in `dir` with room (blocks, or tmpfs pages,
/// allocated) for `room` bytes, for this thread's next
/// [`Unnamed::create_in`] in `dir` to take, unless one is ready there. A
/// failure is left for that call to meet and report.
pub fn make_ready(dir: &Path, room: u64) {
    if READY.with_borrow(|ready| ready.iter().any(|file| file.dir == dir)) {
        return;
    }
    let Ok(mut file) = Unnamed::create_new(dir, NEW_FILE_MODE) else {
        return;
    };
    if room > 0 && rustix::fs::fallocate(&file.file, FallocateFlags::empty(), 0, room).is_ok() {
        file.room = room;
    }
    READY.with_borrow_mut(|ready| ready.push(file));
}

/// Drops the files this thread made ahead (their room given back to the
/// file system).
pub fn discard_ready() {
    READY.with_borrow_mut(Vec::clear);
}

impl Unnamed {
    /// A new, empty file on the file system of `dir`, with the permission
    /// bits `mode` (less the umask, as for any new file), open for writing
    /// and reading (a received instance is read back before it is named):
    /// the one made ready there, if any (see [`make_ready`]).
    pub fn create_in(dir: &Path, mode: u32) -> io::Result<Unnamed> {
        let ready = READY.with_borrow_mut(|ready| {
            let index = ready.iter().position(|file| file.dir == dir);
            index
                .filter(|_| mode == NEW_FILE_MODE)
                .map(|i| ready.swap_remove(i))
        });
        match ready {
            Some(file) => Ok(file),
            None => Unnamed::create_new(dir, mode),
        }
    }

    fn create_new(dir: &Path, mode: u32) -> io::Result<Unnamed> {
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
    fn a_file_made_ready_is_taken_once_in_its_directory_and_gives_back_its_room() {
        use std::os::unix::fs::MetadataExt;
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        make_ready(dir.path(), 1 << 20);
        let inode = |file: &Unnamed| file.file().metadata().unwrap().ino();
        let ready = READY.with_borrow(|ready| inode(&ready[0]));
        // Another directory, or other permissions, make a new file.
        assert_ne!(
            inode(&Unnamed::create_in(other.path(), NEW_FILE_MODE).unwrap()),
            ready
        );
        assert_ne!(
            inode(&Unnamed::create_in(dir.path(), 0o600).unwrap()),
            ready
        );
        let file = Unnamed::create_in(dir.path(), NEW_FILE_MODE).unwrap();
        assert_eq!(inode(&file), ready);
        assert_ne!(
            inode(&Unnamed::create_in(dir.path(), NEW_FILE_MODE).unwrap()),
            ready
        );
        assert!(names(dir.path()).is_empty(), "a ready file is listed");
        make_ready(dir.path(), 0);
        discard_ready();
        assert!(READY.with_borrow(Vec::is_empty), "not discarded");
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
