//! The series a log dir holds records of, read back from the records
//! themselves (whoever wrote them: rx-listen, rx-repack, px-repack), for
//! the events of series received before anyone announced them.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::Value;

use super::paths::{log_name, study_series_meta};

/// A series on record.
#[derive(Debug)]
pub struct SeriesOnRecord {
    pub patient_id: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// Its dir, as the study-series record gives it (absolute).
    pub series_dir: PathBuf,
    /// Its image records: how many, and the Unix times in milliseconds of
    /// the oldest and newest.
    pub instances: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Every series of `logdir` with a series record and at least one image
/// record, in the order of their UIDs; a record that cannot be read is
/// an error that names it.
pub fn series_on_record(logdir: &Path) -> io::Result<Vec<SeriesOnRecord>> {
    let series_data = logdir.join("seriesData");
    let entries = match fs::read_dir(&series_data) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_meta = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-meta.json"));
        if !is_meta {
            continue;
        }
        let series = single(&path)?;
        let field = |key: &str| {
            series
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (study_uid, series_uid) = (field("StudyInstanceUID"), field("SeriesInstanceUID"));
        let (instances, first_ms, last_ms) =
            image_records(&series_data.join(log_name(&series_uid, "-img")))?;
        if instances == 0 {
            continue;
        }
        let study_series = single(&logdir.join(study_series_meta(&study_uid, &series_uid)))?;
        found.push(SeriesOnRecord {
            patient_id: field("PatientID"),
            series_dir: PathBuf::from(
                study_series
                    .get("SeriesBaseDir")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            study_instance_uid: study_uid,
            series_instance_uid: series_uid,
            instances,
            first_ms,
            last_ms,
        });
    }
    found.sort_by(|a, b| a.series_instance_uid.cmp(&b.series_instance_uid));
    Ok(found)
}

/// The one value of a record `{"<UID>": {...}}`.
fn single(path: &Path) -> io::Result<Value> {
    let bad =
        |why: String| io::Error::new(ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    let bytes = fs::read(path).map_err(|e| bad(e.to_string()))?;
    let record: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    record
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .ok_or_else(|| bad("not a record of one UID".into()))
}

/// How many image records `dir` holds, and the times of the oldest and
/// newest.
pub(super) fn image_records(dir: &Path) -> io::Result<(u64, i64, i64)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((0, 0, 0)),
        Err(e) => return Err(e),
    };
    let (mut count, mut first, mut last) = (0, i64::MAX, i64::MIN);
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().ends_with(".json") {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        let ms = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        count += 1;
        first = first.min(ms);
        last = last.max(ms);
    }
    Ok((count, first.min(last), last.max(first)))
}
