//! Micro-benchmarks of the in-process per-file pipeline, stage by stage,
//! on a real instance of the example series (run `./get_examples.sh
//! examples-data` first): `cargo bench --bench pipeline`.

use std::path::{Path, PathBuf};

use rx_repack::config::Config;
use rx_repack::layout::{DEFAULT_IMAGE, DEFAULT_ROOT, DEFAULT_SERIES, DEFAULT_STUDY, Layout};
use rx_repack::pipeline::{self, wanted_tags};
use rx_repack::placing::Mode;
use rx_repack::reading::{read_elements, read_whole_header};

fn main() {
    divan::main();
}

fn example() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-data/SAG-anon");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run ./get_examples.sh examples-data",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files.swap_remove(0)
}

fn layout() -> Layout {
    Layout::new(DEFAULT_ROOT, DEFAULT_STUDY, DEFAULT_SERIES, DEFAULT_IMAGE).unwrap()
}

/// The header as far as a per-file call reads it.
#[divan::bench]
fn read_header_per_file(bencher: divan::Bencher) {
    let path = example();
    let wanted = wanted_tags(&layout());
    bencher.bench(|| read_elements(&path, &wanted).unwrap());
}

/// The whole header, as read once per series for its record.
#[divan::bench]
fn read_header_whole(bencher: divan::Bencher) {
    let path = example();
    bencher.bench(|| read_whole_header(&path).unwrap());
}

#[divan::bench]
fn layout_place(bencher: divan::Bencher) {
    let header = read_whole_header(&example()).unwrap();
    let layout = layout();
    bencher.bench(|| layout.place(&|tag| header.text(tag)));
}

/// Read, lay out, place (copy) and record one instance, the series'
/// records already there: the steady state of a storescp run.
#[divan::bench]
fn repack_one_file(bencher: divan::Bencher) {
    let tmp = tempfile::tempdir().unwrap();
    let src = example();
    let config = Config {
        datadir: camino::Utf8PathBuf::from_path_buf(tmp.path().join("data")).unwrap(),
        logdir: camino::Utf8PathBuf::from_path_buf(tmp.path().join("log")).ok(),
        layout: layout(),
        mode: Mode::Copy,
        verbosity: 0,
        ndjson: false,
        quarantine: None,
        durable: false,
    };
    let first = pipeline::repack(&src, &config).unwrap();
    let image_records = tmp.path().join("log/seriesData");
    // Each iteration places the instance anew (a re-delivery would measure
    // the replace path instead).
    bencher
        .with_inputs(|| {
            std::fs::remove_file(&first.dst).unwrap();
            for dir in std::fs::read_dir(&image_records).unwrap() {
                let dir = dir.unwrap().path();
                if dir.is_dir() {
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            }
        })
        .bench_values(|()| pipeline::repack(&src, &config).unwrap());
}
