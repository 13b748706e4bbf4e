//! rx-listen in oxidicom's place in ChRIS: its tree under CUBE's storage
//! root, its refusals, with real senders on loopback.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::listener::{Listener, send, storescu};

/// The calling AE title of oxidicom's own integration test (its
/// `tests/expected_files.txt` lists the paths it files SAG-anon at).
const PACS: &str = "OXITESTORTHANC";

/// oxidicom's series dir of SAG-anon sent by [`PACS`] (from its
/// `tests/expected_files.txt`).
const SAG_ANON_SERIES: &str = "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06";

/// An element's value as DCMTK's dcmdump reads it.
fn dcmdump_value(path: &Path, keyword: &str) -> String {
    let out = Command::new("dcmdump")
        .args(["-q", "+P", keyword])
        .arg(path)
        .output()
        .expect("dcmdump (Debian: dcmtk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('[').expect("a value in brackets") + 1;
    let end = text[start..].find(']').unwrap() + start;
    text[start..end].to_string()
}

/// The files under `root`, relative to it.
fn relative_files(root: &Path) -> BTreeSet<PathBuf> {
    files_under(root)
        .into_iter()
        .map(|path| path.strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

#[test]
fn the_chris_layout_files_each_instance_at_oxidicoms_path() {
    let mut listener = Listener::start(&["--layout", "chris"]);
    send(storescu(listener.port, &sag_anon(), &["-aet", PACS]));
    listener.stop();
    let expected: BTreeSet<PathBuf> = sag_anon_files()
        .iter()
        .map(|file| {
            let number: u32 = dcmdump_value(file, "InstanceNumber").parse().unwrap();
            let uid = dcmdump_value(file, "SOPInstanceUID");
            Path::new(SAG_ANON_SERIES).join(format!("{number:04}-{uid}.dcm"))
        })
        .collect();
    assert_eq!(expected.len(), 192);
    assert_eq!(relative_files(&listener.data()), expected);
}

#[test]
fn rx_repack_files_storescps_files_in_the_chris_layout_by_their_sender() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = &sag_anon_files()[0];
    rx().args(["--layout", "chris", "--datadir"])
        .arg(&data)
        .arg(file)
        .assert()
        .success();
    // storescp keeps the calling AE title in the file meta group.
    let sender = dcmdump_value(file, "SourceApplicationEntityTitle");
    let placed = relative_files(&data);
    let dir = format!("SERVICES/PACS/{sender}/1449c1d-anonymized-20090701/");
    assert!(
        placed.iter().all(|p| p.starts_with(&dir)),
        "{placed:?} not under {dir}"
    );
}

#[test]
fn an_instance_the_chris_layout_cannot_take_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut listener = Listener::start(&["--layout", "chris"]);
    for (case, edit) in [
        ("no-date", "-ea StudyDate"),
        ("bad-date", "-m StudyDate=2024"),
        ("no-patient", "-ea PatientID"),
    ] {
        let dir = tmp.path().join(case);
        copy_files(&sag_anon_files()[..1], &dir);
        let file = files_under(&dir).remove(0);
        let status = Command::new("dcmodify")
            .arg("-nb")
            .args(edit.split(' '))
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        let out = storescu(listener.port, &file, &["-v", "-aet", PACS])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("Received Store Response (Error: CannotUnderstand)"),
            "{case}: storescu was not told of a failure: {said}"
        );
    }
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for why in [
        "lacks StudyDate",
        "StudyDate is \"2024\"",
        "lacks PatientID",
    ] {
        assert!(stderr.contains(why), "no line saying {why}: {stderr}");
    }
    assert_eq!(relative_files(&listener.data()), BTreeSet::new());
}
