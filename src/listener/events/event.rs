//! A series completion event: what it says, and its id.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::records::series_state::SeriesState;

/// A series is on disk with `instances` instances (JSON, one object, as
/// the outbox keeps it and `--events-ndjson` writes it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// The same for the same series and count: a duplicate (after a crash
    /// between delivery and its removal from the outbox) carries the id of
    /// the event it repeats.
    pub event_id: String,
    pub patient_id: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// The series dir, absolute.
    pub series_dir: String,
    /// The series dir, relative to the data dir.
    pub series_dir_relative: String,
    /// Instances of the series on disk.
    pub instances: u64,
    /// RFC 3339, UTC.
    pub first_arrival: String,
    pub last_arrival: String,
    pub completed: String,
    /// The associations that delivered since the last event of the series
    /// (none for a replayed event).
    pub associations: Vec<AssociationEnd>,
    /// Re-emitted from the log dir by `--replay-events`.
    pub replayed: bool,
}

/// An association that delivered instances of the series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssociationEnd {
    pub calling_ae: String,
    pub called_ae: String,
    pub peer: String,
    /// How it ended (`released`, `aborted by the peer`, `lost: ...`).
    pub ended: String,
}

impl Event {
    /// The event of the series `state`, now complete with `instances`, at
    /// `now_ms`; its dir under `datadir`.
    pub fn of(state: &SeriesState, instances: u64, datadir: &str, now_ms: i64) -> Event {
        Event {
            event_id: event_id(&state.series_instance_uid, instances),
            patient_id: state.patient_id.clone(),
            study_instance_uid: state.study_instance_uid.clone(),
            series_instance_uid: state.series_instance_uid.clone(),
            series_dir: absolute(datadir, &state.series_dir),
            series_dir_relative: state.series_dir.clone(),
            instances,
            first_arrival: rfc3339(state.first_arrival_ms),
            last_arrival: rfc3339(state.last_arrival_ms.max(state.first_arrival_ms)),
            completed: rfc3339(now_ms),
            associations: state
                .deliveries
                .iter()
                .map(|d| AssociationEnd {
                    calling_ae: d.calling_ae.clone(),
                    called_ae: d.called_ae.clone(),
                    peer: d.peer.clone(),
                    ended: d.ended.clone().unwrap_or_default(),
                })
                .collect(),
            replayed: false,
        }
    }

    /// Its name in the outbox: by completion time, so that events wait in
    /// the order they happened.
    pub fn outbox_name(&self, now_ms: i64) -> String {
        format!("{now_ms:013}-{}.json", self.event_id)
    }

    /// The first association's, for the placeholders that take one.
    pub fn first_association(&self) -> Option<&AssociationEnd> {
        self.associations.first()
    }
}

/// The id of the event of `series_uid` complete with `instances`: an MD5
/// of both, written as a UUID is.
pub fn event_id(series_uid: &str, instances: u64) -> String {
    let digest = md5::compute(format!("{series_uid}\n{instances}"));
    uuid_text(&format!("{digest:x}"))
}

/// 32 hex digits written as a UUID is (8-4-4-4-12).
pub fn uuid_text(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `relative` under `datadir` (as given: rx-listen makes it absolute).
pub fn absolute(datadir: &str, relative: &str) -> String {
    std::path::Path::new(datadir)
        .join(relative)
        .display()
        .to_string()
}

/// Unix milliseconds as RFC 3339 in UTC.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_same_for_the_same_series_and_count_only() {
        let id = event_id("1.2.3", 192);
        assert_eq!(id, event_id("1.2.3", 192));
        assert_ne!(id, event_id("1.2.3", 191));
        assert_ne!(id, event_id("1.2.4", 192));
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(rfc3339(1_764_745_200_123), "2025-12-03T07:00:00.123Z");
    }
}
