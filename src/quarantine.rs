//! `--quarantine DIR`: files that are not DICOM are moved aside, with the
//! reason in a sidecar text file, instead of staying where they arrived.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::Local;

/// Moves `src` into `dir` (never over another file) and writes
/// `<name>.reason.txt` beside it. Returns where the file went.
pub fn quarantine(src: &Path, dir: &Path, reason: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed".into());
    let dest = move_without_overwrite(src, dir, &name)?;
    let sidecar = PathBuf::from(format!("{}.reason.txt", dest.display()));
    let text = format!(
        "source: {}\nreason: {reason}\nwhen: {}\n",
        src.display(),
        Local::now().format("%Y-%m-%d %H:%M:%S%.3f %z")
    );
    fs::write(sidecar, text)?;
    Ok(dest)
}

/// Links `src` into `dir` under `name` (or `name.1`, `name.2`, ... when
/// taken), then removes the source. Across file systems: copies first.
fn move_without_overwrite(src: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let dest = match link_to_free_name(src, dir, name) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let staged = crate::unnamed::temp_name().tempfile_in(dir)?;
            fs::copy(src, staged.path())?;
            staged.as_file().sync_all()?;
            link_to_free_name(staged.path(), dir, name)?
        }
        other => other?,
    };
    fs::remove_file(src)?;
    Ok(dest)
}

fn link_to_free_name(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let mut n = 0;
    loop {
        let dest = match n {
            0 => dir.join(name),
            n => dir.join(format!("{name}.{n}")),
        };
        match fs::hard_link(from, &dest) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            other => return other.map(|()| dest),
        }
    }
}
