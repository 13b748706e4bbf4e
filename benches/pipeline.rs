//! Micro-benchmarks of the in-process per-file pipeline, stage by stage,
//! on a real instance of the example series (run `./get_examples.sh
//! examples-data` first): `cargo bench --bench pipeline`.

use std::path::{Path, PathBuf};

use rx_repack::filing::{Filing, Reporting};
use rx_repack::layout::{Layout, PYPX};
use rx_repack::pipeline::wanted_tags;
use rx_repack::placing::Mode;
use rx_repack::reading::{read_elements, read_whole_header};
use rx_repack::repacker::config::{PROGRAM, RepackConfig};
use rx_repack::repacker::repack_path;

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
    Layout::new(&PYPX, &[]).unwrap()
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
fn layout_locate(bencher: divan::Bencher) {
    let header = read_whole_header(&example()).unwrap();
    let layout = layout();
    bencher.bench(|| layout.locate(&|tag| header.text(tag)));
}

/// Read, lay out, place (copy) and record one instance, the series'
/// records already there: the steady state of a storescp run.
#[divan::bench]
fn repack_one_file(bencher: divan::Bencher) {
    let tmp = tempfile::tempdir().unwrap();
    let src = example();
    let config = RepackConfig {
        filing: Filing {
            datadir: camino::Utf8PathBuf::from_path_buf(tmp.path().join("data")).unwrap(),
            logdir: camino::Utf8PathBuf::from_path_buf(tmp.path().join("log")).ok(),
            layout: layout(),
            quarantine: None,
            reporting: Reporting {
                program: PROGRAM,
                verbosity: 0,
                ndjson: false,
            },
        },
        mode: Mode::Copy,
    };
    let first = repack_path(&src, &config).0.unwrap();
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
        .bench_values(|()| repack_path(&src, &config).0.unwrap());
}
