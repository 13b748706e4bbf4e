//! `--replay-events`: an event for every series the log dir holds records
//! of, whoever filed it (rx-listen before its events were on, rx-repack
//! behind storescp, px-repack), written to the outbox and delivered as
//! any other. Each carries the id a live event of the same count would.

use std::io;

use super::Events;
use super::event::{Event, now_ms};
use crate::records::on_record::series_on_record;
use crate::records::series_state::SeriesState;

/// Puts the event of every series on record into the outbox; returns how
/// many.
pub fn replay(events: &Events) -> io::Result<usize> {
    let all = series_on_record(&events.logdir)?;
    for series in &all {
        let dir = series
            .series_dir
            .strip_prefix(&events.datadir)
            .unwrap_or(&series.series_dir);
        let state = SeriesState {
            series_instance_uid: series.series_instance_uid.clone(),
            study_instance_uid: series.study_instance_uid.clone(),
            patient_id: series.patient_id.clone(),
            series_dir: dir.display().to_string(),
            first_arrival_ms: series.first_ms,
            last_arrival_ms: series.last_ms,
            ..SeriesState::default()
        };
        let now = now_ms();
        let event = Event {
            replayed: true,
            ..Event::of(&state, series.instances, &events.datadir, now)
        };
        events.put(&event, now)?;
    }
    Ok(all.len())
}
