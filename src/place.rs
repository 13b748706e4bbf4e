//! Putting a file at its place in the tree, atomically: it appears at its
//! final name complete or not at all, and the source is removed only once
//! the copy at the destination is complete (see [`finish_move`]).
//!
//! Steps: stage the file under a temporary name in the destination
//! directory (a hard link when moving within one file system, else a
//! copy), then publish it: `link` to the final name, which fails rather
//! than overwrite, so a different instance already there is never
//! clobbered; the same instance delivered again is replaced by `rename`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use tempfile::{Builder, TempPath};

/// Temporary files carry this prefix, so leftovers of a killed run are
/// recognisable.
pub const TEMP_PREFIX: &str = ".rx-repack-";
pub const TEMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Copy,
    Move,
}

/// What is at the destination once [`place`] returns.
#[derive(Debug)]
pub struct Placed {
    pub path: PathBuf,
    /// The source already was the destination: nothing to do, and the
    /// source must not be removed.
    pub in_place: bool,
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
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write into {path}: {source}")]
    Stage { path: PathBuf, source: io::Error },
    #[error("a directory is in the way at {0}")]
    DirectoryInTheWay(PathBuf),
    #[error("cannot publish {path}: {source}")]
    Publish { path: PathBuf, source: io::Error },
    #[error("placed at {path} but cannot remove the source: {source}")]
    RemoveSource { path: PathBuf, source: io::Error },
}

/// Places `src` at `dir/name`. `same_instance(existing)` says whether a
/// file already at a candidate name is the same instance (then it is
/// replaced); `alternative_name()` gives the name to use when it is not.
pub fn place(
    src: &Path,
    dir: &Path,
    name: &str,
    mode: Mode,
    same_instance: &dyn Fn(&Path) -> bool,
    alternative_name: &dyn Fn() -> String,
) -> Result<Placed, PlaceError> {
    fs::create_dir_all(dir).map_err(|source| PlaceError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let target = dir.join(name);
    if same_inode(src, &target) {
        // Already there: either the very same directory entry (repacking
        // the data dir itself: nothing to do, and the source must stay),
        // or a second link left by a move that was interrupted before it
        // removed the source (the move is completed as usual).
        return Ok(Placed {
            in_place: same_entry(src, &target),
            path: target,
            outcome: Outcome::Replaced,
        });
    }
    let staged = stage(src, dir, mode)?;
    let (path, outcome) = publish(staged, target, same_instance, alternative_name)?;
    Ok(Placed {
        path,
        in_place: false,
        outcome,
    })
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
    if let Some(dir) = placed.path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    }
    fs::remove_file(src).map_err(fail)
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

/// Puts the content of `src` under a temporary name in `dir`.
fn stage(src: &Path, dir: &Path, mode: Mode) -> Result<TempPath, PlaceError> {
    let fail = |source| PlaceError::Stage {
        path: dir.to_path_buf(),
        source,
    };
    let mut builder = Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    if mode == Mode::Move
        && let Ok(linked) = builder.make_in(dir, |path| fs::hard_link(src, path))
    {
        return Ok(linked.into_temp_path());
    }
    // Copy: across file systems, or in copy mode.
    let mut source = File::open(src).map_err(fail)?;
    let permissions = source.metadata().map_err(fail)?.permissions();
    let mut staged = builder.tempfile_in(dir).map_err(fail)?;
    io::copy(&mut source, staged.as_file_mut()).map_err(fail)?;
    staged
        .as_file()
        .set_permissions(permissions)
        .map_err(fail)?;
    if mode == Mode::Move {
        // The source will be deleted: the copy's data must be on disk first.
        staged.as_file().sync_all().map_err(fail)?;
    }
    Ok(staged.into_temp_path())
}

/// Gives the staged file its final name without ever overwriting a
/// different instance.
fn publish(
    staged: TempPath,
    target: PathBuf,
    same_instance: &dyn Fn(&Path) -> bool,
    alternative_name: &dyn Fn() -> String,
) -> Result<(PathBuf, Outcome), PlaceError> {
    let mut target = target;
    let mut outcome = Outcome::New;
    loop {
        let fail = |source| PlaceError::Publish {
            path: target.clone(),
            source,
        };
        match fs::hard_link(&staged, &target) {
            // The temporary name goes away when `staged` is dropped.
            Ok(()) => return Ok((target, outcome)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if target.is_dir() {
                    return Err(PlaceError::DirectoryInTheWay(target));
                }
                if same_instance(&target) {
                    staged.persist(&target).map_err(|e| fail(e.error))?;
                    return Ok((target, Outcome::Replaced));
                }
                if outcome == Outcome::Renamed {
                    // The alternative name is taken by yet another
                    // instance: something is badly wrong; refuse.
                    return Err(fail(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "name taken by a different instance",
                    )));
                }
                target = target.with_file_name(alternative_name());
                outcome = Outcome::Renamed;
            }
            // File systems without hard links: check, then rename. Only a
            // concurrent delivery of a different instance under the same
            // name could slip between the two.
            Err(e) if e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(1) => {
                if target.exists() && !same_instance(&target) && outcome != Outcome::Renamed {
                    target = target.with_file_name(alternative_name());
                    outcome = Outcome::Renamed;
                    continue;
                }
                staged.persist(&target).map_err(|e| fail(e.error))?;
                return Ok((target, outcome));
            }
            Err(e) => return Err(fail(e)),
        }
    }
}
