//! The data tree we make is the one px-repack 3.12.6 makes: same relative
//! paths, same bytes, for its templates and ours. px-repack's trees are in
//! the oracle (`get_oracle.sh`), made in its batch mode: the same code path
//! as once per file, and the tree does not depend on the order.

use crate::common::*;
use crate::oracle;

const RX_SERIES: &str = "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID";
const PX_DEFAULT_SERIES: &str = "%SeriesDescription-%_seahash|7_SeriesInstanceUID";
const PYPX_310_SERIES: &str = "%_pad|5,0_SeriesNumber-%SeriesDescription";

/// Runs our binary once per file with `rx_extra` and compares its tree
/// with px-repack's in the oracle's case `px_case`.
fn assert_same_tree(px_case: &str, rx_extra: &[&str]) {
    let px = oracle::case(px_case);
    let tmp = tempfile::tempdir().unwrap();
    rx_repack_each(
        &sag_anon_files(),
        &tmp.path().join("rx-data"),
        None,
        rx_extra,
    );
    px.assert_same_tree(&tmp.path().join("rx-data"));
}

/// px-repack with `--seriesDirTemplate` [`RX_SERIES`].
#[test]
fn default_layout_matches_px_repack_with_rx_series_template() {
    assert_same_tree("records", &[]);
}

/// px-repack with its own defaults.
#[test]
fn px_repack_default_templates_match() {
    assert_same_tree("px-default", &["--seriesDirTemplate", PX_DEFAULT_SERIES]);
}

/// Both with `--seriesDirTemplate` [`PYPX_310_SERIES`].
#[test]
fn pypx_310_series_template_matches() {
    assert_same_tree("pypx-310", &["--seriesDirTemplate", PYPX_310_SERIES]);
}

/// The oracle's trees were made with the series templates named here.
#[test]
fn the_oracle_used_these_templates() {
    for (case, template) in [
        ("records", Some(RX_SERIES)),
        ("px-default", None),
        ("pypx-310", Some(PYPX_310_SERIES)),
    ] {
        let args = oracle::case(case).args();
        let given = args
            .iter()
            .position(|a| a == "--seriesDirTemplate")
            .map(|i| args[i + 1].as_str());
        assert_eq!(given, template, "{case}: {args:?}");
    }
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
