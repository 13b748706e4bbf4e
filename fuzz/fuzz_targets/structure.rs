//! Issue 13's rule under structure-aware fuzzing: the fuzz bytes are
//! decoded into a DICOM file (`../structure_gen.rs`: framings, meta groups,
//! encodings, nesting, VRs, undefined lengths, then byte mutations aimed at
//! the structure), which is read in-process every way the pipeline reads a
//! file (`../checks.rs`: no panic, the reads agree); a refusal is checked
//! against `dcmdump` (and pydicom when dcmdump reads it), an acceptance
//! now and then (`../rule.rs`). See fuzz/README.md.
//!
//! RX_FUZZ_DUMP=FILE writes the generated file there (to replay a crash:
//! `structure -runs=1 CRASH` with it set).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // each target uses part of it
#[path = "../checks.rs"]
mod checks;
#[path = "../rule.rs"]
mod rule;
#[allow(dead_code)]
#[path = "../structure_gen.rs"]
mod structure_gen;

/// One file per fuzzing process.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| checks::scratch_file("structure"))
}

fn oracle() -> &'static Mutex<rule::Oracle> {
    static ORACLE: OnceLock<Mutex<rule::Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Mutex::new(rule::Oracle::from_env(&root))
    })
}

fuzz_target!(|data: &[u8]| {
    let file = structure_gen::generate(data);
    let path = input_path();
    std::fs::write(path, &file.bytes).expect("cannot write the generated file");
    if let Some(dump) = std::env::var_os("RX_FUZZ_DUMP") {
        std::fs::write(dump, &file.bytes).expect("cannot write RX_FUZZ_DUMP");
    }
    let reads = checks::check_header_file(path);
    checks::check_reads_agree(&reads);
    let mut oracle = oracle().lock().unwrap_or_else(|e| e.into_inner());
    oracle.check(path, &file.bytes, reads.refused(), file.has_preamble());
});
