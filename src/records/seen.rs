//! What this process has seen in the log dir. Records only grow: a study
//! once listed for a patient stays listed, a record once made stays. So a
//! batch looks for each just once, not once per file. (A damaged patient
//! file moved aside by another process is the exception; its studies are
//! listed again by the next run that adds them.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

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

/// Whether the record at `path` is known to exist, looking once.
pub fn exists(path: &Path) -> bool {
    if seen().files.contains(path) {
        return true;
    }
    let exists = path.exists();
    if exists {
        seen().files.insert(path.to_path_buf());
    }
    exists
}

/// Notes that the record at `path` now exists.
pub fn made(path: &Path) {
    seen().files.insert(path.to_path_buf());
}

/// Whether the patient file at `patient` is known to list `study_uid`.
pub fn listed(patient: &Path, study_uid: &str) -> bool {
    seen()
        .listed
        .contains(&(patient.to_path_buf(), study_uid.to_string()))
}

/// Notes that the patient file at `patient` lists `study_uid`.
pub fn list(patient: &Path, study_uid: &str) {
    seen()
        .listed
        .insert((patient.to_path_buf(), study_uid.to_string()));
}

/// Forgets what the patient file at `patient` lists (it was moved aside).
pub fn forget_patient(patient: &Path) {
    seen().listed.retain(|(file, _)| file != patient);
}
