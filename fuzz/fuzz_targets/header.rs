//! The header reader on arbitrary bytes: random, mutated and truncated
//! DICOM files in every layout rx-repack accepts. See `../checks.rs`.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // each target uses part of it
#[path = "../checks.rs"]
mod checks;

/// One file per fuzzing process.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| checks::scratch_file("header"))
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    std::fs::write(path, data).expect("cannot write the fuzz input file");
    checks::check_header_file(path);
});
