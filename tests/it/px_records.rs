//! The log dir we write is px-repack's, file by file: same relative paths
//! and, once the values that must differ are normalised (stat times and
//! ids, the data dir prefix), the same JSON, down to key order and layout.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// os.stat fields that differ between any two copies of a file.
const VOLATILE: [&str; 11] = [
    "atime", "ctime", "mtime", "ino", "dev", "blocks", "blksize", "uid", "gid", "nlink", "rdev",
];

/// Drops volatile stat fields, puts DATA for the data dir, and drops the
/// text of sequence (SQ) values, which may differ in form.
fn normalise(value: &Value, datadir: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| {
                    let sequence = k.ends_with("Sequence") && v.get("label").is_some();
                    let v = if sequence {
                        serde_json::json!({"label": v["label"]})
                    } else {
                        normalise(v, datadir)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, datadir)).collect()),
        Value::String(s) => Value::String(s.replace(datadir, "DATA")),
        other => other.clone(),
    }
}

/// Python's json.dump(indent=4) layout of a parsed record, to compare
/// key order and formatting too.
fn layout(value: &Value, datadir: &Path) -> String {
    rx_repack::pyjson::to_string(&normalise(value, &datadir.display().to_string()))
}

#[test]
fn log_dir_matches_px_repack_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sag_anon_files();
    let (px_data, px_log) = (tmp.path().join("px-data"), tmp.path().join("px-log"));
    let (rx_data, rx_log) = (tmp.path().join("rx-data"), tmp.path().join("rx-log"));
    // Same order for both, once per file as storescp runs them: the series
    // record of the study keeps the first instance's elements.
    px_repack_each(
        &files,
        &px_data,
        &px_log,
        &[
            "--seriesDirTemplate",
            "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID",
        ],
    );
    rx_repack_each(&files, &rx_data, Some(&rx_log), &[]);

    let px = json_files(&px_log);
    let rx = json_files(&rx_log);
    let px_paths: Vec<_> = px.iter().map(|(p, _)| p).collect();
    let rx_paths: Vec<_> = rx.iter().map(|(p, _)| p).collect();
    assert_eq!(rx_paths, px_paths, "the log dirs hold different files");
    // 192 image records, and patient, study, study-series, series meta, pack.
    assert_eq!(px.len(), 192 + 5);
    for ((path, px_json), (_, rx_json)) in px.iter().zip(&rx) {
        assert_eq!(
            layout(rx_json, &rx_data),
            layout(px_json, &px_data),
            "{} differs from px-repack's",
            path.display()
        );
    }
    // The image records point at files that exist.
    let image_records = rx
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("-img/"));
    for (path, record) in image_records {
        let series = record.as_object().unwrap().values().next().unwrap();
        let name = series["outputFile"].as_str().unwrap();
        let location = series["imageObj"][name]["FSlocation"].as_str().unwrap();
        assert!(
            Path::new(location).is_file(),
            "{}: {location} is not a file",
            path.display()
        );
    }
}
