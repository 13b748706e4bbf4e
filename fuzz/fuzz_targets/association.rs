//! The server side of an association on arbitrary bytes: what a peer
//! sends on a connection to rx-listen (A-ASSOCIATE-RQ, P-DATA with
//! command sets and data sets, release, abort, or anything else), served
//! by rx-listen's own code in process. See `../serve_harness.rs`.
//! Checks: no panic (in the serving thread too: libFuzzer aborts on
//! any), no run longer than `serve_harness::LIMIT`, memory within
//! `-rss_limit_mb`/`-malloc_limit_mb`.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

#[path = "../serve_harness.rs"]
mod serve_harness;

static SERVER: Mutex<Option<serve_harness::Server>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let server = server.get_or_insert_with(|| {
        let dir = std::path::Path::new("/dev/shm")
            .join(format!("rx-fuzz-association-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        serve_harness::Server::new(&dir)
    });
    let took = server.serve(data);
    assert!(took < serve_harness::LIMIT, "one connection took {took:?}");
});
