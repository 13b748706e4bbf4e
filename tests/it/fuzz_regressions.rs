//! Replays the kept fuzz corpus (fuzz/corpus/header, fuzz/corpus/template,
//! fuzz/corpus/structure and fuzz/corpus/association, see fuzz/README.md) through the fuzz targets'
//! own checks, so that CI keeps checking every input the fuzzer found
//! interesting: no panic, every name a usable path component, and issue
//! 13's rule (a file dcmdump and pydicom read is not refused).
//!
//! The `f*` tests replay the findings of the `header` target, all fixed;
//! the `s*` tests those of the `structure` target (fuzz/README.md, inputs
//! in fuzz/findings), each asserting what the rule asks of the file.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use rx_repack::layout::template::Template;
use rx_repack::pipeline::wanted_tags;
use rx_repack::reading::{HeaderError, read_elements, read_whole_header};

use crate::common::{files_under, rx};

#[allow(dead_code)] // each replay uses part of it
#[path = "../../fuzz/checks.rs"]
mod checks;
#[allow(dead_code)] // the fuzz target uses the rest
#[path = "../../fuzz/rule.rs"]
mod rule;
#[path = "../../fuzz/serve_harness.rs"]
mod serve_harness;
#[allow(dead_code)]
#[path = "../../fuzz/structure_gen.rs"]
mod structure_gen;

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
fn replay(files: &[PathBuf], mut check: impl FnMut(&Path)) {
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

/// Each input of the `association` corpus served as rx-listen serves a
/// connection: no panic, none longer than the target's limit. The valid
/// seed's instance is filed (so the replay reaches the filing code).
#[test]
fn association_corpus_is_served_without_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = serve_harness::Server::new(tmp.path());
    let files = corpus("association");
    let valid = files
        .iter()
        .find(|path| path.ends_with("seed-valid-echo-store-release"))
        .expect("the valid seed");
    server.serve(&fs::read(valid).unwrap());
    assert_eq!(
        files_under(&tmp.path().join("data")).len(),
        1,
        "the valid seed's instance is filed"
    );
    replay(&files, |path| {
        let took = server.serve(&fs::read(path).unwrap());
        assert!(took < serve_harness::LIMIT, "took {took:?}");
    });
}

