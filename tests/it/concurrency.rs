//! storescp --fork runs many repacks at once on instances of the same
//! patient, study and series: no update may be lost, no reader may see
//! half a file.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use assert_cmd::assert::OutputAssertExt;

use crate::common::*;

const STUDIES: usize = 4;
const SERIES: usize = 3;
const PER_SERIES: usize = 25; // 4 x 3 x 25 = 300 instances
const AT_ONCE: usize = 16;
const ROUNDS: usize = 3;

/// Runs one process per file, `AT_ONCE` at a time.
fn repack_concurrently(files: &[PathBuf], datadir: &Path, logdir: &Path) {
    let mut running: Vec<Child> = Vec::new();
    for f in files {
        if running.len() == AT_ONCE {
            let child = running.remove(0);
            child.wait_with_output().unwrap().assert().success();
        }
        running.push(
            rx_process()
                .arg("--xcrdirfile")
                .arg(f)
                .arg("--datadir")
                .arg(datadir)
                .arg("--logdir")
                .arg(logdir)
                .arg("--cleanup")
                .spawn()
                .unwrap(),
        );
    }
    for child in running {
        child.wait_with_output().unwrap().assert().success();
    }
}

#[test]
fn concurrent_calls_lose_no_update() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = make_instances(&tmp.path().join("pristine"), STUDIES, SERIES, PER_SERIES);
    assert_eq!(pristine.len(), STUDIES * SERIES * PER_SERIES);
    for round in 0..ROUNDS {
        let base = tmp.path().join(format!("round{round}"));
        let incoming = base.join("incoming");
        copy_files(&pristine, &incoming);
        let mut files: Vec<PathBuf> = pristine
            .iter()
            .map(|p| incoming.join(p.file_name().unwrap()))
            .collect();
        // Interleave studies and series so that calls for each race.
        files.sort_by_key(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap()
                .to_string()
        });
        let (datadir, logdir) = (base.join("data"), base.join("log"));
        repack_concurrently(&files, &datadir, &logdir);

        assert_eq!(
            std::fs::read_dir(&incoming).unwrap().count(),
            0,
            "round {round}: sources left"
        );
        assert_eq!(
            tree(&datadir).len(),
            pristine.len(),
            "round {round}: instances placed"
        );
        let records = json_files(&logdir); // every file parses
        let images = image_records(&records);
        assert_eq!(images, pristine.len(), "round {round}: -img records");
        let (patient, studies) = patient_studies(&records);
        assert_eq!(
            studies, STUDIES,
            "round {round}: studies in StudyList: {patient}"
        );
        let study_series = records
            .iter()
            .filter(|(p, _)| p.to_string_lossy().contains("-series/"))
            .count();
        assert_eq!(
            study_series,
            STUDIES * SERIES,
            "round {round}: study series records"
        );
        // images + patient + study metas + (study-series, series meta, pack) per series
        assert_eq!(
            records.len(),
            pristine.len() + 1 + STUDIES + 3 * STUDIES * SERIES
        );
    }
}

/// The sharpest race: the first instances of many studies all at once,
/// each adding its study to the same patient record. The test holds the
/// patient lock itself while they start: every call must wait for it (a
/// call that did not take the lock would finish meanwhile, and could lose
/// another's update), and once it is released, every study is listed.
#[test]
fn simultaneous_new_studies_all_reach_study_list() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("incoming"), AT_ONCE, 1, 1);
    let logdir = tmp.path().join("log");
    let lock_path = logdir.join(".rx-repack/patientData.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let mut calls: Vec<Running> = files
        .iter()
        .map(|f| {
            Running::spawn(
                rx_process()
                    .arg("--xcrdirfile")
                    .arg(f)
                    .arg("--datadir")
                    .arg(tmp.path().join("data"))
                    .arg("--logdir")
                    .arg(&logdir),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for call in &mut calls {
        assert!(
            call.child.try_wait().unwrap().is_none(),
            "a call finished while the patient lock was held by another"
        );
    }
    assert!(
        !logdir.join("patientData").exists(),
        "the patient record was written while the lock was held by another"
    );
    drop(lock);
    for mut call in calls {
        call.finish(Duration::from_secs(60))
            .unwrap()
            .assert()
            .success();
    }
    let patient: serde_json::Value =
        serde_json::from_slice(&std::fs::read(logdir.join("patientData/1449c1d.json")).unwrap())
            .unwrap();
    let listed = patient["1449c1d"]["StudyList"].as_array().unwrap().len();
    assert_eq!(listed, AT_ONCE, "studies lost from StudyList: {patient}");
}
