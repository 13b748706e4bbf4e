//! rx-listen: a DICOM storage SCP that files every instance it receives
//! through the same pipeline as rx-repack, in process, as it streams in.
//!
//! [`options`] is the command line; [`dimse`] the command sets; the
//! [`association`] loop takes what the peer sends from [`wire`] and
//! streams each data set into an [`incoming`] file; this module accepts
//! connections, one thread per association up to the limit, and stops
//! them on a signal.

pub mod access;
pub mod association;
mod busy;
pub mod deadline;
pub mod dimse;
pub mod incoming;
mod opening;
pub mod options;
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
use dicom_ul::association::Association;
use dicom_ul::association::server::{ServerAssociation, ServerAssociationOptions};
use dicom_ul::pdu::{AbortRQSource, Pdu, write_pdu};

use access::Gate;
use association::{Connection, End, Peer, Tally};
use busy::Refusals;
use deadline::Deadline;
use options::ListenOptions;
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

/// Listens until `stop` is set, then lets the associations in flight
/// finish within the grace period, aborts the rest, and returns.
pub fn listen(options: &ListenOptions, stop: &AtomicBool) -> io::Result<()> {
    let listener = TcpListener::bind(options.address)?;
    listener.set_nonblocking(true)?;
    let in_flight = Arc::new(InFlight::default());
    if options.config.verbosity >= 1 {
        eprintln!(
            "rx-listen: listening on {} as {}, filing into {}",
            listener.local_addr()?,
            options.ae_title,
            options.config.datadir
        );
    }
    let mut refusals = Refusals::default();
    std::thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            in_flight.cut_overdue();
            refusals.round();
            let (stream, address) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let pause = if refusals.is_empty() { POLL } else { POLL / 5 };
                    std::thread::sleep(pause);
                    continue;
                }
                Err(e) => {
                    eprintln!("rx-listen: cannot accept a connection: {e}");
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if in_flight.len() >= options.max_associations {
                refusals.refuse(stream);
                if options.config.verbosity >= 1 {
                    eprintln!(
                        "rx-listen: {address}: rejected: {} associations already",
                        options.max_associations
                    );
                }
                continue;
            }
            let _ = stream.set_nonblocking(false);
            let id = in_flight.next.fetch_add(1, Ordering::Relaxed);
            let deadline = Arc::new(Deadline::default());
            deadline.arm(Some(options.acse_timeout));
            if let (Ok(clone), Ok(mut sockets)) = (stream.try_clone(), in_flight.sockets.lock()) {
                sockets.insert(id, (clone, Arc::clone(&deadline)));
            }
            let in_flight = Arc::clone(&in_flight);
            scope.spawn(move || {
                associate(stream, address, options, &deadline);
                if let Ok(mut sockets) = in_flight.sockets.lock() {
                    sockets.remove(&id);
                }
            });
        }
        // Stopping: no new association; those in flight get the grace
        // period, then their connections are shut down.
        drop(listener);
        if options.config.verbosity >= 1 {
            eprintln!(
                "rx-listen: stopping: {} association(s) in flight get {} s to finish",
                in_flight.len(),
                options.grace.as_secs()
            );
        }
        let deadline = Instant::now() + options.grace;
        while in_flight.len() > 0 && Instant::now() < deadline {
            in_flight.cut_overdue();
            std::thread::sleep(POLL);
        }
        if let Ok(sockets) = in_flight.sockets.lock() {
            if !sockets.is_empty() {
                eprintln!(
                    "rx-listen: grace period over: {} association(s) cut, their unacknowledged instances not kept",
                    sockets.len()
                );
            }
            for (socket, _) in sockets.values() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    });
    Ok(())
}

/// Serves one connection already accepted, as rx-listen serves each:
/// negotiates the association, receives and files what it brings, and
/// prints its line on stderr; returns when it ends. No deadline watches
/// it: its timeouts are the socket's (for tests and fuzzing; `listen`
/// also cuts a peer that makes no progress).
pub fn serve_connection(stream: TcpStream, options: &ListenOptions) {
    let address = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = stream.set_nodelay(true);
    associate(stream, address, options, &Deadline::default());
}

