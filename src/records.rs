//! pypx's log dir: the JSON records px-repack writes and pypx's other tools
//! (px-smdb, px-status, px-register, px-push) read.
//!
//! ```text
//! patientData/<PatientID>.json                       read-modify-write, locked
//! studyData/<StudyUID>-meta.json                     created once
//! studyData/<StudyUID>-series/<SeriesUID>-meta.json  created once
//! seriesData/<SeriesUID>-meta.json                   created once
//! seriesData/<SeriesUID>-img/<image file>.json       one per instance
//! seriesData/<SeriesUID>-pack.json                   created once
//! ```
//!
//! File names come from tag values; [`log_name`] keeps them inside the log
//! dir. Temporary files and the lock live in `.rx-repack/` of the log dir.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Datelike, Local, Timelike};
use dicom_core::Tag;
use dicom_core::header::Header as _;
use dicom_dictionary_std::tags;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::atomic_file::WorkDir;
use crate::header::{Header, ReadError};
use crate::keywords::keyword_of;
use crate::place::Placed;
use crate::pyjson;

/// pypx's value for an element the file lacks.
pub const NOT_DEFINED: &str = "Not defined";

/// Longest file name most file systems take (bytes).
const NAME_MAX: usize = 255;

const PATIENT_FIELDS: [(&str, Tag); 5] = [
    ("PatientID", tags::PATIENT_ID),
    ("PatientName", tags::PATIENT_NAME),
    ("PatientAge", tags::PATIENT_AGE),
    ("PatientSex", tags::PATIENT_SEX),
    ("PatientBirthDate", tags::PATIENT_BIRTH_DATE),
];

const STUDY_FIELDS: [(&str, Tag); 5] = [
    ("PatientID", tags::PATIENT_ID),
    ("StudyDescription", tags::STUDY_DESCRIPTION),
    ("StudyDate", tags::STUDY_DATE),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("PerformedStationAETitle", tags::PERFORMED_STATION_AE_TITLE),
];

const SERIES_FIELDS: [(&str, Tag); 7] = [
    ("PatientID", tags::PATIENT_ID),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    ("SeriesDescription", tags::SERIES_DESCRIPTION),
    ("SeriesNumber", tags::SERIES_NUMBER),
    ("SeriesDate", tags::SERIES_DATE),
    ("Modality", tags::MODALITY),
];

