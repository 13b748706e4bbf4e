//! The data tree we make is the one px-repack 3.12.6 makes: same relative
//! paths, same bytes, for its templates and ours.

use std::path::Path;

use crate::common::*;

const RX_SERIES: &str = "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID";
const PX_DEFAULT_SERIES: &str = "%SeriesDescription-%_seahash|7_SeriesInstanceUID";
const PYPX_310_SERIES: &str = "%_pad|5,0_SeriesNumber-%SeriesDescription";

/// px-repack over the whole series in one process (its own batch mode:
/// the same code path as once per file, only faster to run).
fn px_repack_all(input: &Path, datadir: &Path, logdir: &Path, extra: &[&str]) {
    px_command(datadir, logdir, extra)
        .arg("--xcrdir")
        .arg(input)
        .args(["--parseAllFilesWithSubStr", ".dcm"])
        .assert()
        .success();
}

/// Runs both tools on the series with `series_template` (None: each tool's
/// default for px-repack, the given `rx_series` for us) and compares trees.
fn assert_same_tree(px_extra: &[&str], rx_extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let files = sag_anon_files();
    px_repack_all(
        &sag_anon(),
        &tmp.path().join("px-data"),
        &tmp.path().join("px-log"),
        px_extra,
    );
    rx_repack_each(&files, &tmp.path().join("rx-data"), None, rx_extra);
    let px = tree(&tmp.path().join("px-data"));
    let rx = tree(&tmp.path().join("rx-data"));
    assert_eq!(px.len(), 192, "px-repack placed {} files", px.len());
    let px_paths: Vec<_> = px.iter().map(|(p, _)| p).collect();
    let rx_paths: Vec<_> = rx.iter().map(|(p, _)| p).collect();
    assert_eq!(rx_paths, px_paths, "relative paths differ");
    assert!(px == rx, "same paths, but some bytes differ");
}

#[test]
fn default_layout_matches_px_repack_with_rx_series_template() {
    assert_same_tree(&["--seriesDirTemplate", RX_SERIES], &[]);
}

#[test]
fn px_repack_default_templates_match() {
    assert_same_tree(&[], &["--seriesDirTemplate", PX_DEFAULT_SERIES]);
}

#[test]
fn pypx_310_series_template_matches() {
    assert_same_tree(
        &["--seriesDirTemplate", PYPX_310_SERIES],
        &["--seriesDirTemplate", PYPX_310_SERIES],
    );
}

#[test]
fn cleanup_moves_every_file_into_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let incoming = tmp.path().join("incoming");
    copy_files(&sag_anon_files(), &incoming);
    let originals = tree(&incoming);
    let moved: Vec<_> = std::fs::read_dir(&incoming)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rx_repack_each(&moved, &tmp.path().join("data"), None, &["--cleanup"]);
    assert_eq!(
        std::fs::read_dir(&incoming).unwrap().count(),
        0,
        "--cleanup left sources behind"
    );
    let placed = tree(&tmp.path().join("data"));
    let mut placed_bytes: Vec<_> = placed.into_iter().map(|(_, b)| b).collect();
    let mut original_bytes: Vec<_> = originals.into_iter().map(|(_, b)| b).collect();
    placed_bytes.sort();
    original_bytes.sort();
    assert!(
        placed_bytes == original_bytes,
        "moved files differ from the sources"
    );
}