/// Negotiates and serves one association (over TLS when configured), then
/// says how it went. `deadline` is armed with the ACSE timeout: the whole
/// request must arrive within it.
fn associate(stream: TcpStream, address: SocketAddr, options: &ListenOptions, deadline: &Deadline) {
    let started = Instant::now();
    if let Err(why) = opening::wait_for_first_message(&stream, options.acse_timeout) {
        if options.config.verbosity >= 1 {
            let why = match deadline.expired() {
                true => association::no_request_within(options.acse_timeout),
                false => why,
            };
            eprintln!("rx-listen: {address}: no association: {why}");
        }
        return;
    }
    // To answer a request dicom-ul could not read with an A-ABORT; on
    // plain TCP only (under TLS, bytes of ours would be noise).
    let raw = options
        .tls
        .is_none()
        .then(|| stream.try_clone().ok())
        .flatten();
    let gate = Gate::new(&options.access, address.ip());
    let mut negotiation = ServerAssociationOptions::new()
        .ae_access_control(&gate)
        .ae_title(options.ae_title.clone())
        .max_pdu_length(options.max_pdu)
        .strict(true)
        .read_timeout(options.acse_timeout)
        .write_timeout(options.acse_timeout)
        .with_abstract_syntax(uids::VERIFICATION);
    for class in STORAGE_SOP_CLASSES {
        negotiation = negotiation.with_abstract_syntax(class);
    }
    let served = match &options.tls {
        Some(tls) => negotiation
            .tls_config(Arc::clone(tls))
            .establish_tls(stream)
            .map(|association| serve(association, address, options, deadline)),
        None => negotiation
            .establish(stream)
            .map(|association| serve(association, address, options, deadline)),
    };
    let (titles, outcome) = match served {
        Ok((titles, tally, how)) => (titles, Ok((tally, how))),
        Err(e) => (gate.titles().unwrap_or_default(), Err(e)),
    };
    let (calling, called) = (titles.0.trim(), titles.1.trim());
    let line = match outcome {
        Ok((tally, how)) => {
            if options.config.verbosity == 0 && how == "released" {
                return;
            }
            format!(
                "{calling} ({address}) -> {called}: {} instance{} ({} failed), {} bytes, {} echo{}, {:.2} s, {how}",
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
            let (why, abort) = association::negotiation_failure(&e, deadline, options.acse_timeout);
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
            if options.config.verbosity == 0 {
                return;
            }
            format!("{address}: no association: {why}")
        }
    };
    let _ = io::stderr()
        .lock()
        .write_all(format!("rx-listen: {line}\n").as_bytes());
}

/// Serves a negotiated association until it ends: its AE titles (calling,
/// called), what it did, and how it ended.
fn serve<S: Connection>(
    mut association: ServerAssociation<S>,
    address: SocketAddr,
    options: &ListenOptions,
    deadline: &Deadline,
) -> ((String, String), Tally, String) {
    // After negotiation, the socket timeout (DIMSE messages may wait
    // longer: their own timeout is set per message by the loop).
    let socket = association.inner_stream().tcp();
    let _ = socket.set_read_timeout(options.socket_timeout);
    let _ = socket.set_write_timeout(options.socket_timeout);
    let calling = association.peer_ae_title().to_string();
    let called = association.called_ae_title().to_string();
    let peer = Peer {
        address: &address.to_string(),
        ae_title: &calling,
    };
    let mut tally = Tally::default();
    let timeout = match (options.dimse_timeout, options.socket_timeout) {
        (Some(dimse), Some(socket)) => Some(dimse.min(socket)),
        (dimse, socket) => dimse.or(socket),
    };
    let end = association::serve(
        &mut association,
        &peer,
        &options.config,
        timeout,
        deadline,
        &mut tally,
    );
    let how = match end {
        End::Released => "released".to_string(),
        End::AbortedByPeer => "aborted by the peer".to_string(),
        End::Aborted(why) => {
            let _ = association.abort();
            format!("aborted: {why}")
        }
        End::Lost(why) => format!("lost: {why}"),
    };
    ((calling, called), tally, how)
}
