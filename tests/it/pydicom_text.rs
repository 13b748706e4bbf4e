//! Every keyword element's text, as pydicom 2.4.5 prints it, for files that
//! cover sequences, character sets, big endian and private tags: what the
//! study-series record holds (`"%s" % getattr(ds, keyword)`). pydicom's
//! text was written down once by `get_oracle.sh` (`examples-data/pydicom-text/`,
//! see `pydicom_text` there); each file is read here with our reader and
//! every element compared, all differences reported at once; and the
//! series record's text (`EveryElement`) is checked to be the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use dicom_core::Tag;
use dicom_core::header::Header as _;
use rx_repack::reading::keywords::keyword_of;
use rx_repack::reading::pytext::{DataSetEncoding, element_text_in};
use rx_repack::reading::read_whole_header;
use rx_repack::records::EveryElement;

use crate::common::examples_dir;

/// The first line of `pydicom-text/STAMP` these tests are written for;
/// `get_oracle.sh` writes it (its `pydicom_text_recipe` variable).
const RECIPE: &str = "pydicom-text recipe 3";

/// EXPECTED TO FAIL: the files our reader refuses today, with the reason.
/// A file that reads while listed here is reported (take it off the
/// list), and so is one that fails and is not listed. Those marked
/// "(issue 13)" are read by both dcmdump and pydicom: the reader is to
/// place them, and they then come off this list.
const EXPECTED_TO_FAIL: &[(&str, &str)] = &[
    (
        "test_files/dicomdirtests/TINY_ALPHA/README",
        "a text file, not DICOM (pydicom, even with force=True, reads no element from it)",
    ),
    (
        "test_files/no_meta.dcm",
        "no DICM marker and no data set at its start: pydicom refuses it (with force=True it \
         reads one bogus element), dcmdump too",
    ),
    (
        "test_files/MR_truncated.dcm",
        "cut short in its pixel data: dcmdump refuses it too (pydicom reads the header)",
    ),
    (
        "test_files/rtplan_truncated.dcm",
        "cut short in (300A,012C): dcmdump refuses it too (pydicom reads what is there)",
    ),
];

/// Elements whose text differs from pydicom's, with the reason: the text
/// of names in ISO 2022 character sets with code extensions. dicom-rs
/// decodes such a value with one character set, escape sequences and all
/// (`ESC $ ) C` before Korean, `ESC $ B` before JIS X 0208 under
/// `ISO 2022 IR 13`); pydicom switches character sets at each escape
/// sequence and drops them. The reader's decoding (reading/charset.rs),
/// not the printing, which shows what it is given.
const ISO_2022: &str = "ISO 2022 escape sequences left in the decoded text";
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    ("charset_files/chrH32.dcm", "PatientName", ISO_2022),
    ("charset_files/chrI2.dcm", "PatientName", ISO_2022),
    (
        "charset_files/chrKoreanMulti.dcm",
        "AdditionalPatientHistory",
        ISO_2022,
    ),
    (
        "charset_files/chrKoreanMulti.dcm",
        "OperatorsName",
        ISO_2022,
    ),
    (
        "charset_files/chrKoreanMulti.dcm",
        "OtherPatientNames",
        ISO_2022,
    ),
    ("charset_files/chrKoreanMulti.dcm", "PatientName", ISO_2022),
    (
        "charset_files/chrSQEncoding.dcm",
        "RequestedProcedureCodeSequence",
        ISO_2022,
    ),
    (
        "charset_files/chrSQEncoding1.dcm",
        "RequestedProcedureCodeSequence",
        ISO_2022,
    ),
];

/// Files whose series record differs from pydicom's only because the
/// reader's Header does not say yet whether a data set is implicit VR
/// (reading/mod.rs; records/fields.rs then assumes explicit): in implicit
/// VR, the VRs pydicom makes up print as `VR.LO`, `VR.UN` in a sequence.
/// The printing itself is checked with the file's real encoding.
const RECORD_ASSUMES_EXPLICIT_VR: &[&str] = &[];