/// The elements the records of every instance need (the rest are read
/// only for the records written once per study or series).
pub fn tags_per_file() -> impl Iterator<Item = Tag> {
    PATIENT_FIELDS
        .iter()
        .chain(&SERIES_FIELDS)
        .map(|(_, tag)| *tag)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the record {path}: {source}")]
pub struct RecordError {
    path: PathBuf,
    source: io::Error,
}

trait Context<T> {
    fn at(self, path: &Path) -> Result<T, RecordError>;
}

impl<T> Context<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, RecordError> {
        self.map_err(|source| RecordError {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes the records of the instance `header`, now `placed`.
///
/// `header` needs the elements of [`tags_per_file`]; the records
/// written once per study or series need more, and get it from `whole`,
/// which reads the whole header (so most calls never do).
pub fn write_records(
    logdir: &Path,
    header: &Header,
    whole: &dyn Fn() -> Result<Header, ReadError>,
    placed: &Placed,
) -> Result<(), RecordError> {
    let work = WorkDir::new(logdir.join(".rx-repack"));
    let text = |tag| text_or_not_defined(header, tag);
    let patient_id = text(tags::PATIENT_ID);
    let study_uid = text(tags::STUDY_INSTANCE_UID);
    let series_uid = text(tags::SERIES_INSTANCE_UID);
    let study_dir = logdir.join("studyData");
    let series_dir = logdir.join("seriesData");

    let patient_file = logdir
        .join("patientData")
        .join(log_name(&patient_id, ".json"));
    add_study_to_patient(&work, &patient_file, &patient_id, &study_uid, || {
        Fields::of(header, &PATIENT_FIELDS).to_map()
    })?;

    // The records written once per study or series. The study-series
    // record is made last, so once it exists the others do too: one look
    // tells whether any of them needs writing.
    let study_series_meta = study_dir
        .join(log_name(&study_uid, "-series"))
        .join(log_name(&series_uid, "-meta.json"));
    if !seen_or_exists(&study_series_meta) {
        let complete = whole()
            .map_err(|e| io::Error::other(e.to_string()))
            .at(&study_series_meta)?;
        let study_meta = study_dir.join(log_name(&study_uid, "-meta.json"));
        create_once(
            &work,
            &study_meta,
            || json!({ &study_uid: Fields::of(&complete, &STUDY_FIELDS) }),
        )?;
        let series_meta = series_dir.join(log_name(&series_uid, "-meta.json"));
        create_once(
            &work,
            &series_meta,
            || json!({ &series_uid: Fields::of(header, &SERIES_FIELDS) }),
        )?;
        let pack = series_dir.join(log_name(&series_uid, "-pack.json"));
        create_once(&work, &pack, || json!({ "seriesPack": true }))?;
        create_once(&work, &study_series_meta, || {
            let series_base_dir = placed.path.parent().unwrap_or(Path::new(""));
            json!({ &study_uid: {
                "SeriesInstanceUID": &series_uid,
                "SeriesBaseDir": series_base_dir.display().to_string(),
                "DICOM": every_element(&complete),
            }})
        })?;
        seen().files.insert(study_series_meta);
    }

    let image_name = placed
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let image_record = series_dir
        .join(log_name(&series_uid, "-img"))
        .join(log_name(&image_name, ".json"));
    let record = ImageRecord {
        series: Fields::of(header, &SERIES_FIELDS),
        output_file: &image_name,
        image_obj: Single(&image_name, Stat::of(placed)),
    };
    let contents = pyjson::to_string(&Single(&series_uid, record));
    work.replace(&image_record, &contents).at(&image_record)
}

/// `{Name: text}` for the fields of `list`, in order ("Not defined" for
/// an element the instance lacks).
struct Fields<'a> {
    header: &'a Header,
    list: &'a [(&'static str, Tag)],
}

impl<'a> Fields<'a> {
    fn of(header: &'a Header, list: &'a [(&'static str, Tag)]) -> Self {
        Fields { header, list }
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.list
            .iter()
            .map(|(name, tag)| (*name, text_or_not_defined(self.header, *tag)))
    }

    fn to_map(&self) -> Map<String, Value> {
        self.entries()
            .map(|(name, text)| (name.to_string(), Value::String(text)))
            .collect()
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries())
    }
}

/// `{key: value}`.
struct Single<'a, T>(&'a str, T);

impl<T: Serialize> Serialize for Single<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// The record of one instance (written for every file, so serialised as
/// it is, without building a JSON tree first).
#[derive(Serialize)]
struct ImageRecord<'a> {
    #[serde(flatten)]
    series: Fields<'a>,
    #[serde(rename = "outputFile")]
    output_file: &'a str,
    #[serde(rename = "imageObj")]
    image_obj: Single<'a, Stat>,
}

/// The element's text, or pypx's word for an element the file lacks.
fn text_or_not_defined(header: &Header, tag: Tag) -> String {
    header.text(tag).unwrap_or_else(|| NOT_DEFINED.to_string())
}

