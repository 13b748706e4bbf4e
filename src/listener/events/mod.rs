//! Series completion events: rx-listen tells downstream once that a series
//! has arrived, across associations, replicas, outages and restarts.
//!
//! Each association records, before it acknowledges the first instance of
//! a series, that it delivers the series ([`Arrivals`]), and how it ended
//! when it does; the state is the log dir's ([`crate::records::series_state`]),
//! so every replica sharing it agrees. [`completion`] finds the series
//! that are complete and writes their [`event`]s to the outbox
//! ([`crate::records::outbox`]); [`delivery`] hands them to the sinks,
//! [`exec`] (`--exec-on-series`), [`ndjson`] (`--events-ndjson`) and
//! [`celery`] (`--celery-broker`), on threads of their own. [`liveness`] tells whether an association still
//! lives; [`replay`] announces the series already on record.

mod amqp;
pub mod celery;
mod completion;
mod delivery;
pub mod event;
pub mod exec;
mod liveness;
mod ndjson;
pub mod replay;
mod resp;

use crate::listener::metrics::METRICS;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use celery::{Broker, CelerySink};
use delivery::{Sink, Until};
use event::{Event, now_ms};
use exec::ExecSink;
use liveness::{AssociationIds, Presence};
use ndjson::NdjsonSink;

use super::lonk::Lonk;
use crate::filing::Reporting;
use crate::pipeline::Repacked;
use crate::records::NOT_DEFINED;
use crate::records::outbox::Outbox;
use crate::records::series_state::{Delivery, SeriesBook, SeriesState};

/// The series events' options, resolved.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// How long a series must be quiet, once its associations ended.
    pub settle: Duration,
    /// `--exec-on-series`'s template, split into words.
    pub exec: Option<Vec<String>>,
    pub exec_timeout: Duration,
    pub exec_retries: u32,
    /// `--events-ndjson`'s file.
    pub ndjson: Option<PathBuf>,
    /// Events waiting in the outbox beyond which completions wait.
    pub outbox_max: usize,
    /// `--celery-broker`'s registrations.
    pub celery: Option<CeleryConfig>,
}

/// Where CUBE's registrations go.
#[derive(Debug, Clone)]
pub struct CeleryConfig {
    pub broker: Broker,
    pub queue: String,
}

/// The series events of one rx-listen.
pub struct Events {
    config: EventsConfig,
    logdir: PathBuf,
    /// The data dir, absolute.
    datadir: String,
    book: SeriesBook,
    outbox: Outbox,
    ids: AssociationIds,
    /// An association's registration with a series is on disk before the
    /// instance is acknowledged (`--fsync always`). The other changes
    /// need not be: an end lost in a power cut is found again (its lock
    /// is gone), and a completion lost repeats its event, with its id.
    durable: bool,
    sinks: Vec<Box<dyn Sink>>,
    reporting: Reporting,
    /// Ends of associations that could not be written yet (as many as
    /// the associations that ended while the log dir failed, each of which
    /// had registered before: no association registers meanwhile).
    unrecorded_ends: Mutex<Vec<UnrecordedEnd>>,
}

