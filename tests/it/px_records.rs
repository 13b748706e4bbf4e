//! The log dir we write is px-repack's, file by file, byte for byte: the
//! same relative paths; every record but the per-instance (`-img`) ones the
//! same bytes, once the data dir each tool wrote to is replaced by `DATA`;
//! the `-img` records the same fields in the same order, laid out the same,
//! with the same values but for the `os.stat` fields that differ between
//! two copies of a file (ours are checked against our file instead). The
//! study-series record too, sequences and all.
//!
//! px-repack's log dir is the oracle's `records` case (`get_oracle.sh`):
//! what px-repack writes when run once per file in name order, as we run
//! here.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;
use crate::oracle;

/// `os.stat` fields of an `-img` record that differ between two copies of
/// a file, or with where and by whom the copy was made: the times, the
/// inode, the device, the owner, the file system's block size and the
/// blocks it uses. Compared by form with px-repack's; ours must describe
/// our file. The other fields (size, mode, nlink, rdev, FSlocation) are
/// compared with px-repack's.
const TIMES: [&str; 3] = ["atime", "ctime", "mtime"];
const PLACE_AND_OWNER: [&str; 6] = ["ino", "dev", "uid", "gid", "blksize", "blocks"];

fn is_volatile(key: &str) -> bool {
    TIMES.contains(&key) || PLACE_AND_OWNER.contains(&key)
}

#[test]
fn log_dir_matches_px_repack_file_by_file() {
    let px = oracle::case("records");
    let tmp = tempfile::tempdir().unwrap();
    let (rx_data, rx_log) = (tmp.path().join("rx-data"), tmp.path().join("rx-log"));
    // Once per file in name order, as px-repack ran: the series record of
    // the study keeps the first instance's elements.
    rx_repack_each(&sag_anon_files(), &rx_data, Some(&rx_log), &[]);

    let px_records = records(&px.log());
    let rx_records = records(&rx_log);
    let px_paths: Vec<_> = px_records.iter().map(|(p, _)| p).collect();
    let rx_paths: Vec<_> = rx_records.iter().map(|(p, _)| p).collect();
    assert_eq!(rx_paths, px_paths, "the log dirs hold different files");
    // 192 image records, and patient, study, study-series, series meta, pack.
    assert_eq!(px_records.len(), 192 + 5);

    let mut problems = Vec::new();
    for ((path, px_bytes), (_, rx_bytes)) in px_records.iter().zip(&rx_records) {
        let px_text = with_data_dir(px_bytes, &px.datadir());
        let rx_text = with_data_dir(rx_bytes, &rx_data.display().to_string());
        let found = if is_image_record(path) {
            image_record_problems(&px_text, &rx_text, &rx_data)
        } else {
            first_difference(&px_text, &rx_text).into_iter().collect()
        };
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("{}: {p}", path.display())),
        );
    }
    assert!(
        problems.is_empty(),
        "{} differences from px-repack's records:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every file of a log dir (not our work dir `.rx-repack/`), as (relative
/// path, bytes), sorted.
fn records(logdir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree(logdir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".rx-repack"))
        .collect()
}

fn is_image_record(path: &Path) -> bool {
    path.parent()
        .is_some_and(|dir| dir.to_string_lossy().ends_with("-img"))
}

/// The record's text with the data dir, where a JSON string starts with it
/// (SeriesBaseDir, FSlocation), replaced by `DATA`.
fn with_data_dir(bytes: &[u8], datadir: &str) -> String {
    let text = std::str::from_utf8(bytes).expect("a record is UTF-8");
    text.replace(&format!("\"{datadir}/"), "\"DATA/")
}

/// Where two texts first differ, with a little of each around it.
fn first_difference(px: &str, rx: &str) -> Option<String> {
    let at = px.bytes().zip(rx.bytes()).position(|(a, b)| a != b);
    let at = match at {
        Some(at) => at,
        None if px.len() == rx.len() => return None,
        None => px.len().min(rx.len()),
    };
    let context = |text: &str| {
        let bytes = &text.as_bytes()[at.saturating_sub(60)..(at + 60).min(text.len())];
        String::from_utf8_lossy(bytes).into_owned()
    };
    Some(format!(
        "differs at byte {at} (line {}): px-repack has {:?}, we have {:?}",
        px.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1,
        context(px),
        context(rx)
    ))
}

