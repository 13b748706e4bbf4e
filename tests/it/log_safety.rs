//! Hostile tag values never write outside --logdir and never fail a call
//! after the file was placed; a failing log dir never loses the source.

use std::path::Path;

use predicates::prelude::*;
use predicates::str::contains;

use crate::common::*;
use dicom_core::VR;
use dicom_dictionary_std::tags;

fn run(src: &Path, datadir: &Path, logdir: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    rx().arg("--xcrdirfile")
        .arg(src)
        .arg("--datadir")
        .arg(datadir)
        .arg("--logdir")
        .arg(logdir)
        .args(extra)
        .assert()
}

#[test]
fn hostile_ids_map_to_safe_names_inside_the_log_dir() {
    let tmp = tempfile::tempdir().unwrap();
    // Everything the tool may write goes under `sandbox/out`; anything
    // else appearing under `sandbox` is an escape.
    let sandbox = tmp.path().join("sandbox");
    let (datadir, logdir) = (sandbox.join("out/data"), sandbox.join("out/log"));
    let incoming = tmp.path().join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let example = &sag_anon_files()[0];
    let hostile = ["..", "../../x", "a/b", "x\0y", "/etc/passwd"];
    for (i, id) in hostile.iter().enumerate() {
        let src = incoming.join(format!("{i}.dcm"));
        let uid = format!("1.2/../../{i}");
        write_variant(
            example,
            &src,
            &[
                (tags::PATIENT_ID, VR::LO, id),
                (tags::STUDY_INSTANCE_UID, VR::UI, &uid),
                (tags::SERIES_INSTANCE_UID, VR::UI, &format!("../{uid}")),
            ],
        );
        run(&src, &datadir, &logdir, &["--cleanup"]).success();
        assert!(!src.exists(), "{id:?}: source not moved");
    }
    let escaped: Vec<_> = tree(&sandbox)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("out"))
        .collect();
    assert!(
        escaped.is_empty(),
        "written outside: {:?}",
        escaped.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let names: Vec<String> = std::fs::read_dir(logdir.join("patientData"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "...json",
        "..%2F..%2Fx.json",
        "a%2Fb.json",
        "x%00y.json",
        "%2Fetc%2Fpasswd.json",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} not in {names:?}"
        );
    }
    // The JSON keeps the real value.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(logdir.join("patientData/a%2Fb.json")).unwrap())
            .unwrap();
    assert!(record.get("a/b").is_some(), "{record}");
    assert_eq!(json_files(&logdir).len(), hostile.len() * 6);
}

#[test]
fn failing_log_dir_keeps_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.dcm");
    std::fs::copy(&sag_anon_files()[0], &src).unwrap();
    let before = std::fs::read(&src).unwrap();
    // A file where the log dir should be: every record write fails, even
    // for root, who ignores permission bits.
    let logdir = tmp.path().join("log");
    std::fs::write(&logdir, "not a directory").unwrap();
    // A failing log dir must fail the call, with one line naming the file
    // and the records.
    run(&src, &tmp.path().join("data"), &logdir, &["--cleanup"])
        .failure()
        .stderr(
            predicate::function(|stderr: &str| stderr.lines().count() == 1)
                .and(contains("in.dcm"))
                .and(contains("record")),
        );
    assert_eq!(
        std::fs::read(&src).unwrap(),
        before,
        "source changed or gone"
    );
}

#[test]
fn known_study_does_not_rewrite_patient_data() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sag_anon_files();
    let logdir = tmp.path().join("log");
    rx_repack_each(&files[..1], &tmp.path().join("data"), Some(&logdir), &[]);
    let patient = logdir.join("patientData/1449c1d.json");
    let first = std::fs::metadata(&patient).unwrap();
    rx_repack_each(&files[1..3], &tmp.path().join("data"), Some(&logdir), &[]);
    let later = std::fs::metadata(&patient).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (first.ino(), first.mtime_nsec()),
        (later.ino(), later.mtime_nsec()),
        "patientData was rewritten"
    );
}
