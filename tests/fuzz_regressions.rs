//! Replays the kept fuzz corpus (fuzz/corpus/header and
//! fuzz/corpus/template, see fuzz/README.md) through the fuzz targets'
//! own checks, so that CI keeps checking every input the fuzzer found
//! interesting: no panic, every name a usable path component.
//!
//! The ignored tests reproduce findings not yet fixed; each passes once
//! its finding is fixed (then drop the `#[ignore]`, and its part of
//! `checks::known_finding`).

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rx_repack::header::{WHOLE_HEADER, read_header};
use rx_repack::template::Template;

#[allow(dead_code)] // the fuzz targets use the rest
#[path = "../fuzz/checks.rs"]
mod checks;

/// The files of one corpus, sorted; fails clearly when it is missing.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    assert!(
        dir.is_dir(),
        "the fuzz corpus {} is missing: it is kept in the repository (see fuzz/README.md)",
        dir.display()
    );
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the fuzz corpus {} is empty",
        dir.display()
    );
    files
}

/// Runs `check` on every file, and fails listing every file that failed
/// (by panic) or took more than a few seconds.
fn replay(files: &[PathBuf], check: impl Fn(&Path)) {
    let mut failures = Vec::new();
    for path in files {
        let start = Instant::now();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(path))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {why}", path.display()));
        }
        let took = start.elapsed();
        if took > Duration::from_secs(5) {
            failures.push(format!("{}: took {took:?}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn header_corpus_reads_without_panic() {
    let files = corpus("header");
    let (known, checked): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|path| checks::known_finding(path, None).is_some());
    for path in &known {
        let why = checks::known_finding(path, None).unwrap_or_default();
        eprintln!("skipped (known finding {why}): {}", path.display());
    }
    assert!(!checked.is_empty(), "every header corpus file was skipped");
    replay(&checked, checks::check_header_file);
}

#[test]
fn template_corpus_renders_without_panic() {
    replay(&corpus("template"), |path| {
        let data = fs::read(path).expect("a corpus file reads");
        checks::check_template_input(&data);
    });
}

fn finding(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/findings")
        .join(name)
}

#[test]
#[ignore = "finding F3: read_header panics on a transfer syntax UID that is not ASCII"]
fn f3_a_transfer_syntax_that_is_not_ascii_is_refused() {
    let path = finding("f3-transfer-syntax-not-ascii.dcm");
    let result = catch_unwind(|| read_header(&path, WHOLE_HEADER).is_err());
    assert_eq!(
        result.ok(),
        Some(true),
        "read_header did not refuse it cleanly"
    );
}

#[test]
#[ignore = "finding F4: a duplicate element after the stop changes the whole header's value"]
fn f4_reading_less_reads_the_same_values() {
    let path = finding("f4-duplicate-after-stop.dcm");
    let uid = dicom_dictionary_std::tags::SOP_INSTANCE_UID;
    let part = read_header(&path, rx_repack::header::after(uid)).expect("reads");
    let whole = read_header(&path, WHOLE_HEADER).expect("reads");
    assert_eq!(part.text(uid), whole.text(uid));
}

#[test]
#[ignore = "finding F5: a huge pad width is built in memory (aborts on allocation failure)"]
fn f5_a_huge_pad_width_is_refused() {
    let text = fs::read_to_string(finding("f5-pad-width.txt")).expect("reads");
    assert!(
        Template::parse(&text).is_err(),
        "{text} parses: rendering it allocates ~100 GB"
    );
}
