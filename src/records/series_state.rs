//! The lifecycle of each series, for its completion events: which
//! associations delivered instances of it since it was last announced,
//! how they ended, when instances arrived, and the count last announced.
//!
//! It is kept in our work dir of the log dir, one JSON file a series,
//! updated under one lock, so that every rx-listen sharing the log dir
//! (replicas, a restarted process) sees and changes the same state:
//!
//! ```text
//! .rx-repack/series/open/<SeriesUID>.json   associations not yet announced
//! .rx-repack/series/done/<SeriesUID>.json   announced, nothing since
//! .rx-repack/series.lock
//! ```
//!
//! The `open/` folder is what is looked at for completion: its size is the
//! number of series in flight, not of every series ever received.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::on_record::image_records;
use super::paths::log_name;
use super::work_dir::WorkDir;
use crate::syncing::Owed;

/// The lock that orders every update of the series' states.
const LOCK: &str = "series.lock";

/// One series between two announcements.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesState {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub patient_id: String,
    /// The series dir, relative to the data dir.
    pub series_dir: String,
    /// The count of instances the last event announced (0: none yet).
    pub announced: u64,
    /// Unix times in milliseconds of the first and last instance known to
    /// have arrived since the last event.
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    /// The associations that delivered instances since the last event, in
    /// the order they came.
    pub deliveries: Vec<Delivery>,
}

/// An association that delivered instances of a series.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// Unique among every rx-listen sharing the log dir: it names the lock
    /// its association holds while it lives.
    pub association: String,
    pub calling_ae: String,
    pub called_ae: String,
    pub peer: String,
    /// How it ended, once it has.
    pub ended: Option<String>,
    /// When it ended (or was found dead), Unix time in milliseconds.
    pub ended_ms: Option<i64>,
}

impl SeriesState {
    /// Whether an association that delivered instances may still deliver.
    pub fn is_open(&self) -> bool {
        self.deliveries.iter().any(|d| d.ended.is_none())
    }

    /// The last moment anything happened to the series: an arrival, or an
    /// association's end.
    pub fn quiet_since_ms(&self) -> i64 {
        self.deliveries
            .iter()
            .filter_map(|d| d.ended_ms)
            .fold(self.last_arrival_ms, i64::max)
    }
}

/// The series' states of one log dir.
pub struct SeriesBook {
    logdir: PathBuf,
}

impl SeriesBook {
    /// The states in `logdir`.
    pub fn new(logdir: &Path) -> SeriesBook {
        SeriesBook {
            logdir: logdir.to_path_buf(),
        }
    }

    fn folder(&self, open: bool) -> PathBuf {
        let state = if open { "open" } else { "done" };
        super::work_dir(&self.logdir).join("series").join(state)
    }

    /// The name of the state file of the series `series_uid`.
    pub fn name_of(series_uid: &str) -> String {
        log_name(series_uid, ".json")
    }

    /// The names of the states of the series that are open (see
    /// [`SeriesBook::update`]), in no order.
    pub fn open_names(&self) -> io::Result<Vec<String>> {
        match fs::read_dir(self.folder(true)) {
            Ok(entries) => entries
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|name| name.as_ref().map_or(true, |n| n.ends_with(".json")))
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Runs `change` on the state named `name` (`None` if the series has
    /// none yet) under the lock, and keeps what it leaves: a state with
    /// deliveries is open, one without is done. With `durable`, the
    /// change is on disk before this returns.
    pub fn update<T>(
        &self,
        name: &str,
        durable: bool,
        change: impl FnOnce(&mut Option<SeriesState>) -> T,
    ) -> io::Result<T> {
        // The directories are synced once the lock is let go: no other
        // association waits for that fsync.
        let owed = Owed::default();
        let work = WorkDir::new(
            super::work_dir(&self.logdir),
            durable.then_some(&owed),
            None,
        );
        let answer = work.locked(LOCK, || {
            let (open, done) = (self.folder(true).join(name), self.folder(false).join(name));
            let (before, was_open) = match read(&open)? {
                Some(state) => (Some(state), true),
                None => (read(&done)?, false),
            };
            let mut state = before.clone();
            let answer = change(&mut state);
            if state == before {
                return Ok(answer);
            }
            if let Some(state) = &state {
                let now_open = !state.deliveries.is_empty();
                let (path, other) = if now_open {
                    (&open, &done)
                } else {
                    (&done, &open)
                };
                let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
                work.replace(path, &|w| w.write_all(&bytes))?;
                if now_open != was_open && remove(other)? {
                    work.named(other);
                }
            }
            Ok(answer)
        })?;
        owed.pay()?;
        Ok(answer)
    }

    /// The count of instances of the series `series_uid` on record: its
    /// image records (one per file name, so an instance sent again is not
    /// counted twice).
    pub fn instances_recorded(&self, series_uid: &str) -> io::Result<u64> {
        let dir = self
            .logdir
            .join("seriesData")
            .join(log_name(series_uid, "-img"));
        image_records(&dir).map(|(count, _, _)| count)
    }
}

fn read(path: &Path) -> io::Result<Option<SeriesState>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(ErrorKind::InvalidData, format!("{}: {e}", path.display()))
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `path` if it is there; returns whether it was.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(association: &str) -> Delivery {
        Delivery {
            association: association.into(),
            ..Delivery::default()
        }
    }

    #[test]
    fn a_state_with_deliveries_is_open_and_one_without_is_done() {
        let tmp = tempfile::tempdir().unwrap();
        let book = SeriesBook::new(tmp.path());
        let name = SeriesBook::name_of("1.2.3");
        book.update(&name, false, |state| {
            assert!(state.is_none());
            *state = Some(SeriesState {
                series_instance_uid: "1.2.3".into(),
                deliveries: vec![delivery("a")],
                ..SeriesState::default()
            });
        })
        .unwrap();
        assert_eq!(book.open_names().unwrap(), vec![name.clone()]);
        book.update(&name, false, |state| {
            let state = state.as_mut().unwrap();
            state.deliveries.clear();
            state.announced = 7;
        })
        .unwrap();
        assert!(book.open_names().unwrap().is_empty());
        let announced = book
            .update(&name, false, |state| state.as_ref().map(|s| s.announced))
            .unwrap();
        assert_eq!(announced, Some(7));
    }

    #[test]
    fn quiet_since_is_the_last_arrival_or_end() {
        let mut state = SeriesState {
            last_arrival_ms: 100,
            deliveries: vec![delivery("a"), delivery("b")],
            ..SeriesState::default()
        };
        assert!(state.is_open());
        state.deliveries[0].ended = Some("released".into());
        state.deliveries[0].ended_ms = Some(250);
        assert!(state.is_open());
        state.deliveries[1].ended = Some("released".into());
        state.deliveries[1].ended_ms = Some(90);
        assert!(!state.is_open());
        assert_eq!(state.quiet_since_ms(), 250);
    }
}
