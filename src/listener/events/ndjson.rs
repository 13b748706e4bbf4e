//! `--events-ndjson FILE`: each event appended to FILE as one JSON line,
//! for tools that tail a file. A line is written by one `write` to a file
//! opened for appending, and is on disk before the event leaves the
//! outbox.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::delivery::{Failure, Sink};
use super::event::Event;

pub struct NdjsonSink {
    path: PathBuf,
}

impl NdjsonSink {
    pub fn new(path: PathBuf) -> NdjsonSink {
        NdjsonSink { path }
    }
}

impl Sink for NdjsonSink {
    fn name(&self) -> &'static str {
        "ndjson"
    }

    /// A file that cannot be written (a full disk) is tried again until it
    /// can: nothing else can take the event's place.
    fn retries(&self) -> Option<u32> {
        None
    }

    fn deliver(&self, event: &Event, _stop: &AtomicBool) -> Result<(), Failure> {
        let mut line = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let failed = |e: std::io::Error| format!("cannot append to {}: {e}", self.path.display());
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(failed)?;
        let before = file.metadata().map_err(failed)?.len();
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        if written.is_err() {
            // Half a line (a disk that filled up) is taken back: the line
            // is written whole on the next try.
            let _ = file.set_len(before);
        }
        Ok(written.map_err(failed)?)
    }
}
