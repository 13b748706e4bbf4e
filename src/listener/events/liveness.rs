//! Whether an association that delivered instances of a series still
//! lives, whichever rx-listen serves it: each such association holds an
//! exclusive lock on a file of its own in the log dir's work dir. The
//! kernel releases the lock when the process dies (kill -9, a crash; after
//! a power loss no lock is held), so a dead replica never holds its series
//! open, and no clock or heartbeat is trusted for it.
//!
//! ```text
//! .rx-repack/associations/<association>.lock
//! ```

use std::fs::{self, File, TryLockError};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::records::work_dir::open_lock;

fn folder(logdir: &Path) -> PathBuf {
    crate::records::work_dir(logdir).join("associations")
}

/// The ids of the associations of this process: the host, the process,
/// when it started, and a count, so that replicas sharing a log dir (and
/// a restarted process) never reuse one.
pub struct AssociationIds {
    prefix: String,
    next: AtomicU64,
}

impl AssociationIds {
    pub fn new() -> AssociationIds {
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        let started = chrono::Utc::now().timestamp_micros();
        AssociationIds {
            prefix: format!("{host}-{}-{started:x}", std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    pub fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The lock an association holds while it lives; dropping it ends it.
pub struct Presence {
    path: PathBuf,
    _lock: File,
}

impl Presence {
    /// Takes the lock of `association` in `logdir`.
    pub fn claim(logdir: &Path, association: &str) -> io::Result<Presence> {
        let (dir, name) = (folder(logdir), format!("{association}.lock"));
        let lock = open_lock(&dir, &name)?;
        lock.lock()?;
        Ok(Presence {
            path: dir.join(name),
            _lock: lock,
        })
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        // Before the lock is released: no one can mistake the file's
        // absence for anything but the end.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether the association `association` of `logdir` still lives: its
/// lock is held. A lock file found free belonged to a process that died;
/// it is removed.
pub fn is_alive(logdir: &Path, association: &str) -> bool {
    let path = folder(logdir).join(format!("{association}.lock"));
    let file = match File::options().write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return false,
        // Cannot tell: it is not declared dead on a doubt.
        Err(_) => return true,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = fs::remove_file(&path);
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_association_lives_while_its_presence_is_held() {
        let tmp = tempfile::tempdir().unwrap();
        let ids = AssociationIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        let presence = Presence::claim(tmp.path(), &a).unwrap();
        assert!(is_alive(tmp.path(), &a));
        assert!(!is_alive(tmp.path(), &b));
        drop(presence);
        assert!(!is_alive(tmp.path(), &a));
    }

    #[test]
    fn a_lock_file_left_free_by_a_dead_process_is_dead() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = folder(tmp.path());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("gone-1.lock"), b"").unwrap();
        assert!(!is_alive(tmp.path(), "gone-1"));
        assert!(!dir.join("gone-1.lock").exists());
    }
}