impl Events {
    /// The events of a listener filing into `datadir` and `logdir`; with
    /// `durable`, the series' states are on disk before an instance is
    /// acknowledged. `grace` is what a hook running at a stop still gets;
    /// a registration is told on `lonk`.
    pub fn new(
        config: EventsConfig,
        datadir: &Path,
        logdir: &Path,
        durable: bool,
        grace: Duration,
        reporting: Reporting,
        lonk: Option<Lonk>,
    ) -> io::Result<Events> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(words) = &config.exec {
            let exec = ExecSink::new(
                words.clone(),
                config.exec_timeout,
                config.exec_retries,
                grace,
            );
            sinks.push(Box::new(exec));
        }
        if let Some(path) = &config.ndjson {
            sinks.push(Box::new(NdjsonSink::new(path.clone())));
        }
        if let Some(celery) = &config.celery {
            let sink = CelerySink::new(celery.broker.clone(), &celery.queue, lonk);
            sinks.push(Box::new(sink));
        }
        let datadir = std::path::absolute(datadir)?;
        Ok(Events {
            config,
            logdir: logdir.to_path_buf(),
            datadir: datadir.display().to_string(),
            book: SeriesBook::new(logdir),
            durable,
            outbox: Outbox::new(logdir),
            ids: AssociationIds::new(),
            sinks,
            reporting,
            unrecorded_ends: Mutex::new(Vec::new()),
        })
    }

    fn program(&self) -> &'static str {
        self.reporting.program
    }

    /// Looks for complete series and delivers their events, until `stop`.
    pub fn run(&self, stop: &AtomicBool) {
        std::thread::scope(|scope| {
            scope.spawn(|| completion::watch(self, stop));
            self.deliver(scope, stop, Until::Stopped);
        });
    }

    /// Delivers what waits in the outbox, and returns once it is empty
    /// (or `stop` is set).
    pub fn drain(&self, stop: &AtomicBool) {
        std::thread::scope(|scope| self.deliver(scope, stop, Until::Empty));
    }

    /// A deliverer for each sink, on a thread of its own in `scope`.
    fn deliver<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        stop: &'env AtomicBool,
        until: Until,
    ) {
        for sink in &self.sinks {
            scope.spawn(move || {
                delivery::deliver_all(sink.as_ref(), &self.outbox, &self.reporting, stop, until)
            });
        }
    }

    /// What the association from `peer`, `calling` calling `called`,
    /// delivers.
    pub fn arrivals(&self, calling: &str, called: &str, peer: &str) -> Arrivals<'_> {
        Arrivals {
            events: self,
            association: self.ids.next(),
            calling: calling.trim().to_string(),
            called: called.trim().to_string(),
            peer: peer.to_string(),
            presence: None,
            last_arrival: HashMap::new(),
        }
    }

    /// Tells the series of `end` how its association ended; returns what
    /// could not be told.
    fn record_end(&self, mut end: UnrecordedEnd) -> Option<UnrecordedEnd> {
        end.series.retain(|(name, last)| {
            let told = self.book.update(name, false, |state| {
                let Some(series) = state else { return };
                series.last_arrival_ms = series.last_arrival_ms.max(*last);
                for delivery in &mut series.deliveries {
                    if delivery.association == end.association {
                        delivery.ended = Some(end.end.clone());
                        delivery.ended_ms = Some(end.ended_ms);
                    }
                }
            });
            told.is_err()
        });
        (!end.series.is_empty()).then_some(end)
    }

    /// Tries again to write the ends that could not be written.
    fn record_ends_again(&self) {
        let mut unrecorded = self
            .unrecorded_ends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let ends = std::mem::take(&mut *unrecorded);
        unrecorded.extend(ends.into_iter().filter_map(|end| self.record_end(end)));
    }

    /// The most events waiting for one sink.
    fn waiting(&self) -> usize {
        self.sinks
            .iter()
            .map(|sink| self.outbox.counts(sink.name()).0)
            .max()
            .unwrap_or(0)
    }

    /// Writes `event`, complete at `now`, to the outbox of every sink.
    fn put(&self, event: &Event, now: i64) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(event).map_err(io::Error::other)?;
        let names: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        self.outbox.put(&names, &event.outbox_name(now), &bytes)
    }

    fn say_announced(&self, event: &Event) {
        if self.reporting.verbosity >= 1 {
            eprintln!(
                "{}: series {} complete: {} instances in {} (event {}; {})",
                self.program(),
                event.series_instance_uid,
                event.instances,
                event.series_dir,
                event.event_id,
                self.outbox_text()
            );
        }
    }

    /// Tells the metrics how many events wait for each sink.
    fn count_waiting(&self) {
        for sink in &self.sinks {
            METRICS.outbox(sink.name(), self.outbox.counts(sink.name()).0);
        }
    }

    /// What the outbox holds, for the log: `exec: 2 waiting, 1 given up`.
    pub fn outbox_text(&self) -> String {
        let each: Vec<String> = self
            .sinks
            .iter()
            .map(|sink| {
                let (waiting, failed) = self.outbox.counts(sink.name());
                format!("{}: {waiting} waiting, {failed} given up", sink.name())
            })
            .collect();
        format!("outbox {}", each.join("; "))
    }
}

