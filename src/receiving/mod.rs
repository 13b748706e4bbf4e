//! rx-listen: a DICOM storage SCP that files every instance it receives
//! through the same pipeline as rx-repack, in process, as it streams in.
//!
//! [`options`] is the command line; [`dimse`] the command sets; the
//! [`association`] loop reads PDUs and streams each data set into an
//! [`incoming`] file; this module accepts connections, one thread per
//! association up to the limit, and stops them on a signal.

pub mod access;
pub mod association;
pub mod dimse;
pub mod incoming;
pub mod options;
mod storage_classes;
mod tls;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::association::Association;
use dicom_ul::association::server::{ServerAssociation, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu, write_pdu,
};

use crate::error_text::one_line;
use access::Gate;
use association::{Connection, End, Peer, Tally};
use options::ListenOptions;
use storage_classes::STORAGE_SOP_CLASSES;

/// How often the accepting loop looks for a stop signal.
const POLL: Duration = Duration::from_millis(50);

/// The associations being served: their sockets, to shut them down when
/// the grace period after a stop signal is over.
#[derive(Default)]
struct InFlight {
    next: AtomicU64,
    sockets: Mutex<HashMap<u64, TcpStream>>,
}

impl InFlight {
    fn len(&self) -> usize {
        self.sockets.lock().map_or(0, |s| s.len())
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
    std::thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            let (stream, address) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(e) => {
                    eprintln!("rx-listen: cannot accept a connection: {e}");
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_nodelay(true);
            if in_flight.len() >= options.max_associations {
                scope.spawn(move || refuse_busy(stream, address, options));
                continue;
            }
            let id = in_flight.next.fetch_add(1, Ordering::Relaxed);
            if let (Ok(clone), Ok(mut sockets)) = (stream.try_clone(), in_flight.sockets.lock()) {
                sockets.insert(id, clone);
            }
            let in_flight = Arc::clone(&in_flight);
            scope.spawn(move || {
                associate(stream, address, options);
                if let Ok(mut sockets) = in_flight.sockets.lock() {
                    sockets.remove(&id);
                }
            });
        }
        // Stopping: no new association; those in flight get the grace
        // period, then their connections are shut down.
        drop(listener);
        let deadline = Instant::now() + options.grace;
        while in_flight.len() > 0 && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if let Ok(sockets) = in_flight.sockets.lock() {
            for socket in sockets.values() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    });
    Ok(())
}

/// Negotiates and serves one association (over TLS when configured), then
/// says how it went.
fn associate(stream: TcpStream, address: SocketAddr, options: &ListenOptions) {
    let started = Instant::now();
    let _ = stream.set_write_timeout(options.socket_timeout);
    let gate = Gate::new(&options.access, address.ip());
    let mut negotiation = ServerAssociationOptions::new()
        .ae_access_control(&gate)
        .ae_title(options.ae_title.clone())
        .max_pdu_length(options.max_pdu)
        .strict(true)
        .read_timeout(options.acse_timeout)
        .with_abstract_syntax(uids::VERIFICATION);
    for class in STORAGE_SOP_CLASSES {
        negotiation = negotiation.with_abstract_syntax(class);
    }
    let served = match &options.tls {
        Some(tls) => negotiation
            .tls_config(Arc::clone(tls))
            .establish_tls(stream)
            .map(|association| serve(association, address, options)),
        None => negotiation
            .establish(stream)
            .map(|association| serve(association, address, options)),
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
            if options.config.verbosity == 0 {
                return;
            }
            format!("{address}: no association: {}", one_line(&e))
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
) -> ((String, String), Tally, String) {
    // After negotiation, the socket timeout (DIMSE messages may wait
    // longer: their own timeout is set per message by the loop).
    let _ = association
        .inner_stream()
        .tcp()
        .set_read_timeout(options.socket_timeout);
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

/// Rejects an association when the limit is reached: transient, "local
/// limit exceeded", so that the peer tries again later.
fn refuse_busy(mut stream: TcpStream, address: SocketAddr, options: &ListenOptions) {
    // The request is read first (for a second at most), so that the
    // rejection is not lost to a connection reset.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = [0u8; 4096];
    let _ = io::Read::read(&mut stream, &mut request);
    let rejection = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut bytes = Vec::new();
    if write_pdu(&mut bytes, &rejection).is_ok() {
        let _ = stream.write_all(&bytes);
    }
    let _ = stream.shutdown(Shutdown::Both);
    if options.config.verbosity >= 1 {
        eprintln!(
            "rx-listen: {address}: rejected: {} associations already",
            options.max_associations
        );
    }
}
