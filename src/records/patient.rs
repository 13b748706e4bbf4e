//! `patientData/<PatientID>.json`, the one record that many instances
//! update: each new study is added to the patient's StudyList under an
//! exclusive lock, and the file replaced in one step.

use std::fs;
use std::io;
use std::path::Path;

use chrono::Local;
use serde_json::{Map, Value, json};

use super::pyjson;
use super::seen;
use super::work_dir::WorkDir;

/// The lock that orders the updates of every patient file, in the work dir.
pub const LOCK: &str = "patientData.lock";

/// Adds `study_uid` to the StudyList of `patient_id` in the patient file at
/// `path`, creating it with `patient_fields` if needed. Nothing is written
/// when the study is already listed.
pub fn add_study(
    work: &WorkDir,
    path: &Path,
    patient_id: &str,
    study_uid: &str,
    patient_fields: impl FnOnce() -> Map<String, Value>,
) -> io::Result<()> {
    let listed = |records: &Map<String, Value>| {
        records
            .get(patient_id)
            .and_then(|p| p.get("StudyList"))
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|s| s == study_uid))
    };
    if seen::listed(path, study_uid) {
        return Ok(());
    }
    if read_records(path).is_ok_and(|records| listed(&records)) {
        seen::list(path, study_uid);
        return Ok(());
    }
    work.locked(LOCK, || {
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
        work.replace(path, &|w| pyjson::to_writer(w, &records))
    })?;
    seen::list(path, study_uid);
    Ok(())
}

fn read_records(path: &Path) -> io::Result<Map<String, Value>> {
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn keep_damaged(work: &WorkDir, path: &Path) -> io::Result<()> {
    seen::forget_patient(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stamp = Local::now().format("%Y%m%dT%H%M%S%.6f");
    fs::rename(path, work.path().join(format!("damaged-{stamp}-{name}")))
}