/// The dir of the file `placed`, relative to `datadir` (absolute).
fn relative_series_dir(datadir: &str, placed: &Path) -> String {
    let dir = placed.parent().unwrap_or(Path::new(""));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.strip_prefix(datadir)
        .unwrap_or(&dir)
        .display()
        .to_string()
}

/// An association's end, not yet written to the states of all its series.
struct UnrecordedEnd {
    association: String,
    end: String,
    ended_ms: i64,
    /// The series still to be told, with the association's last arrival.
    series: Vec<(String, i64)>,
    /// Held until every series is told.
    _presence: Option<Presence>,
}

/// The series one association delivers, as the events know them.
pub struct Arrivals<'a> {
    events: &'a Events,
    association: String,
    calling: String,
    called: String,
    peer: String,
    /// Held from the first instance on, until the association ends.
    presence: Option<Presence>,
    /// The last arrival of each series delivered, by its state's name.
    last_arrival: HashMap<String, i64>,
}

impl Arrivals<'_> {
    /// `repacked` was filed: the first instance of each series registers
    /// the association with it. An error means the series could not be
    /// told of it: the instance must not be acknowledged.
    pub fn arrived(&mut self, repacked: &Repacked) -> io::Result<()> {
        let now = now_ms();
        let series_uid = repacked
            .series_instance_uid
            .as_deref()
            .unwrap_or(NOT_DEFINED);
        let name = SeriesBook::name_of(series_uid);
        if let Some(last) = self.last_arrival.get_mut(&name) {
            *last = now;
            return Ok(());
        }
        let events = self.events;
        if self.presence.is_none() {
            self.presence = Some(Presence::claim(&events.logdir, &self.association)?);
        }
        let series_dir = relative_series_dir(&events.datadir, &repacked.dst);
        let delivery = Delivery {
            association: self.association.clone(),
            calling_ae: self.calling.clone(),
            called_ae: self.called.clone(),
            peer: self.peer.clone(),
            ended: None,
            ended_ms: None,
        };
        let text = |value: &Option<String>| value.clone().unwrap_or_else(|| NOT_DEFINED.into());
        events.book.update(&name, events.durable, |state| {
            let series = state.get_or_insert_with(|| SeriesState {
                series_instance_uid: series_uid.to_string(),
                ..SeriesState::default()
            });
            if series.deliveries.is_empty() {
                series.study_instance_uid = text(&repacked.study_instance_uid);
                series.patient_id = text(&repacked.patient_id);
                series.series_dir = series_dir;
                series.first_arrival_ms = now;
            }
            series.last_arrival_ms = series.last_arrival_ms.max(now);
            series.deliveries.push(delivery);
        })?;
        self.last_arrival.insert(name, now);
        Ok(())
    }

    /// The association ended as `end` says: each series it delivered is
    /// told, and its presence given up once they all are. A series that
    /// cannot be told now (the log dir is full) is told by a later round
    /// of [`completion`]; until then the association counts as alive.
    pub fn ended(self, end: &impl std::fmt::Display) {
        let events = self.events;
        let end = UnrecordedEnd {
            association: self.association,
            end: end.to_string(),
            ended_ms: now_ms(),
            series: self.last_arrival.into_iter().collect(),
            _presence: self.presence,
        };
        if let Some(end) = events.record_end(end) {
            eprintln!(
                "{}: cannot record the end of an association in the log dir (tried again)",
                events.program()
            );
            events
                .unrecorded_ends
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(end);
        }
    }
}