/// Adds the study to the patient's StudyList. Nothing is written when it
/// is already there; otherwise the file is updated under the lock and
/// replaced in one step.
fn add_study_to_patient(
    work: &WorkDir,
    path: &Path,
    patient_id: &str,
    study_uid: &str,
    patient_fields: impl FnOnce() -> Map<String, Value>,
) -> Result<(), RecordError> {
    let listed = |records: &Map<String, Value>| {
        records
            .get(patient_id)
            .and_then(|p| p.get("StudyList"))
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|s| s == study_uid))
    };
    let fact = (path.to_path_buf(), study_uid.to_string());
    if seen().listed.contains(&fact) {
        return Ok(());
    }
    if read_records(path).is_ok_and(|records| listed(&records)) {
        seen().listed.insert(fact);
        return Ok(());
    }
    work.locked("patientData.lock", || {
        let mut records = match read_records(path) {
            Ok(records) => records,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            // Unreadable JSON (not ours: we never leave half a file) is kept
            // aside rather than overwritten.
            Err(_) => {
                keep_damaged(work, path)?;
                Map::new()
            }
        };
        if listed(&records) {
            return Ok(());
        }
        widen_race_window_for_tests();
        let patient = records.entry(patient_id.to_string()).or_insert_with(|| {
            let mut fields = patient_fields();
            fields.insert("StudyList".into(), Value::Array(Vec::new()));
            Value::Object(fields)
        });
        if let Some(list) = patient
            .as_object_mut()
            .and_then(|p| p.entry("StudyList").or_insert(json!([])).as_array_mut())
        {
            list.push(Value::String(study_uid.to_string()));
        }
        work.replace(path, &pyjson::to_string(&records))
    })
    .at(path)?;
    seen().listed.insert(fact);
    Ok(())
}

/// What this process has seen in the log dir. Records only grow: a study
/// once listed for a patient stays listed, a record once made stays. So
/// a batch looks for each just once, not once per file. (A damaged
/// patient file moved aside by another process is the exception; its
/// studies are listed again by the next run that adds them.)
#[derive(Default)]
struct Seen {
    /// (patient file, StudyInstanceUID) pairs.
    listed: HashSet<(PathBuf, String)>,
    files: HashSet<PathBuf>,
}

fn seen() -> MutexGuard<'static, Seen> {
    static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Mutex::default);
    SEEN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn seen_or_exists(path: &Path) -> bool {
    if seen().files.contains(path) {
        return true;
    }
    let exists = path.exists();
    if exists {
        seen().files.insert(path.to_path_buf());
    }
    exists
}

