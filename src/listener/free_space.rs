//! The free-space floor (`--min-free`): below it, in the data dir or the
//! log dir, a C-STORE is answered 0xA700 before its data set is written
//! (the data set is still read off the connection, and dropped), and the
//! association goes on. Storing resumes by itself once there is room.
//! Crossing the floor is told once each way, not once per instance.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much must stay free: bytes, or a share of the file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    Percent(f64),
}

impl FromStr for MinFree {
    type Err = String;

    /// `500MiB`, `2GB`, `1048576`, or `1%` (of the file system's size).
    fn from_str(text: &str) -> Result<MinFree, String> {
        let bad =
            || format!("{text:?} is not a size (like 500MiB or 2GB) or a percentage (like 1%)");
        if let Some(number) = text.strip_suffix('%') {
            return match number.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(MinFree::Percent(p)),
                _ => Err(bad()),
            };
        }
        text.parse::<bytesize::ByteSize>()
            .map(|size| MinFree::Bytes(size.as_u64()))
            .map_err(|_| bad())
    }
}

impl std::fmt::Display for MinFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinFree::Bytes(bytes) => write!(f, "{}", bytesize::ByteSize(*bytes).display().iec()),
            MinFree::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The floor, over the directories it guards (its clones share whether
/// it was crossed).
#[derive(Debug, Clone)]
pub struct FreeSpaceFloor {
    min: MinFree,
    dirs: Vec<PathBuf>,
    /// Whether the last check found a directory below the floor.
    below: Arc<AtomicBool>,
    program: &'static str,
}

/// What a file system has free, for whoever is not root.
struct Free {
    bytes: u64,
    total: u64,
    inodes: u64,
}

impl FreeSpaceFloor {
    /// The floor `min` over `dirs` (the data dir, the log dir); lines go
    /// out under `program`'s name.
    pub fn new(min: MinFree, dirs: Vec<PathBuf>, program: &'static str) -> FreeSpaceFloor {
        FreeSpaceFloor {
            min,
            dirs,
            below: Arc::new(AtomicBool::new(false)),
            program,
        }
    }

    /// Whether there is room to store an instance: `Err` says which
    /// directory is below the floor, and by how much. A file system that
    /// cannot be asked counts as room (writing then tells what is wrong).
    pub fn check(&self) -> Result<(), String> {
        // No floor: nothing to ask the file systems at each C-STORE.
        if matches!(self.min, MinFree::Bytes(0)) || self.min == MinFree::Percent(0.0) {
            return Ok(());
        }
        let short = self.dirs.iter().find_map(|dir| {
            let free = free_space(dir).ok()?;
            let needed = match self.min {
                MinFree::Bytes(bytes) => bytes,
                MinFree::Percent(p) => (free.total as f64 * p / 100.0) as u64,
            };
            (free.bytes < needed).then(|| {
                format!(
                    "{} has {} free, below --min-free {}",
                    dir.display(),
                    bytesize::ByteSize(free.bytes).display().iec(),
                    self.min
                )
            })
        });
        let was_below = self.below.swap(short.is_some(), Ordering::Relaxed);
        match (&short, was_below) {
            (Some(why), false) => eprintln!("{}: storing stopped: {why}", self.program),
            (None, true) => eprintln!(
                "{}: storing resumed: free space is above --min-free {} again",
                self.program, self.min
            ),
            _ => {}
        }
        short.map_or(Ok(()), Err)
    }

    /// The free bytes and inodes of each dir guarded, in order (the data
    /// dir, then the log dir), where they can be asked.
    pub fn space(&self) -> Vec<Option<(u64, u64)>> {
        self.dirs
            .iter()
            .map(|dir| free_space(dir).ok().map(|free| (free.bytes, free.inodes)))
            .collect()
    }

    /// Whether rx-listen can store now: every dir guarded writable (or,
    /// not made yet, the dir it will be made in) and above the floor.
    pub fn ready(&self) -> Result<(), String> {
        for dir in &self.dirs {
            rustix::fs::access(existing(dir), rustix::fs::Access::WRITE_OK)
                .map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
        }
        self.check()
    }
}

/// `dir`, or its nearest ancestor that exists (the data dir and the log
/// dir are made on demand).
fn existing(dir: &Path) -> &Path {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => return Path::new("."),
        }
    }
    at
}

/// The free space of the file system holding `dir` (or what it will be
/// made in).
fn free_space(dir: &Path) -> io::Result<Free> {
    let stat = rustix::fs::statvfs(existing(dir))?;
    Ok(Free {
        bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total: stat.f_blocks.saturating_mul(stat.f_frsize),
        inodes: stat.f_favail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages_are_read_and_nonsense_refused() {
        assert_eq!("1%".parse(), Ok(MinFree::Percent(1.0)));
        assert_eq!("0.5 %".parse(), Ok(MinFree::Percent(0.5)));
        assert_eq!("1GiB".parse(), Ok(MinFree::Bytes(1 << 30)));
        assert_eq!("500MB".parse(), Ok(MinFree::Bytes(500_000_000)));
        assert_eq!("0".parse(), Ok(MinFree::Bytes(0)));
        for bad in ["", "lots", "-1%", "101%", "1 furlong"] {
            let err = bad.parse::<MinFree>().unwrap_err();
            assert!(err.contains("is not a size"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_floor_above_the_disk_refuses_and_one_of_zero_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet");
        let all = FreeSpaceFloor::new(MinFree::Percent(100.0), vec![missing.clone()], "t");
        let why = all.check().unwrap_err();
        assert!(
            why.contains("not/yet has") && why.contains("below --min-free 100%"),
            "{why}"
        );
        let none = FreeSpaceFloor::new(MinFree::Bytes(0), vec![missing], "t");
        assert_eq!(none.check(), Ok(()));
    }
}
