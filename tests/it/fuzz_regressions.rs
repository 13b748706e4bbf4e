//! Replays the kept fuzz corpus (fuzz/corpus/header and
//! fuzz/corpus/template, see fuzz/README.md) through the fuzz targets'
//! own checks, so that CI keeps checking every input the fuzzer found
//! interesting: no panic, every name a usable path component.
//!
//! The `f*` tests replay the findings of fuzzing (fuzz/README.md, inputs
//! in fuzz/findings), all fixed.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use rx_repack::layout::template::Template;
use rx_repack::pipeline::wanted_tags;
use rx_repack::reading::{read_elements, read_whole_header};

#[allow(dead_code)] // each replay uses part of it
#[path = "../../fuzz/checks.rs"]
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
    replay(&corpus("header"), |path| {
        checks::check_header_file(path);
    });
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

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_memory() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line");
    kib * 1024
}

/// Reads a finding's file every way the pipeline does (the per-file
/// elements, the identity of a file found at the name, the whole header):
/// each read must refuse it (or read it) without panicking, and without
/// the process's peak memory passing 1 GiB.
fn refused_within_bounds(name: &str) {
    let path = finding(name);
    let per_file = wanted_tags(&checks::default_layout());
    let reads: [(&str, &dyn Fn() -> bool); 3] = [
        ("per-file elements", &|| {
            read_elements(&path, &per_file).is_ok()
        }),
        ("identity", &|| {
            read_elements(&path, &[tags::SOP_INSTANCE_UID]).is_ok()
        }),
        ("whole header", &|| read_whole_header(&path).is_ok()),
    ];
    for (read, run) in reads {
        let result = catch_unwind(AssertUnwindSafe(run));
        assert!(result.is_ok(), "{name} ({read}): the read panicked");
        assert!(
            peak_memory() < 1 << 30,
            "{name} ({read}): peak memory {} MiB",
            peak_memory() >> 20
        );
    }
}

/// The well-formed seeds must read, or the fuzzing starts from nothing.
#[test]
fn well_formed_seeds_read() {
    for path in corpus("header") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") || name.ends_with("-16k.dcm") || name == "seed-meta-only.dcm"
        {
            continue;
        }
        let header =
            read_whole_header(&path).unwrap_or_else(|e| panic!("{name} does not read: {e}"));
        assert!(
            header.instance_uid().is_some(),
            "{name} has no SOPInstanceUID"
        );
    }
}

/// F1: a deflated data set declaring a 4 GiB element (245 bytes).
#[test]
fn f1_a_deflated_length_past_the_end_is_refused() {
    refused_within_bounds("f1-deflated-length-4gib.dcm");
    assert!(read_whole_header(&finding("f1-deflated-length-4gib.dcm")).is_err());
}

/// F2: 2000 nested sequences overflowed a batch worker's 2 MiB stack.
#[test]
fn f2_deep_nesting_is_refused_on_a_small_stack() {
    let refused = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| read_whole_header(&finding("f2-nested-2000.dcm")).is_err())
        .expect("a thread")
        .join()
        .expect("no panic");
    assert!(refused, "2000 nested sequences were read");
}

/// F3: a transfer syntax UID with a byte that is not ASCII made
/// `read_header` panic. DCMTK and pydicom both read the file (its data set
/// is empty, and a garbled transfer syntax is told from the data set), so
/// it reads, with a note saying so.
#[test]
fn f3_a_transfer_syntax_that_is_not_ascii_reads_without_panic() {
    let path = finding("f3-transfer-syntax-not-ascii.dcm");
    let notes = catch_unwind(|| read_whole_header(&path).map(|h| h.notes().to_vec()))
        .expect("no panic")
        .expect("it reads");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("no (valid) transfer syntax")),
        "{notes:?}"
    );
}

/// F4: a second SOPInstanceUID after the elements a call reads (tags out
/// of order). The per-file read picks the wanted elements wherever they
/// are, so it sees the later value, as the whole read (and pydicom) does;
/// the check asserts that every element it read matches the whole read.
#[test]
fn f4_a_later_duplicate_is_seen_by_the_per_file_read() {
    let path = finding("f4-duplicate-after-stop.dcm");
    let whole = read_whole_header(&path).expect("the whole header reads");
    assert!(whole.instance_uid().is_some(), "no SOPInstanceUID");
    checks::check_header_file(&path);
}

/// F5: `%_pad|99999999999_...` aborted on allocation failure.
#[test]
fn f5_a_huge_pad_width_is_refused() {
    let text = fs::read_to_string(finding("f5-pad-width.txt")).expect("reads");
    assert!(
        Template::parse(&text).is_err(),
        "{text} parses: rendering it allocates ~100 GB"
    );
}

/// F6: a US value of 3 bytes puts dicom-rs one byte out of step with the
/// length check; it then reads a 4 GiB UT length the check never saw
/// (35 bytes, 3.9 GB of memory).
#[test]
fn f6_a_numeric_length_out_of_step_is_refused() {
    refused_within_bounds("f6-odd-length-desync.dcm");
}

/// F7: an item tag (FFFE,E000) among the top-level elements. The length
/// walk took it for an item and went on; dicom-rs ended the data set
/// there, so the per-file read saw a PatientName the whole read did not.
#[test]
fn f7_an_item_tag_outside_any_sequence_is_refused() {
    let path = finding("f7-item-tag-at-top-level.dcm");
    let error = read_whole_header(&path)
        .err()
        .expect("the whole read refuses it");
    assert!(
        error.to_string().contains("outside any sequence"),
        "unexpected error: {error}"
    );
    checks::check_header_file(&path);
}

/// F8: an item whose length runs 128 KiB past the end of its sequence
/// (and of the file). The walk went on inside the item; dicom-rs, out of
/// step, asked for 784 MiB for one value.
#[test]
fn f8_an_item_past_the_end_of_its_sequence_is_refused() {
    refused_within_bounds("f8-item-past-its-sequence.dcm");
    let path = finding("f8-item-past-its-sequence.dcm");
    let per_file = wanted_tags(&checks::default_layout());
    assert!(
        read_whole_header(&path).is_err(),
        "the whole read accepts it"
    );
    assert!(
        read_elements(&path, &per_file).is_err(),
        "the per-file read accepts it"
    );
}
