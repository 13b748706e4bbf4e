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
//! [`paths`] names the records (file names come from tag values and stay
//! inside the log dir); [`fields`] gives their values; [`patient`] updates
//! the shared patient record; [`image`] is the per-instance record;
//! [`pyjson`] writes JSON as Python does. Temporary files and the lock
//! live in `.rx-repack/` of the log dir ([`work_dir`]), and so does what
//! rx-listen keeps for its series events: each series' lifecycle
//! ([`series_state`]) and the events not yet delivered ([`outbox`]);
//! [`on_record`] reads back the series a log dir holds.

mod fields;
mod image;
pub mod on_record;
pub mod outbox;
pub mod paths;
mod patient;
pub mod pyjson;
mod seen;
pub mod series_state;
pub mod work_dir;

use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use serde::Serialize;
use serde_json::json;

use crate::atomic_file::Unnamed;
use crate::placing::Placed;
use crate::reading::Header;
use crate::syncing::Owed;
pub use fields::{EveryElement, NOT_DEFINED};
use fields::{Fields, PATIENT_FIELDS, SERIES_FIELDS, STUDY_FIELDS, Single, text_or_not_defined};
use image::{ImageRecord, Stat};
use paths::RecordPaths;
use work_dir::{Contents, WorkDir};

/// The elements the records of every instance need (the rest are read
/// only for the records written once per study or series).
pub fn tags_per_file() -> impl Iterator<Item = Tag> {
    PATIENT_FIELDS
        .iter()
        .chain(&SERIES_FIELDS)
        .map(|(_, tag)| *tag)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the record {} into the log dir {}: {source}", record.display(), logdir.display())]
pub struct RecordError {
    logdir: PathBuf,
    record: PathBuf,
    source: io::Error,
}

/// Whether the records written once per study and series are still to be
/// written for the instance `header` (whose elements are those of
/// [`tags_per_file`]). The study-series record is made last, so once it
/// exists the others do too: one look tells.
pub fn series_records_due(logdir: &Path, header: &Header) -> bool {
    let text = |tag| text_or_not_defined(header, tag);
    let record = paths::study_series_meta(
        &text(tags::STUDY_INSTANCE_UID),
        &text(tags::SERIES_INSTANCE_UID),
    );
    !seen::exists(&logdir.join(record))
}

/// Our work directory in `logdir` (see [`WorkDir`]).
pub fn work_dir(logdir: &Path) -> PathBuf {
    logdir.join(".rx-repack")
}

/// A file for a record, made ahead of need (see [`Unnamed::ahead`]), for
/// [`write_records`] to take.
pub fn record_file_ahead(logdir: &Path) -> io::Result<Unnamed> {
    Unnamed::ahead(&work_dir(logdir), 0)
}

/// The image record of an instance, written before the instance is
/// named, so that both are written back before either name is made (see
/// [`crate::syncing`]). It holds for the instance at `path` only.
pub struct StagedImage {
    file: Unnamed,
    path: PathBuf,
}

impl StagedImage {
    /// The record's file (its contents are written, not yet synced).
    pub fn file(&self) -> &File {
        self.file.file()
    }
}

/// Writes the image record of the instance `header`, whose file is as
/// `metadata` says and is not named yet, for when it is at `path`.
/// `ahead` (from [`record_file_ahead`]) is the record's file.
pub fn stage_image(
    logdir: &Path,
    header: &Header,
    path: &Path,
    metadata: &Metadata,
    ahead: Option<Unnamed>,
) -> Result<StagedImage, RecordError> {
    let work = WorkDir::new(work_dir(logdir), None, ahead);
    let stat = Stat::to_be(metadata, path);
    work.unnamed_with(&image_contents(header, &file_name_of(path), stat))
        .map(|file| StagedImage {
            file,
            path: path.to_path_buf(),
        })
        .map_err(|source| RecordError {
            logdir: logdir.to_path_buf(),
            record: work.path().to_path_buf(),
            source,
        })
}

/// What the records of one instance need to be durable before it is
/// acknowledged: the fsyncs they need are `owed`, and the image record,
/// where it was `staged` (its fsync owed already) for the name the
/// instance got, is that record.
pub struct Durable<'a> {
    pub owed: &'a Owed,
    pub staged: Option<StagedImage>,
}

