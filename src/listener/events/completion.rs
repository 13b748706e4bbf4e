//! When a series is complete: every association that delivered instances
//! of it has ended (or died: see [`super::liveness`]), and nothing has
//! happened to it for the settle time. Each rx-listen sharing the log dir
//! looks at the open series in turn; the look, the event written to the
//! outbox and the state's change are one step under the series lock, so a
//! series completes once, whichever replica sees it first.

use crate::listener::metrics::METRICS;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Events;
use super::event::{Event, now_ms};
use super::liveness::is_alive;
use crate::records::series_state::SeriesState;

/// What became of one open series in a round.
enum Look {
    /// Still open, or not settled yet.
    Waiting,
    /// Complete, with a count already announced: closed without an event.
    Unchanged,
    /// Complete: the event is in the outbox.
    Announced(Box<Event>),
}

/// How an association is told that ended because its rx-listen died.
const DIED: &str = "lost: its rx-listen stopped (killed, or its machine went down)";

/// Looks for complete series until `stop` is set.
pub fn watch(events: &Events, stop: &AtomicBool) {
    let tick = (events.config.settle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut said_full = false;
    let mut said_failure = false;
    while !stop.load(Ordering::Relaxed) {
        let waiting = events.waiting();
        if waiting >= events.config.outbox_max {
            if !said_full {
                eprintln!(
                    "{}: the outbox holds {waiting} events, its limit: series complete meanwhile are announced once it drains",
                    events.program()
                );
                said_full = true;
            }
        } else {
            said_full = false;
            match round(events) {
                Ok(()) => said_failure = false,
                Err(e) if !said_failure => {
                    eprintln!(
                        "{}: cannot look for complete series (tried again): {e}",
                        events.program()
                    );
                    said_failure = true;
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(tick);
    }
}

/// One look at every open series.
fn round(events: &Events) -> std::io::Result<()> {
    events.record_ends_again();
    let mut failure = None;
    for name in events.book.open_names()? {
        match events
            .book
            .update(&name, false, |state| look(events, state))
        {
            Ok(Ok(Look::Announced(event))) => {
                METRICS.series_completed();
                events.say_announced(&event);
            }
            Ok(Ok(Look::Waiting | Look::Unchanged)) => {}
            Ok(Err(e)) | Err(e) => failure = Some(e),
        }
    }
    events.count_waiting();
    failure.map_or(Ok(()), Err)
}

/// Looks at one open series, under the series lock: marks the deliveries
/// of dead associations ended, and announces the series if it is
/// complete. On an error nothing changes, and the next round tries again.
fn look(events: &Events, state: &mut Option<SeriesState>) -> std::io::Result<Look> {
    let Some(series) = state else {
        return Ok(Look::Waiting);
    };
    let now = now_ms();
    for delivery in series.deliveries.iter_mut().filter(|d| d.ended.is_none()) {
        if !is_alive(&events.logdir, &delivery.association) {
            delivery.ended = Some(DIED.into());
            delivery.ended_ms = Some(now);
        }
    }
    let settle = i64::try_from(events.config.settle.as_millis()).unwrap_or(i64::MAX);
    if series.is_open() || now.saturating_sub(series.quiet_since_ms()) < settle {
        return Ok(Look::Waiting);
    }
    let instances = events
        .book
        .instances_recorded(&series.series_instance_uid)?;
    let look = if instances == series.announced || instances == 0 {
        Look::Unchanged
    } else {
        let event = Event::of(series, instances, &events.datadir, now);
        events.put(&event, now)?;
        series.announced = instances;
        Look::Announced(Box::new(event))
    };
    series.deliveries.clear();
    series.first_arrival_ms = 0;
    series.last_arrival_ms = 0;
    Ok(look)
}
