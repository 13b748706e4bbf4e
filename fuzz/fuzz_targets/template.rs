//! The template language and path-component making on arbitrary text:
//! up to four NUL-separated templates, then the element values they
//! render. See `../checks.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // each target uses part of it
#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check_template_input(data);
});