/// Writes the records of the instance `header`, now `placed`.
///
/// `header` needs the elements of [`tags_per_file`]; the records written
/// once per study and series need every element, from `whole`, which is
/// given when [`series_records_due`] said so. With `durable`, each
/// record but the staged one is on disk before it is named, and the
/// fsyncs of the names made are owed. `ahead` (from [`record_file_ahead`]) is the
/// first record's file.
pub fn write_records(
    logdir: &Path,
    header: &Header,
    whole: Option<&Header>,
    placed: &Placed,
    durable: Option<Durable>,
    ahead: Option<Unnamed>,
) -> Result<(), RecordError> {
    let (owed, staged) = match durable {
        Some(Durable { owed, staged }) => (Some(owed), staged),
        None => (None, None),
    };
    let work = WorkDir::new(work_dir(logdir), owed, ahead);
    let text = |tag| text_or_not_defined(header, tag);
    let (study_uid, series_uid) = (
        text(tags::STUDY_INSTANCE_UID),
        text(tags::SERIES_INSTANCE_UID),
    );
    let patient_id = text(tags::PATIENT_ID);
    let image_name = file_name_of(&placed.path);
    let paths = RecordPaths::new(&patient_id, &study_uid, &series_uid, &image_name);
    let failed = |record: &Path| {
        let (logdir, record) = (logdir.to_path_buf(), record.to_path_buf());
        move |source| RecordError {
            logdir,
            record,
            source,
        }
    };

    patient::add_study(
        &work,
        &logdir.join(&paths.patient),
        &patient_id,
        &study_uid,
        || Fields::of(header, &PATIENT_FIELDS).to_map(),
    )
    .map_err(failed(&paths.patient))?;

    // The records written once per study or series, the study-series
    // record last.
    if let Some(complete) = whole {
        let create = |record: &Path, contents: &dyn Fn(&mut dyn Write) -> io::Result<()>| {
            create_once(&work, &logdir.join(record), contents).map_err(failed(record))
        };
        create(&paths.study_meta, &|w| {
            let study = Single(&study_uid, Fields::of(complete, &STUDY_FIELDS));
            pyjson::to_writer(w, &study)
        })?;
        create(&paths.series_meta, &|w| {
            let series = Single(&series_uid, Fields::of(header, &SERIES_FIELDS));
            pyjson::to_writer(w, &series)
        })?;
        create(&paths.series_pack, &|w| {
            pyjson::to_writer(w, &json!({ "seriesPack": true }))
        })?;
        // The study-series record says the others exist (see
        // series_records_due): their names are durable before it is made.
        if let Some(owed) = owed {
            owed.pay().map_err(failed(&paths.series_meta))?;
        }
        let series_base_dir = placed.path.parent().unwrap_or(Path::new(""));
        let study_series = StudySeries {
            series_instance_uid: &series_uid,
            series_base_dir: &series_base_dir.display().to_string(),
            dicom: EveryElement(complete),
        };
        create(&paths.study_series_meta, &|w| {
            pyjson::to_writer(w, &Single(&study_uid, &study_series))
        })?;
        seen::made(&logdir.join(&paths.study_series_meta));
    }

    let image = logdir.join(&paths.image);
    match staged.filter(|staged| staged.path == placed.path) {
        Some(staged) => work.replace_with(&image, staged.file),
        None => work.replace(
            &image,
            &image_contents(header, &image_name, Stat::placed(placed)),
        ),
    }
    .map_err(failed(&paths.image))
}

/// The image record of the instance `header` at `image_name`.
fn image_contents<'a>(
    header: &'a Header,
    image_name: &'a str,
    stat: Stat,
) -> impl Fn(&mut dyn Write) -> io::Result<()> + 'a {
    let series_uid = text_or_not_defined(header, tags::SERIES_INSTANCE_UID);
    let record = ImageRecord::new(header, image_name, stat);
    move |w| pyjson::to_writer(w, &Single(&series_uid, &record))
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The record of a series in its study: every element of its first
/// instance, streamed out as it is printed (it may be large).
#[derive(Serialize)]
struct StudySeries<'a> {
    #[serde(rename = "SeriesInstanceUID")]
    series_instance_uid: &'a str,
    #[serde(rename = "SeriesBaseDir")]
    series_base_dir: &'a str,
    #[serde(rename = "DICOM")]
    dicom: EveryElement<'a>,
}

/// Creates a record that, once written, never changes; `contents` is only
/// written when the file is absent.
fn create_once(work: &WorkDir, path: &Path, contents: Contents) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    work.create_once(path, contents).map(drop)
}
