//! Putting an instance at its place in the tree, atomically: it appears at
//! its final name complete or not at all, and a source is removed only
//! once the copy at the destination is complete (see [`finish_move`]).
//!
//! [`Origin`] says where an instance comes from. A move within one file
//! system links the source to the final name. A copy (or a move across
//! file systems) is written unnamed in the destination directory
//! ([`Unnamed`]), then linked; an instance rx-listen received is already
//! unnamed on the data dir's file system, and is linked. Linking fails
//! rather than overwrite, so a different instance already at the name is
//! never clobbered; the same instance delivered again is replaced by a
//! rename. [`identity`] tells whether a file at a name is the same
//! instance; what is not DICOM goes to the [`quarantine`] instead.

pub mod identity;
pub mod quarantine;

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::atomic_file::{Unnamed, creating_dir, replace_through, sync_dir};
use crate::syncing::{Coming, Owed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Copy,
    Move,
}

/// What is at the destination once [`place`] returns.
#[derive(Debug)]
pub struct Placed {
    pub path: PathBuf,
    /// The file at `path`, as `stat` sees it now.
    pub metadata: Metadata,
    /// The source already was the destination: nothing to do, and the
    /// source must not be removed.
    pub in_place: bool,
    /// `path` is a second link of the source, which [`finish_move`] removes.
    pub source_linked: bool,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new file.
    New,
    /// Replaced an earlier delivery of the same instance.
    Replaced,
    /// Another instance held the name; this one got a distinct name.
    Renamed,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("cannot write into the data dir {datadir}: {source}")]
    DataDir { datadir: PathBuf, source: io::Error },
    #[error("cannot copy the file into the data dir {datadir}: {source}")]
    Copy { datadir: PathBuf, source: io::Error },
    #[error("the file was removed while it was being placed: {0}")]
    SourceGone(io::Error),
    #[error("a directory is in the way at {0}")]
    DirectoryInTheWay(PathBuf),
    #[error("{0} and its alternative name are both held by other instances")]
    NamesTaken(PathBuf),
    #[error("placed at {path} but cannot remove the source: {source}")]
    RemoveSource { path: PathBuf, source: io::Error },
}

/// A file at a path, open for reading.
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub file: File,
    pub metadata: Metadata,
}

impl<'a> SourceFile<'a> {
    pub fn open(path: &'a Path) -> io::Result<SourceFile<'a>> {
        let file = File::open(path)?;
        // One stat of the source serves the header read and the copy.
        let metadata = file.metadata()?;
        Ok(SourceFile {
            path,
            file,
            metadata,
        })
    }
}

/// Where an instance comes from, and so how it is placed.
pub enum Origin<'a> {
    /// A file at a path (as storescp wrote it, or one of a batch): copied,
    /// or moved.
    File { src: SourceFile<'a>, mode: Mode },
    /// An instance rx-listen received, written complete into an unnamed
    /// file on the data dir's file system (open for reading too): linked
    /// into place.
    Received {
        file: Unnamed,
        /// What to call it in the quarantine (it has no name of its own).
        name: String,
        /// Make it and its records durable (fsync) before it is
        /// acknowledged, when given: its filing's count at the group
        /// commit's gate (see [`crate::syncing`]).
        durable: Option<Coming>,
        /// An unnamed file made ahead in the log dir's work dir, for the
        /// first record its filing writes (see [`crate::records`]).
        record_file: Option<Unnamed>,
    },
}

impl Origin<'_> {
    /// The instance's bytes.
    pub fn file(&self) -> &File {
        match self {
            Origin::File { src, .. } => &src.file,
            Origin::Received { file, .. } => file.file(),
        }
    }

    /// The instance's file as `stat` sees it.
    pub fn metadata(&self) -> io::Result<Metadata> {
        match self {
            Origin::File { src, .. } => Ok(src.metadata.clone()),
            Origin::Received { file, .. } => file.file().metadata(),
        }
    }

    /// The fsyncs its filing will owe, when what is placed and recorded
    /// must be durable before the filing returns; taken once. A file at a
    /// path is not made so: storescp has not synced the file it wrote
    /// either, and a move syncs what it must before it removes the source.
    pub fn take_debts(&mut self) -> Option<Owed> {
        match self {
            Origin::Received { durable, .. } => durable.take().map(Owed::for_filing),
            Origin::File { .. } => None,
        }
    }

    /// The source a move removes once the instance is placed and recorded.
    pub fn moved_from(&self) -> Option<&Path> {
        match self {
            Origin::File {
                src,
                mode: Mode::Move,
            } => Some(src.path),
            _ => None,
        }
    }
}