#[test]
fn every_element_prints_as_pydicom_does() {
    let root = examples_dir().join("pydicom-text");
    let oracle = load(&root);
    let mut problems = Vec::new();
    let mut compared = (0, 0);
    let mut known_seen = Vec::new();
    for (name, entry) in &oracle {
        let path = root.join("files").join(name);
        let expected_failure = EXPECTED_TO_FAIL.iter().find(|(n, _)| n == name);
        let header = match (read_whole_header(&path), expected_failure) {
            (Ok(_), Some(_)) => {
                problems.push(format!(
                    "{name}: read, but listed in EXPECTED_TO_FAIL: take it off the list"
                ));
                continue;
            }
            (Err(_), Some(_)) => continue,
            (Err(e), None) => {
                problems.push(format!("{name}: our reader refuses it: {e}"));
                continue;
            }
            (Ok(header), None) => header,
        };
        let Some(expected) = entry["elements"].as_object() else {
            // pydicom read nothing from it (its verdict says why).
            problems.push(format!(
                "{name}: we read it, pydicom did not ({}): decide and list it",
                entry["why"]
            ));
            continue;
        };
        // The printing, told how the file is encoded, as the record would
        // be once the reader says it (see RECORD_ASSUMES_EXPLICIT_VR).
        let encoding = DataSetEncoding {
            big_endian: header.big_endian(),
            explicit_vr: !is_implicit_vr(&path),
        };
        let ours: BTreeMap<String, String> = header
            .dataset()
            .iter()
            .filter_map(|element| {
                let keyword = keyword_of(element.tag())?;
                let text = element_text_in(element, header.dataset(), encoding);
                Some((keyword.to_string(), text))
            })
            .collect();
        let record = serde_json::to_value(EveryElement(&header)).unwrap();
        let record: BTreeMap<String, String> = record
            .as_object()
            .unwrap()
            .iter()
            .map(|(keyword, v)| (keyword.clone(), v["value"].as_str().unwrap().to_string()))
            .collect();
        let assumed = RECORD_ASSUMES_EXPLICIT_VR.contains(&name.as_str());
        match (record == ours, assumed) {
            (true, true) => problems.push(format!(
                "{name}: listed in RECORD_ASSUMES_EXPLICIT_VR, but the record prints it right: \
                 take it off the list"
            )),
            (false, false) => problems.push(format!(
                "{name}: the series record prints it otherwise than pytext told its encoding"
            )),
            _ => {}
        }
        compared.0 += 1;
        let mut keywords: Vec<&String> = expected.keys().chain(ours.keys()).collect();
        keywords.sort();
        keywords.dedup();
        for keyword in keywords {
            compared.1 += 1;
            let theirs = expected.get(keyword.as_str()).map(|v| match v {
                Value::String(text) => text.clone(),
                other => format!("(pydicom fails: {other})"),
            });
            let problem = match (theirs, ours.get(keyword)) {
                (Some(theirs), Some(ours)) if &theirs == ours => continue,
                (Some(theirs), Some(ours)) => difference(&theirs, ours),
                (Some(_), None) => "pydicom has it, we do not".to_string(),
                (None, Some(_)) => "we have it, pydicom does not".to_string(),
                (None, None) => unreachable!(),
            };
            if KNOWN_DIFFERENCES
                .iter()
                .any(|(n, k, _)| n == name && k == keyword)
            {
                known_seen.push((name.clone(), keyword.clone()));
                continue;
            }
            problems.push(format!("{name}: {keyword}: {problem}"));
        }
    }
    for (name, keyword, _) in KNOWN_DIFFERENCES {
        if !known_seen.iter().any(|(n, k)| n == name && k == keyword) {
            problems.push(format!(
                "{name}: {keyword}: listed in KNOWN_DIFFERENCES but the same as pydicom's: \
                 take it off the list"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences from pydicom's text ({} files, {} elements compared):\n{}",
        problems.len(),
        compared.0,
        compared.1,
        problems.join("\n")
    );
}

/// Whether the file's meta group names Implicit VR Little Endian.
fn is_implicit_vr(path: &Path) -> bool {
    dicom_object::OpenFileOptions::new()
        .read_until(Tag(0x0008, 0x0000))
        .open_file(path)
        .is_ok_and(|file| {
            file.meta().transfer_syntax().trim_end_matches('\0') == "1.2.840.10008.1.2"
        })
}

/// pydicom's verdicts and texts by file name (relative to `files/`); fails,
/// saying how to make them, when missing or made by another recipe.
fn load(root: &Path) -> BTreeMap<String, Value> {
    let make = "run `./get_oracle.sh examples-data` (after `./get_examples.sh examples-data`)";
    let stamp = std::fs::read_to_string(root.join("STAMP")).unwrap_or_else(|e| {
        panic!(
            "pydicom's text (the oracle) is missing from {} ({e}): {make}",
            root.display()
        )
    });
    assert_eq!(
        stamp.lines().next(),
        Some(RECIPE),
        "{} was made by another recipe of get_oracle.sh: {make}",
        root.display()
    );
    let text = std::fs::read_to_string(root.join("text.json")).unwrap();
    let oracle: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<PathBuf> = oracle.keys().map(PathBuf::from).collect();
    assert!(
        names.len() > 100 && names.iter().all(|n| root.join("files").join(n).is_file()),
        "{} is incomplete: {make}",
        root.display()
    );
    oracle
}

/// Where two texts first differ, with a little of each from a few
/// characters before.
fn difference(theirs: &str, ours: &str) -> String {
    // The common prefix, in bytes (the same in both).
    let same: usize = theirs
        .chars()
        .zip(ours.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let from = theirs[..same]
        .char_indices()
        .rev()
        .nth(40)
        .map_or(0, |(i, _)| i);
    let excerpt = |s: &str| s[from..].chars().take(120).collect::<String>();
    format!(
        "differs at byte {same} ({} vs {} bytes):\n    pydicom: {:?}\n    ours:    {:?}",
        theirs.len(),
        ours.len(),
        excerpt(theirs),
        excerpt(ours)
    )
}
