//! rx-listen: a DICOM storage SCP that files every instance it receives
//! through the same pipeline as rx-repack, in process, as it streams in.
//!
//! [`cli`] parses its command line and [`config`] resolves it. This module
//! accepts connections, one thread per association up to the limit
//! (beyond it, [`busy`] rejects them), and stops them on a signal; each
//! connection's first bytes are looked at ([`opening`]), its association
//! negotiated (with the [`access`] rules, over [`tls`] when configured)
//! and served by the [`association`] loop, which takes what the peer
//! sends from [`wire`], answers the command sets of [`dimse`], and
//! streams each data set into an [`instance_file`] that goes through the
//! pipeline once complete. A [`deadline`] cuts a peer that stops making
//! progress. The series delivered are followed by [`events`], which
//! tells downstream once each is complete.

pub mod access;
pub mod association;
mod busy;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod dimse;
mod downstream;
pub mod events;
mod free_space;
pub mod instance_file;
pub mod lonk;
pub(crate) mod metrics;
mod opening;
pub mod oxidicom;
mod service;
mod storage_classes;
mod tls;
mod wire;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::association::server::ServerAssociationOptions;
use dicom_ul::pdu::{AbortRQSource, Pdu, write_pdu};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use access::Gate;
use association::{End, Served};
use busy::Refusals;
use config::{ListenConfig, PROGRAM};
use deadline::Deadline;
use downstream::Downstream;
use events::Events;
use lonk::Lonk;
use metrics::{Ended, METRICS};
use storage_classes::STORAGE_SOP_CLASSES;

/// How often the accepting loop looks for a stop signal.
const POLL: Duration = Duration::from_millis(50);

/// The associations being served: their sockets, to shut them down when
/// the grace period after a stop signal is over, and their deadlines.
#[derive(Default)]
struct InFlight {
    next: AtomicU64,
    sockets: Mutex<HashMap<u64, (TcpStream, Arc<Deadline>)>>,
}

impl InFlight {
    fn len(&self) -> usize {
        self.sockets.lock().map_or(0, |s| s.len())
    }

    /// Cuts the connections whose deadline has passed: their reading side
    /// is shut down, which ends the read their thread is blocked in; the
    /// thread then aborts the association.
    fn cut_overdue(&self) {
        if let Ok(sockets) = self.sockets.lock() {
            for (socket, deadline) in sockets.values() {
                if deadline.expire_if_due() {
                    let _ = socket.shutdown(Shutdown::Read);
                }
            }
        }
    }
}

/// The series events of `config`, if it has them; their registrations
/// end with a LONK message on `lonk`.
fn events_of(config: &ListenConfig, lonk: Option<&Lonk>) -> io::Result<Option<Events>> {
    let (Some(events), Some(logdir)) = (&config.events, &config.filing.logdir) else {
        return Ok(None);
    };
    Events::new(
        events.clone(),
        config.filing.datadir.as_std_path(),
        logdir.as_std_path(),
        config.durable,
        config.grace,
        config.filing.reporting,
        lonk.cloned(),
    )
    .map(Some)
}

/// LONK's publisher, if `config` has one.
fn lonk_of(config: &ListenConfig) -> Option<Lonk> {
    config.lonk.as_ref().map(|lonk| Lonk::start(lonk, PROGRAM))
}

/// Puts an event for every series on record in the log dir into the
/// outbox, and delivers the outbox (until `stop` is set): returns how
/// many series were replayed.
pub fn replay_events(config: &ListenConfig, stop: &AtomicBool) -> io::Result<usize> {
    let lonk = lonk_of(config);
    let Some(events) = events_of(config, lonk.as_ref())? else {
        return Ok(0);
    };
    let replayed = events::replay::replay(&events)?;
    events.drain(stop);
    eprintln!(
        "{PROGRAM}: replayed {replayed} series; {}",
        events.outbox_text()
    );
    Ok(replayed)
}

/// Waits until a connection is pending on `listener`, or `most` has
/// passed: the accepting loop's other work (a stop, overdue associations,
/// refusals to finish) comes round at least that often, and a new
/// association is accepted at once, not at the next round.
fn wait_for_connection(listener: &TcpListener, most: Duration) {
    let mut watched = [PollFd::new(listener, PollFlags::IN)];
    let most = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(most.subsec_nanos()),
    };
    // An error (a signal) only ends this round early.
    let _ = poll(&mut watched, Some(&most));
}