/// Tests set RX_REPACK_TEST_PATIENT_DELAY_MS to hold the read-modify-write
/// open long enough that, without the lock, concurrent updates would be
/// lost; this lets the concurrency test prove the lock works.
fn widen_race_window_for_tests() {
    if let Some(ms) = std::env::var_os("RX_REPACK_TEST_PATIENT_DELAY_MS")
        .and_then(|v| v.to_str().and_then(|v| v.parse().ok()))
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn read_records(path: &Path) -> io::Result<Map<String, Value>> {
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn keep_damaged(work: &WorkDir, path: &Path) -> io::Result<()> {
    seen().listed.retain(|(file, _)| file != path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stamp = Local::now().format("%Y%m%dT%H%M%S%.6f");
    fs::rename(path, work.path().join(format!("damaged-{stamp}-{name}")))
}

/// Creates a record that, once written, never changes; `contents` is only
/// computed when the file is absent.
fn create_once(
    work: &WorkDir,
    path: &Path,
    contents: impl FnOnce() -> Value,
) -> Result<(), RecordError> {
    if path.exists() {
        return Ok(());
    }
    work.create_once(path, &pyjson::to_string(&contents()))
        .map(drop)
        .at(path)
}

/// Every element of the instance that has a keyword, as
/// `{Keyword: {"value": text, "label": Keyword}}` sorted by keyword, as
/// pydicom's `dir()` lists them. Pixel data is never read.
fn every_element(header: &Header) -> Map<String, Value> {
    let mut elements: Vec<(&str, String)> = header
        .dataset()
        .iter()
        .filter_map(|element| {
            let tag = element.tag();
            let keyword = keyword_of(tag)?;
            Some((
                keyword,
                crate::pytext::element_text(element, header.big_endian()),
            ))
        })
        .collect();
    elements.sort_by(|a, b| a.0.cmp(b.0));
    elements
        .into_iter()
        .map(|(keyword, value)| {
            (
                keyword.to_string(),
                json!({ "value": value, "label": keyword }),
            )
        })
        .collect()
}

/// `os.stat` of the placed file as px-repack records it, with FSlocation.
#[derive(Serialize)]
struct Stat {
    atime: String,
    blksize: u64,
    blocks: u64,
    ctime: String,
    dev: u64,
    gid: u32,
    ino: u64,
    mode: u32,
    mtime: String,
    nlink: u64,
    rdev: u64,
    size: u64,
    uid: u32,
    #[serde(rename = "FSlocation")]
    fs_location: String,
}

impl Stat {
    /// The stat of the placed file as it will be once the call completes:
    /// a move made by linking the source counts the source's link, which
    /// goes only after the records are written.
    fn of(placed: &Placed) -> Stat {
        let m = &placed.metadata;
        Stat {
            atime: py_datetime(m.atime(), m.atime_nsec()),
            blksize: m.blksize(),
            blocks: m.blocks(),
            ctime: py_datetime(m.ctime(), m.ctime_nsec()),
            dev: m.dev(),
            gid: m.gid(),
            ino: m.ino(),
            mode: m.mode(),
            mtime: py_datetime(m.mtime(), m.mtime_nsec()),
            nlink: m.nlink() - u64::from(placed.source_linked),
            rdev: m.rdev(),
            size: m.size(),
            uid: m.uid(),
            fs_location: placed.path.display().to_string(),
        }
    }
}

/// `str(datetime.fromtimestamp(t))`: local time, microseconds only when
/// not zero.
fn py_datetime(seconds: i64, nanos: i64) -> String {
    let micros = (nanos + 500) / 1000;
    let (seconds, micros) = if micros >= 1_000_000 {
        (seconds + 1, micros - 1_000_000)
    } else {
        (seconds, micros)
    };
    let t = DateTime::from_timestamp(seconds, (micros * 1000) as u32)
        .unwrap_or_default()
        .with_timezone(&Local);
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text
}

/// The file name for a record about `value`: the value itself, as
/// px-repack names it, except that `/` becomes `%2F` and NUL `%00`, and a
/// name too long for the file system keeps its start plus a hash of the
/// whole value. `suffix` always stays, so `..` can only become `...json`.
pub fn log_name(value: &str, suffix: &str) -> String {
    let mut name = String::with_capacity(value.len() + suffix.len());
    for c in value.chars() {
        match c {
            '/' => name.push_str("%2F"),
            '\0' => name.push_str("%00"),
            c => name.push(c),
        }
    }
    if name.len() + suffix.len() > NAME_MAX {
        let hash = format!("~{:016x}", seahash::hash(value.as_bytes()));
        let mut keep = NAME_MAX - suffix.len() - hash.len();
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        name.truncate(keep);
        name.push_str(&hash);
    }
    name.push_str(suffix);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_stay_single_components() {
        assert_eq!(log_name("1449c1d", ".json"), "1449c1d.json");
        assert_eq!(log_name("..", ".json"), "...json");
        assert_eq!(log_name("../../x", ".json"), "..%2F..%2Fx.json");
        assert_eq!(log_name("a\0b", "-img"), "a%00b-img");
        let long = log_name(&"é".repeat(300), "-meta.json");
        assert!(long.len() <= NAME_MAX);
        assert!(long.ends_with("-meta.json"));
        assert_ne!(long, log_name(&"é".repeat(301), "-meta.json"));
    }

    #[test]
    fn datetimes_print_like_python() {
        // Compare in UTC-independent form: only the fractional part matters here.
        assert!(py_datetime(1_700_000_000, 0).ends_with(":20"));
        assert!(py_datetime(1_700_000_000, 123_456_789).ends_with(":20.123457"));
        assert!(py_datetime(1_700_000_000, 999_999_900).ends_with(":21"));
    }
}