/// The `structure` corpus: each input is decoded into a DICOM file, which
/// is read every way the pipeline reads it (no panic, the reads agree);
/// a file we refuse must not be one that both dcmdump and pydicom read
/// (dcmdump is asked about every refusal, pydicom when dcmdump reads it;
/// the open findings are recognised and let pass, see `rule::KNOWN`).
#[test]
fn structure_corpus_follows_the_rule() {
    let files = corpus("structure");
    assert!(
        std::process::Command::new("dcmdump")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success()),
        "dcmdump (DCMTK) is the oracle of this test: apt-get install dcmtk"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let chunks: Vec<&[PathBuf]> = files.chunks(files.len().div_ceil(2)).collect();
    std::thread::scope(|scope| {
        for (n, chunk) in chunks.into_iter().enumerate() {
            let file = dir.path().join(format!("generated-{n}.dcm"));
            scope.spawn(move || {
                let mut oracle = rule::Oracle::from_env(root);
                // Only refusals: asking dcmdump about every file takes long.
                oracle.accept_sample = 0;
                oracle.stats = None;
                replay(chunk, |input| {
                    let data = fs::read(input).expect("a corpus file reads");
                    let generated = structure_gen::generate(&data);
                    fs::write(&file, &generated.bytes).expect("writes");
                    let reads = checks::check_header_file(&file);
                    checks::check_reads_agree(&reads);
                    oracle.check(
                        &file,
                        &generated.bytes,
                        reads.refused(),
                        generated.has_preamble(),
                    );
                });
            });
        }
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

/// Whether `dcmdump -q` (DCMTK) reads the file: the oracle, asked again so
/// that a finding's file keeps showing what its test says of it.
fn dcmdump_reads(path: &Path) -> bool {
    std::process::Command::new("dcmdump")
        .arg("-q")
        .arg(path)
        .output()
        .expect("dcmdump runs (DCMTK is installed)")
        .status
        .success()
}

/// Runs rx-repack storescp-style on a copy of the finding `name`: Ok if it
/// placed it (exit 0, the one file in the data dir, a copy of the source,
/// and the six records of one instance), else what it did.
fn place(name: &str) -> Result<(), String> {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let src = tmp.path().join(name);
    fs::copy(finding(name), &src).expect("copies the finding");
    let original = fs::read(&src).expect("reads the copy");
    let (datadir, logdir) = (tmp.path().join("data"), tmp.path().join("log"));
    let out = rx()
        .arg("--xcrdirfile")
        .arg(&src)
        .arg("--datadir")
        .arg(&datadir)
        .arg("--logdir")
        .arg(&logdir)
        .output()
        .expect("rx-repack runs");
    // A refusal creates neither directory; the log dir's .rx-repack holds
    // locks, not records.
    let files = |dir: &Path| {
        if dir.exists() {
            files_under(dir)
        } else {
            Vec::new()
        }
    };
    let placed = files(&datadir);
    let records = files(&logdir)
        .into_iter()
        .filter(|path| !path.starts_with(logdir.join(".rx-repack")))
        .count();
    let copied = matches!(&placed[..], [one] if fs::read(one).ok() == Some(original));
    match (out.status.success(), copied, records) {
        (true, true, 6) => Ok(()),
        _ => Err(format!(
            "{}, {} files placed (a copy of the source: {copied}), {records} records: {}",
            out.status,
            placed.len(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A finding that dcmdump and pydicom read: rx-repack must place it.
fn must_be_placed(name: &str) {
    assert!(
        dcmdump_reads(&finding(name)),
        "{name}: dcmdump no longer reads it; the finding needs another look"
    );
    if let Err(why) = place(name) {
        panic!("{name}: dcmdump and pydicom read it, so rx-repack must place it: {why}");
    }
}

/// S1: a deflated transfer syntax, and nothing after the file meta group
/// (an empty data set). dcmdump and pydicom read it; the walk asked flate2
/// for the first bytes, which failed on the empty stream ("cannot read:
/// incomplete deflate stream", a system error, not even "corrupt").
#[test]
fn s1_an_empty_deflated_data_set_is_placed() {
    must_be_placed("s1-deflated-empty-data-set.dcm");
}

/// S2: explicit VR little endian, as the meta group says, but the data set
/// starts with (3006,0002), whose group reads smaller byte-swapped: the
/// encoding was taken from that first element (big endian) over the
/// transfer syntax, and everything after it read out of step.
#[test]
fn s2_a_declared_byte_order_is_kept() {
    must_be_placed("s2-explicit-le-read-as-big-endian.dcm");
}

/// S2, without a transfer syntax in the meta group: DCMTK reads (3006,0002)
/// little endian (its dictionary knows that tag, not (0630,0200)); pydicom
/// reads it too (big endian, leniently); we took it for big endian, and
/// refused the file.
#[test]
fn s2_without_a_transfer_syntax_the_byte_order_is_told_as_dcmtk_tells_it() {
    must_be_placed("s2-no-transfer-syntax-read-as-big-endian.dcm");
}

/// S3: encapsulated pixel data whose basic offset table (an empty item)
/// ends the file, without the sequence delimiter. dcmdump reads it (it
/// takes the end of the file for the end of a pixel sequence that has no
/// fragment yet), pydicom stops before the pixel data.
#[test]
fn s3_undelimited_pixel_data_at_the_end_is_placed() {
    must_be_placed("s3-encapsulated-pixel-data-undelimited-at-end.dcm");
}

/// S3, a sequence: the file ends right after the header of a sequence of
/// defined length (100 bytes, none there). dcmdump reads an empty sequence,
/// pydicom one cut short.
#[test]
fn s3_a_sequence_header_at_the_end_is_placed() {
    must_be_placed("s3-sequence-header-at-end.dcm");
}

/// S5: implicit VR, a sequence of defined length (60 bytes) whose item and
/// sequence delimiter take 20, then PatientName. dcmdump and pydicom end
/// the sequence at its delimiter and read on, as the walk does in explicit
/// VR; in implicit VR it checked the declared length against the file.
#[test]
fn s5_an_implicit_sequence_ends_at_its_delimiter() {
    must_be_placed("s5-implicit-sequence-longer-than-its-delimiter.dcm");
}

/// S4: a deflate stream cut short (both toolkits fail on it, and so do
/// we), but refused as "cannot read", a system error, so `--quarantine`
/// leaves it where it is. It must be refused as bad content.
#[test]
fn s4_a_deflate_stream_cut_short_is_bad_content() {
    let path = finding("s4-deflate-stream-cut-short.dcm");
    assert!(!dcmdump_reads(&path), "dcmdump now reads it");
    let per_file = wanted_tags(&checks::default_layout());
    let errors: [(&str, Option<HeaderError>); 2] = [
        ("per-file", read_elements(&path, &per_file).err()),
        ("whole", read_whole_header(&path).err()),
    ];
    for (read, error) in errors {
        let error = error.unwrap_or_else(|| panic!("the {read} read accepts it"));
        assert!(
            error.is_bad_content(),
            "the {read} read blames the system, not the file: {error}"
        );
    }
}