/// Where a file goes: `datadir/series_dir/file_name`.
pub struct Destination<'a> {
    pub datadir: &'a Path,
    /// Relative to the data dir.
    pub series_dir: &'a Path,
    pub file_name: &'a str,
}

impl Destination<'_> {
    /// Where the file goes unless another instance holds the name.
    pub fn path(&self) -> PathBuf {
        self.datadir.join(self.series_dir).join(self.file_name)
    }
}

/// Places `origin` at `dst`. With `owed` (see [`crate::syncing`]), the
/// origin's contents are owed their fsync already, and the directory of
/// its new name is owed one. `same_instance(file, existing)` says whether
/// a file already at a candidate name is the same instance as `file`
/// (then it is replaced); `alternative_name(file)` gives the name to use
/// when it is not.
pub fn place(
    origin: &mut Origin,
    dst: &Destination,
    owed: Option<&Owed>,
    same_instance: &dyn Fn(&File, &Path) -> bool,
    alternative_name: &dyn Fn(&File) -> String,
) -> Result<Placed, PlaceError> {
    let dir = &dst.datadir.join(dst.series_dir);
    let unwritable = |source| PlaceError::DataDir {
        datadir: dst.datadir.to_path_buf(),
        source,
    };
    let copy_of = |src: &SourceFile, mode| {
        copy(&src.file, &src.metadata, dir, mode == Mode::Move).map_err(|e| e.into_error(dst))
    };
    let (src, mode, mut staged) = match origin {
        Origin::File { src, mode } => match mode {
            Mode::Move => (Some(&*src), *mode, Staged::Source(src)),
            Mode::Copy => (Some(&*src), *mode, Staged::Copy(copy_of(src, *mode)?)),
        },
        Origin::Received { file, .. } => (None, Mode::Copy, Staged::Received(file)),
    };
    let done = |staged: &Staged, target: &Path, outcome, in_place| {
        let placed = staged.placed(target, outcome, in_place, mode)?;
        if let Some(owed) = owed {
            owed.name(target);
        }
        Ok(placed)
    };
    let mut target = dst.path();
    let mut outcome = Outcome::New;
    loop {
        let error = match creating_dir(dir, || staged.link(&target)) {
            Ok(()) => return done(&staged, &target, outcome, false).map_err(unwritable),
            Err(e) => e,
        };
        match error.kind() {
            io::ErrorKind::AlreadyExists => {
                if target.is_dir() {
                    return Err(PlaceError::DirectoryInTheWay(target));
                }
                if let Some(src) = src
                    && same_inode(src.path, &target)
                {
                    // Already there: either the very same directory entry
                    // (repacking the data dir itself: nothing to do, and the
                    // source must stay), or a second link left by a move
                    // that was interrupted before it removed the source (the
                    // move is completed as usual).
                    let in_place = same_entry(src.path, &target);
                    return done(&Staged::Source(src), &target, Outcome::Replaced, in_place)
                        .map_err(unwritable);
                }
                if same_instance(staged.file(), &target) {
                    staged.replace(dir, &target).map_err(unwritable)?;
                    return done(&staged, &target, Outcome::Replaced, false).map_err(unwritable);
                }
                if outcome == Outcome::Renamed {
                    // The alternative name is taken by yet another
                    // instance: something is badly wrong; refuse.
                    return Err(PlaceError::NamesTaken(dir.join(dst.file_name)));
                }
                target = target.with_file_name(alternative_name(staged.file()));
                outcome = Outcome::Renamed;
            }
            // The source cannot be linked (another file system, or links
            // not allowed): a move copies instead.
            _ if let Staged::Source(src) = staged
                && error.kind() != io::ErrorKind::NotFound =>
            {
                staged = Staged::Copy(copy_of(src, mode)?);
            }
            // File systems without hard links: check, then rename. Only a
            // concurrent delivery of a different instance under the same
            // name could slip between the two.
            _ if error.kind() == io::ErrorKind::Unsupported || error.raw_os_error() == Some(1) => {
                if target.exists()
                    && !same_instance(staged.file(), &target)
                    && outcome != Outcome::Renamed
                {
                    target = target.with_file_name(alternative_name(staged.file()));
                    outcome = Outcome::Renamed;
                    continue;
                }
                staged.replace(dir, &target).map_err(unwritable)?;
                return done(&staged, &target, outcome, false).map_err(unwritable);
            }
            // Linking a source that was removed meanwhile.
            io::ErrorKind::NotFound if src.is_some_and(|src| !src.path.exists()) => {
                return Err(PlaceError::SourceGone(error));
            }
            _ => return Err(unwritable(error)),
        }
    }
}

