//! Where each record of an instance lives in the log dir. File names come
//! from tag values, as px-repack names them, kept inside the log dir.

use std::path::{Path, PathBuf};

use crate::layout::names::fit_name;

/// The records of one instance, relative to the log dir.
pub struct RecordPaths {
    pub patient: PathBuf,
    pub study_meta: PathBuf,
    pub study_series_meta: PathBuf,
    pub series_meta: PathBuf,
    pub series_pack: PathBuf,
    pub image: PathBuf,
}

impl RecordPaths {
    /// The records of the instance of `patient_id`, `study_uid` and
    /// `series_uid` placed as `image_name`.
    pub fn new(patient_id: &str, study_uid: &str, series_uid: &str, image_name: &str) -> Self {
        let study_dir = Path::new("studyData");
        let series_dir = Path::new("seriesData");
        RecordPaths {
            patient: Path::new("patientData").join(log_name(patient_id, ".json")),
            study_meta: study_dir.join(log_name(study_uid, "-meta.json")),
            study_series_meta: study_series_meta(study_uid, series_uid),
            series_meta: series_dir.join(log_name(series_uid, "-meta.json")),
            series_pack: series_dir.join(log_name(series_uid, "-pack.json")),
            image: series_dir
                .join(log_name(series_uid, "-img"))
                .join(log_name(image_name, ".json")),
        }
    }
}

/// The study-series record, written last of the records once per series.
pub fn study_series_meta(study_uid: &str, series_uid: &str) -> PathBuf {
    Path::new("studyData")
        .join(log_name(study_uid, "-series"))
        .join(log_name(series_uid, "-meta.json"))
}

/// The file name for a record about `value`: the value itself, as
/// px-repack names it, except that `/` becomes `%2F` and NUL `%00`, and a
/// name too long for the file system keeps its start plus a hash of the
/// whole value. `suffix` always stays, so `..` can only become `...json`.
pub fn log_name(value: &str, suffix: &str) -> String {
    let mut name = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '/' => name.push_str("%2F"),
            '\0' => name.push_str("%00"),
            c => name.push(c),
        }
    }
    fit_name(&name, suffix, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::names::NAME_MAX;

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
}