/// Listens on `address` until `stop` is set, then lets the associations
/// in flight finish within the grace period, aborts the rest, and
/// returns.
pub fn listen(config: &ListenConfig, address: SocketAddr, stop: &AtomicBool) -> io::Result<()> {
    let lonk = lonk_of(config);
    let events = events_of(config, lonk.as_ref())?;
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    if let Some(at) = config.metrics {
        let bound = metrics::serve(at, config.floor.clone())
            .map_err(|e| io::Error::new(e.kind(), format!("metrics on {at}: {e}")))?;
        eprintln!("{PROGRAM}: metrics on http://{bound}/metrics, /healthz, /readyz");
    }
    let in_flight = Arc::new(InFlight::default());
    // Set once the associations are over: the events stop after them.
    let events_stop = AtomicBool::new(false);
    if config.filing.reporting.verbosity >= 1 {
        eprintln!(
            "{PROGRAM}: listening on {} as {}, filing into {}",
            listener.local_addr()?,
            config.ae_title,
            config.filing.datadir
        );
    }
    let mut refusals = Refusals::default();
    std::thread::scope(|scope| {
        if let Some(events) = &events {
            scope.spawn(|| events.run(&events_stop));
        }
        while !stop.load(Ordering::Relaxed) {
            in_flight.cut_overdue();
            refusals.round();
            let (stream, address) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let pause = if refusals.is_empty() { POLL } else { POLL / 5 };
                    wait_for_connection(&listener, pause);
                    continue;
                }
                Err(e) => {
                    eprintln!("{PROGRAM}: cannot accept a connection: {e}");
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if in_flight.len() >= config.max_associations {
                refusals.refuse(stream);
                METRICS.ended(Ended::Busy);
                if config.filing.reporting.verbosity >= 1 {
                    eprintln!(
                        "{PROGRAM}: {address}: rejected: {} associations already",
                        config.max_associations
                    );
                }
                continue;
            }
            let _ = stream.set_nonblocking(false);
            let id = in_flight.next.fetch_add(1, Ordering::Relaxed);
            let deadline = Arc::new(Deadline::default());
            deadline.arm(Some(config.acse_timeout));
            if let (Ok(clone), Ok(mut sockets)) = (stream.try_clone(), in_flight.sockets.lock()) {
                sockets.insert(id, (clone, Arc::clone(&deadline)));
            }
            let in_flight = Arc::clone(&in_flight);
            let downstream = Downstream {
                events: events.as_ref(),
                lonk: lonk.as_ref(),
            };
            scope.spawn(move || {
                associate(stream, address, config, &deadline, downstream);
                if let Ok(mut sockets) = in_flight.sockets.lock() {
                    sockets.remove(&id);
                }
            });
        }
        // Stopping: no new association; those in flight get the grace
        // period, then their connections are shut down.
        drop(listener);
        if config.filing.reporting.verbosity >= 1 {
            eprintln!(
                "{PROGRAM}: stopping: {} association(s) in flight get {} s to finish",
                in_flight.len(),
                config.grace.as_secs()
            );
        }
        let deadline = Instant::now() + config.grace;
        while in_flight.len() > 0 && Instant::now() < deadline {
            in_flight.cut_overdue();
            std::thread::sleep(POLL);
        }
        if let Ok(sockets) = in_flight.sockets.lock() {
            if !sockets.is_empty() {
                eprintln!(
                    "{PROGRAM}: grace period over: {} association(s) cut, their unacknowledged instances not kept",
                    sockets.len()
                );
            }
            for (socket, _) in sockets.values() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        while in_flight.len() > 0 {
            std::thread::sleep(POLL);
        }
        events_stop.store(true, Ordering::Relaxed);
    });
    if let Some(events) = &events {
        eprintln!("{PROGRAM}: stopped; {}", events.outbox_text());
    }
    if let Some(lonk) = &lonk {
        eprintln!("{PROGRAM}: LONK messages dropped: {}", lonk.dropped());
    }
    Ok(())
}

/// Serves one connection already accepted, as rx-listen serves each:
/// negotiates the association, receives and files what it brings, and
/// prints its line on stderr; returns when it ends. No deadline watches
/// it: its timeouts are the socket's (for tests and fuzzing; `listen`
/// also cuts a peer that makes no progress).
pub fn serve_connection(stream: TcpStream, config: &ListenConfig) {
    let address = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = stream.set_nodelay(true);
    associate(
        stream,
        address,
        config,
        &Deadline::default(),
        Downstream::default(),
    );
}

/// Negotiates and serves one association (over TLS when configured), then
/// says how it went. `deadline` is armed with the ACSE timeout: the whole
/// request must arrive within it. What it delivers is told to
/// `downstream`.
fn associate(
    stream: TcpStream,
    address: SocketAddr,
    config: &ListenConfig,
    deadline: &Deadline,
    downstream: Downstream,
) {
    let started = Instant::now();
    let _serving = METRICS.serving();
    if let Err(why) = opening::wait_for_first_message(&stream, config.acse_timeout) {
        METRICS.ended(Ended::NotEstablished);
        if config.filing.reporting.verbosity >= 1 {
            let why = match deadline.expired() {
                true => association::no_request_within(config.acse_timeout),
                false => why,
            };
            eprintln!("{PROGRAM}: {address}: no association: {why}");
        }
        return;
    }
    // To answer a request dicom-ul could not read with an A-ABORT; on
    // plain TCP only (under TLS, bytes of ours would be noise).
    let raw = config
        .tls
        .is_none()
        .then(|| stream.try_clone().ok())
        .flatten();
    let gate = Gate::new(&config.access, address.ip());
    let mut negotiation = ServerAssociationOptions::new()
        .ae_access_control(&gate)
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu)
        .strict(true)
        .read_timeout(config.acse_timeout)
        .write_timeout(config.acse_timeout)
        .with_abstract_syntax(uids::VERIFICATION);
    for class in STORAGE_SOP_CLASSES {
        negotiation = negotiation.with_abstract_syntax(class);
    }
    let served = match &config.tls {
        Some(tls) => negotiation
            .tls_config(Arc::clone(tls))
            .establish_tls(stream)
            .map(|association| {
                association::serve(association, address, config, deadline, downstream)
            }),
        None => negotiation.establish(stream).map(|association| {
            association::serve(association, address, config, deadline, downstream)
        }),
    };
    let (titles, outcome) = match served {
        Ok(Served { titles, tally, end }) => (titles, Ok((tally, end))),
        Err(e) => (gate.titles().unwrap_or_default(), Err(e)),
    };
    let (calling, called) = (titles.0.trim(), titles.1.trim());
    METRICS.ended(match &outcome {
        Ok((_, end)) => end.into(),
        Err(dicom_ul::association::Error::Rejected { .. }) => Ended::Rejected,
        Err(_) => Ended::NotEstablished,
    });
    let line = match outcome {
        Ok((tally, end)) => {
            if config.filing.reporting.verbosity == 0 && matches!(end, End::Released) {
                return;
            }
            format!(
                "{calling} ({address}) -> {called}: {} instance{} ({} failed), {} bytes, {} echo{}, {:.2} s, {end}",
                tally.instances,
                if tally.instances == 1 { "" } else { "s" },
                tally.failed,
                tally.bytes,
                tally.echoes,
                if tally.echoes == 1 { "" } else { "es" },
                started.elapsed().as_secs_f64()
            )
        }
        // Refused by the access rules: always said, with who asked.
        Err(dicom_ul::association::Error::Rejected { association_rj, .. }) => format!(
            "{calling} ({address}) -> {called}: rejected: {}",
            association_rj.source
        ),
        Err(e) => {
            let (why, abort) = association::negotiation_failure(&e, deadline, config.acse_timeout);
            if let (Some(reason), Some(mut raw)) = (abort, raw) {
                let mut bytes = Vec::new();
                let pdu = Pdu::AbortRQ {
                    source: AbortRQSource::ServiceProvider(reason),
                };
                if write_pdu(&mut bytes, &pdu).is_ok() {
                    let _ = raw.write_all(&bytes);
                }
                let _ = raw.shutdown(Shutdown::Both);
            }
            if config.filing.reporting.verbosity == 0 {
                return;
            }
            format!("{address}: no association: {why}")
        }
    };
    let _ = io::stderr()
        .lock()
        .write_all(format!("{PROGRAM}: {line}\n").as_bytes());
}