/// What differs between px-repack's `-img` record and ours: field by
/// field, then the layout (the text with the volatile values blanked).
fn image_record_problems(px_text: &str, rx_text: &str, rx_data: &Path) -> Vec<String> {
    let parse = |text: &str, whose: &str| -> Result<Value, String> {
        serde_json::from_str(text).map_err(|e| format!("{whose} record does not parse: {e}"))
    };
    let (px, rx) = match (parse(px_text, "px-repack's"), parse(rx_text, "our")) {
        (Ok(px), Ok(rx)) => (px, rx),
        (px, rx) => return [px.err(), rx.err()].into_iter().flatten().collect(),
    };
    let mut problems = Vec::new();
    compare_fields("", &px, &rx, &mut problems);
    problems.extend(stat_problems(&rx, rx_data));
    if problems.is_empty() {
        problems.extend(first_difference(
            &blank_volatile(px_text),
            &blank_volatile(rx_text),
        ));
    }
    problems
}

/// Compares two parsed records field by field: the same keys in the same
/// order, equal values, the volatile stat fields only of the same form.
fn compare_fields(at: &str, px: &Value, rx: &Value, problems: &mut Vec<String>) {
    match (px, rx) {
        (Value::Object(px), Value::Object(rx)) => {
            let px_keys: Vec<&String> = px.keys().collect();
            let rx_keys: Vec<&String> = rx.keys().collect();
            if px_keys != rx_keys {
                problems.push(format!("{at}: keys {rx_keys:?}, px-repack's {px_keys:?}"));
                return;
            }
            for (key, px_value) in px {
                let here = format!("{at}/{key}");
                let rx_value = &rx[key];
                if is_volatile(key) {
                    if !(form_ok(key, px_value) && form_ok(key, rx_value)) {
                        problems.push(format!(
                            "{here}: {rx_value} (px-repack: {px_value}) is not an os.stat field's form"
                        ));
                    }
                } else {
                    compare_fields(&here, px_value, rx_value, problems);
                }
            }
        }
        _ if px == rx => {}
        _ => problems.push(format!("{at}: {rx}, px-repack's {px}")),
    }
}

/// Whether a volatile stat field has the form px-repack gives it: a time
/// as Python's `str(datetime)` (`2024-01-31 12:34:56.123456`, no fraction
/// when it is zero), the others as a non-negative integer.
fn form_ok(key: &str, value: &Value) -> bool {
    if !TIMES.contains(&key) {
        return value.is_u64();
    }
    let Some(text) = value.as_str() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let fraction_ok = fraction.is_none_or(|f| digits(f, 6));
    let parts: Vec<&str> = whole.split(['-', ' ', ':']).collect();
    let shape = whole.len() == 19
        && whole.as_bytes()[4] == b'-'
        && whole.as_bytes()[7] == b'-'
        && whole.as_bytes()[10] == b' '
        && whole.as_bytes()[13] == b':'
        && whole.as_bytes()[16] == b':';
    shape
        && fraction_ok
        && parts.len() == 6
        && digits(parts[0], 4)
        && parts[1..].iter().all(|p| digits(p, 2))
}

/// What is wrong with our record's stat fields: they must describe the
/// file at its FSlocation (`DATA/...`: in `rx_data`).
fn stat_problems(rx: &Value, rx_data: &Path) -> Vec<String> {
    let series = rx.as_object().and_then(|o| o.values().next());
    let Some(stat) = series
        .and_then(|s| s["imageObj"].as_object())
        .and_then(|o| o.values().next())
    else {
        return vec!["no imageObj in our record".into()];
    };
    let Some(location) = stat["FSlocation"]
        .as_str()
        .and_then(|l| l.strip_prefix("DATA/"))
    else {
        return vec![format!(
            "FSlocation {} is not in the data dir",
            stat["FSlocation"]
        )];
    };
    let location = rx_data.join(location);
    let meta = match std::fs::metadata(&location) {
        Ok(meta) if meta.is_file() => meta,
        other => return vec![format!("{} is not a file: {other:?}", location.display())],
    };
    let actual = [
        ("ino", meta.ino()),
        ("dev", meta.dev()),
        ("uid", u64::from(meta.uid())),
        ("gid", u64::from(meta.gid())),
        ("blksize", meta.blksize()),
        ("blocks", meta.blocks()),
        ("size", meta.size()),
        ("mode", u64::from(meta.mode())),
        ("nlink", meta.nlink()),
        ("rdev", meta.rdev()),
    ];
    actual
        .into_iter()
        .filter(|(field, value)| stat[*field] != *value)
        .map(|(field, value)| format!("{field} is {}, our file's is {value}", stat[field]))
        .collect()
}

/// The text with the value of every volatile stat field (one a line, as
/// `json.dump(indent=4)` lays them out) replaced by `V`.
fn blank_volatile(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let volatile = trimmed
                .strip_prefix('"')
                .and_then(|rest| rest.split_once("\": "))
                .filter(|(key, _)| is_volatile(key));
            match volatile {
                Some((key, value)) => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let comma = if value.ends_with(',') { "," } else { "" };
                    format!("{indent}\"{key}\": V{comma}")
                }
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}
