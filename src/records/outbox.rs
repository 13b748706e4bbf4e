//! The outbox: events written down before any sink sees them, and removed
//! only once their sink has taken them, so that neither a crash nor a sink
//! that is down loses one.
//!
//! ```text
//! .rx-repack/outbox/<sink>/<name>.json          waiting, in name order
//! .rx-repack/outbox/<sink>/failed/<name>.json   given up on, for an operator
//! .rx-repack/outbox/<sink>.lock                 held by the one delivering
//! ```
//!
//! Each sink has its own folder, so a sink that is down holds back only
//! its own events. Every write here is durable (events are few).

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use super::work_dir::{WorkDir, open_lock};
use crate::atomic_file::{creating_dir, sync_dir};
use crate::syncing::Owed;

/// The outbox of one log dir.
pub struct Outbox {
    logdir: PathBuf,
    dir: PathBuf,
}

impl Outbox {
    pub fn new(logdir: &Path) -> Outbox {
        Outbox {
            logdir: logdir.to_path_buf(),
            dir: super::work_dir(logdir).join("outbox"),
        }
    }

    fn folder(&self, sink: &str) -> PathBuf {
        self.dir.join(sink)
    }

    /// Where the events given up on for `sink` are kept.
    pub fn failed_folder(&self, sink: &str) -> PathBuf {
        self.folder(sink).join("failed")
    }

    /// Writes the event `bytes` as `name` for each of `sinks`, durably.
    /// An event already there under that name stays as it is.
    pub fn put(&self, sinks: &[&str], name: &str, bytes: &[u8]) -> io::Result<()> {
        let owed = Owed::default();
        let work = WorkDir::new(super::work_dir(&self.logdir), Some(&owed), None);
        for sink in sinks {
            let path = self.folder(sink).join(name);
            work.create_once(&path, &|w| w.write_all(bytes))?;
        }
        owed.pay()
    }

    /// The events waiting for `sink`, oldest first.
    pub fn waiting(&self, sink: &str) -> io::Result<Vec<PathBuf>> {
        let mut events = json_files(&self.folder(sink))?;
        events.sort();
        Ok(events)
    }

    /// How many events wait for `sink`, and how many were given up on.
    pub fn counts(&self, sink: &str) -> (usize, usize) {
        let count = |dir: &Path| json_files(dir).map_or(0, |files| files.len());
        (count(&self.folder(sink)), count(&self.failed_folder(sink)))
    }

    /// The event at `path` was taken by its sink.
    pub fn delivered(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)?;
        sync_dir(path)
    }

    /// The event at `path`, for `sink`, is given up on: it is kept in the
    /// failed folder. Returns where.
    pub fn give_up(&self, sink: &str, path: &Path) -> io::Result<PathBuf> {
        let failed = self.failed_folder(sink);
        let to = failed.join(path.file_name().unwrap_or_default());
        creating_dir(&failed, || fs::rename(path, &to))?;
        sync_dir(&to)?;
        sync_dir(path)?;
        Ok(to)
    }

    /// The right to deliver the events of `sink`, if no other process
    /// holds it: held until the file returned is closed (the kernel
    /// releases it when its holder dies).
    pub fn take_delivery(&self, sink: &str) -> io::Result<Option<File>> {
        let lock = open_lock(&self.dir, &format!("{sink}.lock"))?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(lock)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The `.json` files in `dir` (none if it does not exist).
fn json_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut files = Vec::new();
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
            Ok(files)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wait_in_order_until_delivered_or_given_up() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        outbox.put(&["exec", "ndjson"], "2-b.json", b"{}").unwrap();
        outbox.put(&["exec"], "1-a.json", b"{}").unwrap();
        let waiting = outbox.waiting("exec").unwrap();
        let names: Vec<_> = waiting.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["1-a.json", "2-b.json"]);
        assert_eq!(outbox.counts("ndjson"), (1, 0));
        outbox.delivered(&waiting[0]).unwrap();
        let kept = outbox.give_up("exec", &waiting[1]).unwrap();
        assert!(kept.exists());
        assert_eq!(outbox.counts("exec"), (0, 1));
    }

    #[test]
    fn one_process_delivers_a_sink_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        let held = outbox.take_delivery("exec").unwrap();
        assert!(held.is_some());
        assert!(outbox.take_delivery("exec").unwrap().is_none());
        drop(held);
        assert!(outbox.take_delivery("exec").unwrap().is_some());
    }
}