/// Completes a move once everything that depends on the placed file (its
/// records) is written: makes the new name durable, then removes `src`.
pub fn finish_move(src: &Path, placed: &Placed) -> Result<(), PlaceError> {
    if placed.in_place {
        return Ok(());
    }
    let fail = |source| PlaceError::RemoveSource {
        path: placed.path.clone(),
        source,
    };
    // A crash must not leave the source gone and the destination's
    // directory entry (or, for a copy, its data) not yet on disk.
    sync_dir(&placed.path).map_err(fail)?;
    fs::remove_file(src).map_err(fail)
}

/// The content to publish at the final name.
enum Staged<'a> {
    /// The source itself (a move within one file system).
    Source(&'a SourceFile<'a>),
    /// A complete copy, not yet named.
    Copy(Unnamed),
    /// A received instance, complete, not yet named.
    Received(&'a mut Unnamed),
}

impl Staged<'_> {
    fn file(&self) -> &File {
        match self {
            Staged::Source(src) => &src.file,
            Staged::Copy(copy) => copy.file(),
            Staged::Received(file) => file.file(),
        }
    }

    /// Links the content to `target`; fails if something is there.
    fn link(&self, target: &Path) -> io::Result<()> {
        match self {
            Staged::Source(src) => fs::hard_link(src.path, target),
            Staged::Copy(copy) => copy.link(target),
            Staged::Received(file) => file.link(target),
        }
    }

    /// Puts the content at `target`, replacing what is there.
    fn replace(&mut self, dir: &Path, target: &Path) -> io::Result<()> {
        match self {
            Staged::Source(src) => {
                replace_through(dir, target, |temp| fs::hard_link(src.path, temp))
            }
            Staged::Copy(copy) => copy.replace(target),
            Staged::Received(file) => file.replace(target),
        }
    }

    fn placed(
        &self,
        path: &Path,
        outcome: Outcome,
        in_place: bool,
        mode: Mode,
    ) -> io::Result<Placed> {
        let source_linked = matches!(self, Staged::Source(_)) && mode == Mode::Move && !in_place;
        Ok(Placed {
            path: path.to_path_buf(),
            metadata: self.file().metadata()?,
            in_place,
            source_linked,
            outcome,
        })
    }
}

/// Why a copy failed: the directory could not take a new file, or the
/// bytes could not be copied into it.
pub enum CopyError {
    Create(io::Error),
    Contents(io::Error),
}

impl CopyError {
    fn into_error(self, dst: &Destination) -> PlaceError {
        let datadir = dst.datadir.to_path_buf();
        match self {
            CopyError::Create(source) => PlaceError::DataDir { datadir, source },
            CopyError::Contents(source) => PlaceError::Copy { datadir, source },
        }
    }
}

impl From<CopyError> for io::Error {
    fn from(error: CopyError) -> io::Error {
        match error {
            CopyError::Create(e) | CopyError::Contents(e) => e,
        }
    }
}

/// Copies `file`, which has `metadata`, into an unnamed file in `dir`
/// (made if missing), with its permissions. A copy whose original will be
/// deleted is made `durable`.
pub fn copy(
    file: &File,
    metadata: &Metadata,
    dir: &Path,
    durable: bool,
) -> Result<Unnamed, CopyError> {
    let permissions = metadata.permissions().mode() & 0o7777;
    let copy =
        creating_dir(dir, || Unnamed::create_in(dir, permissions)).map_err(CopyError::Create)?;
    copy_contents(file, metadata.len(), copy.file()).map_err(CopyError::Contents)?;
    if durable {
        copy.file().sync_all().map_err(CopyError::Contents)?;
    }
    Ok(copy)
}

/// Copies the `len` bytes of `input` into `output`, inside the kernel where
/// the file systems allow it. A source that shrinks meanwhile is an error,
/// never a short copy.
fn copy_contents(input: &File, len: u64, mut output: &File) -> io::Result<()> {
    let shrank = || {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while copying",
        )
    };
    let mut offset = 0;
    while offset < len {
        let rest = usize::try_from(len - offset).unwrap_or(usize::MAX);
        match rustix::fs::copy_file_range(input, Some(&mut offset), output, None, rest) {
            Ok(0) => return Err(shrank()),
            Ok(_) => {}
            // Not possible between these two files: through user memory.
            Err(_) if offset == 0 => {
                let mut input = input;
                input.seek(SeekFrom::Start(0))?;
                if io::copy(&mut input.take(len), &mut output)? < len {
                    return Err(shrank());
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether two paths name the same directory entry: the same name in the
/// same directory, however the paths are spelled.
fn same_entry(a: &Path, b: &Path) -> bool {
    let parent = |p: &Path| match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    a.file_name() == b.file_name() && same_inode(&parent(a), &parent(b))
}
