//! `--quarantine DIR`: files that are not DICOM are moved aside, with the
//! reason in a sidecar text file, instead of staying where they arrived.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::Local;

use super::{Mode, SourceFile, copy};

/// Moves `src` into `dir` (never over another file) and writes
/// `<name>.reason.txt` beside it. Returns where the file went.
pub fn quarantine(src: &Path, dir: &Path, reason: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed".into());
    let dest = match link_to_free_name(dir, &name, |to| fs::hard_link(src, to)) {
        // Across file systems: a durable copy, linked the same way.
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let file = File::open(src)?;
            let metadata = file.metadata()?;
            let source = SourceFile {
                path: src,
                file: &file,
                metadata: &metadata,
            };
            let staged = copy(&source, dir, Mode::Move)?;
            link_to_free_name(dir, &name, |to| staged.link(to))?
        }
        other => other?,
    };
    fs::remove_file(src)?;
    write_reason(&dest, &src.display().to_string(), reason)?;
    Ok(dest)
}

/// Keeps the contents of `file` (received, never named) in `dir` as `name`
/// (never over another file), with `<name>.reason.txt` beside it. Returns
/// where it went.
pub fn quarantine_file(file: &File, name: &str, dir: &Path, reason: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let metadata = file.metadata()?;
    let source = SourceFile {
        path: Path::new(name),
        file,
        metadata: &metadata,
    };
    // A copy, durable: the received file itself is unnamed and goes
    // when it is closed.
    let staged = copy(&source, dir, Mode::Move)?;
    let dest = link_to_free_name(dir, name, |to| staged.link(to))?;
    write_reason(&dest, name, reason)?;
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
