//! Delivering the outbox to a sink: one thread a sink, never a receiving
//! thread, so a slow or failing sink holds back only the events queued
//! behind it. An event leaves the outbox once its sink took it; a failure
//! is tried again after a growing pause, and after the sink's number of
//! retries the event is kept in the outbox's failed folder, where an
//! operator sees it and can put it back.

use crate::listener::metrics::METRICS;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::event::Event;
use crate::filing::Reporting;
use crate::records::outbox::Outbox;

/// How often an idle deliverer looks for new events.
const IDLE: Duration = Duration::from_millis(100);
/// The pause after the first failure; it doubles after each, up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Somewhere events go.
pub trait Sink: Send + Sync {
    /// Its folder in the outbox, and its name in the log.
    fn name(&self) -> &'static str;
    /// How many times a failed event is tried again before it is given up
    /// on (`None`: until it succeeds).
    fn retries(&self) -> Option<u32>;
    /// Delivers `event`; `stop` is set when rx-listen stops.
    fn deliver(&self, event: &Event, stop: &AtomicBool) -> Result<(), Failure>;
}

/// Why a sink did not take an event.
#[derive(Debug)]
pub enum Failure {
    /// It may take it later (it is down, or timed out).
    Again(String),
    /// It never will (the event cannot be put in its terms): given up on
    /// at once.
    Never(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Again(why)
    }
}

/// When a deliverer returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `stop` is set.
    Stopped,
    /// Nothing waits any more (or `stop` is set).
    Empty,
}

/// Delivers the events waiting in `outbox` for `sink`, oldest first, while
/// this process holds the sink's delivery lock (another rx-listen sharing
/// the log dir may hold it: it then delivers them, and with
/// [`Until::Empty`] this waits until it has).
pub fn deliver_all(
    sink: &dyn Sink,
    outbox: &Outbox,
    reporting: &Reporting,
    stop: &AtomicBool,
    until: Until,
) {
    let program = reporting.program;
    let name = sink.name();
    let mut held: Option<File> = None;
    // One line for a run of the same trouble, not one a round.
    let mut complained = false;
    let complain = |complained: &mut bool, what: String| {
        if !std::mem::replace(complained, true) {
            eprintln!("{program}: {name} events: {what}");
        }
    };
    while !stop.load(Ordering::Relaxed) {
        if held.is_none() {
            match outbox.take_delivery(name) {
                Ok(lock) => held = lock,
                Err(e) => complain(
                    &mut complained,
                    format!("cannot take the delivery lock: {e}"),
                ),
            }
        }
        let waiting = outbox.waiting(name).unwrap_or_else(|e| {
            complain(&mut complained, format!("cannot read the outbox: {e}"));
            Vec::new()
        });
        if waiting.is_empty() && until == Until::Empty {
            return;
        }
        if waiting.is_empty() || held.is_none() {
            std::thread::sleep(IDLE);
            continue;
        }
        complained = false;
        for path in waiting {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            deliver_one(sink, outbox, &path, reporting, stop);
        }
    }
}

/// Delivers the event at `path` to `sink`, trying again after failures.
fn deliver_one(
    sink: &dyn Sink,
    outbox: &Outbox,
    path: &Path,
    reporting: &Reporting,
    stop: &AtomicBool,
) {
    let (program, name) = (reporting.program, sink.name());
    let event: Event = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(event) => event,
        Err(why) => {
            // Not ours (we write events whole): kept for a person to see.
            let kept = outbox.give_up(name, path);
            eprintln!(
                "{program}: {name} event {} unreadable ({why}); kept as {}",
                path.display(),
                kept.map_or_else(|e| format!("it is ({e})"), |to| to.display().to_string())
            );
            return;
        }
    };
    let about = format!(
        "event {} (series {}, {} instances)",
        event.event_id, event.series_instance_uid, event.instances
    );
    let mut failures = 0u32;
    loop {
        let (why, again) = match sink.deliver(&event, stop) {
            Ok(()) => {
                if let Err(e) = outbox.delivered(path) {
                    // It will be delivered again, with the same id.
                    eprintln!(
                        "{program}: {about}: delivered to {name}, but not removed from the outbox: {e}"
                    );
                } else if reporting.verbosity >= 1 {
                    eprintln!("{program}: {about}: delivered to {name}");
                }
                return;
            }
            Err(Failure::Again(why)) => (why, true),
            Err(Failure::Never(why)) => (why, false),
        };
        failures += 1;
        METRICS.delivery_failed();
        if !again || sink.retries().is_some_and(|retries| failures > retries) {
            match outbox.give_up(name, path) {
                Ok(to) => eprintln!(
                    "{program}: {about}: {name} failed ({why}), {failures} times; given up, kept as {} (move it back to {} to deliver it again)",
                    to.display(),
                    path.parent()
                        .map_or_else(String::new, |p| p.display().to_string())
                ),
                Err(e) => eprintln!(
                    "{program}: {about}: {name} failed ({why}), {failures} times, and cannot be set aside ({e}): tried again"
                ),
            }
            return;
        }
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (failures - 1).min(6))
            .min(MAX_PAUSE);
        eprintln!(
            "{program}: {about}: {name} failed ({why}); trying again in {} s",
            pause.as_secs()
        );
        if !sleep_unless_stopped(pause, stop) {
            return;
        }
    }
}

/// Sleeps for `pause`; false if `stop` was set meanwhile.
fn sleep_unless_stopped(pause: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(IDLE.min(until.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::Relaxed)
}
