//! `--quarantine DIR`: files that are not DICOM are moved aside, with the
//! reason in a sidecar text file, instead of staying where they arrived.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::Local;

use super::{Origin, SourceFile, copy};

/// Keeps the instance of `origin` in `dir` (never over another file), with
/// `<name>.reason.txt` beside it: a file at a path is moved there, a
/// received instance copied (it is unnamed, and goes when it is closed).
/// Returns where it went.
pub fn quarantine(origin: &Origin, dir: &Path, reason: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    match origin {
        Origin::File { src, .. } => move_file(src, dir, reason),
        Origin::Received { file, name, .. } => {
            let file = file.file();
            let staged = copy(file, &file.metadata()?, dir, true)?;
            let dest = link_to_free_name(dir, name, |to| staged.link(to))?;
            write_reason(&dest, name, reason)?;
            Ok(dest)
        }
    }
}

/// Moves `src` into `dir` under its own name.
fn move_file(src: &SourceFile, dir: &Path, reason: &str) -> io::Result<PathBuf> {
    let name = src
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed".into());
    let dest = match link_to_free_name(dir, &name, |to| fs::hard_link(src.path, to)) {
        // Across file systems: a durable copy, linked the same way.
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let staged = copy(&src.file, &src.metadata, dir, true)?;
            link_to_free_name(dir, &name, |to| staged.link(to))?
        }
        other => other?,
    };
    fs::remove_file(src.path)?;
    write_reason(&dest, &src.path.display().to_string(), reason)?;
    Ok(dest)
}

fn write_reason(dest: &Path, source: &str, reason: &str) -> io::Result<()> {
    let sidecar = PathBuf::from(format!("{}.reason.txt", dest.display()));
    let text = format!(
        "source: {source}\nreason: {reason}\nwhen: {}\n",
        Local::now().format("%Y-%m-%d %H:%M:%S%.3f %z")
    );
    fs::write(sidecar, text)
}

/// Links a file into `dir` under `name` (or `name.1`, `name.2`, ... when
/// taken) with `link`; returns the name it got.
fn link_to_free_name(
    dir: &Path,
    name: &str,
    link: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut n = 0;
    loop {
        let dest = match n {
            0 => dir.join(name),
            n => dir.join(format!("{name}.{n}")),
        };
        match link(&dest) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            other => return other.map(|()| dest),
        }
    }
}
