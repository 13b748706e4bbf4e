//! The integration tests, in one test binary: each module was a test binary
//! of its own, and each linked with the release profile's thin LTO, so the
//! cold build of the tests took most of `cargo test --release`.
//!
//! They need the example series and px-repack's output on it:
//! `./get_examples.sh examples-data && ./get_oracle.sh examples-data`.
//! The fault and fallback tests need root (they mount); the storescp tests
//! need DCMTK.

mod common;
mod listener;
mod oracle;
mod raw_scu;
mod services;

mod architecture;
mod batch;
mod chris;
mod concurrency;
mod conformance;
mod crash_safety;
mod duplicates;
mod fallbacks;
mod faults;
mod fuzz_regressions;
mod generated;
mod listen;
mod listen_access;
mod listen_events;
mod listen_faults;
mod listen_hostile;
mod log_safety;
mod messages;
mod metrics;
mod odd_files;
mod px_parity;
mod px_records;
mod pydicom_text;
mod service;
mod storescp;
mod toolkit_cases;
