//! One association, once negotiated: its PDUs read as they come (each at
//! most the PDU length we announced; see [`super::wire`]), commands
//! answered, each C-STORE's data set streamed into a file that is filed
//! when it is complete, and only then acknowledged.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use dicom_ul::Pdu;
use dicom_ul::association::CloseSocket;
use dicom_ul::association::Error as UlError;
use dicom_ul::association::server::{ServerAssociation, TlsStream};
use dicom_ul::association::{Association, SyncAssociation};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, PDataValue, PDataValueType, PresentationContextResultReason,
    ReadError,
};

use super::config::ListenConfig;
use super::deadline::Deadline;
use super::dimse::{self, Command};
use super::downstream::{Delivered, Downstream};
use super::instance_file::{InstanceFile, Meta, NextInstance};
use super::metrics::{METRICS, Outcome};
use super::wire::{Fragment, Unit, Wire, WireError};
use crate::error_text::one_line;
use crate::filing::Filing;
use crate::pipeline::{self, Fault, RepackError};
use crate::placing::{Origin, PlaceError};
use crate::report::Report;
use crate::syncing::Coming;

/// A command set larger than this is not a command set.
const COMMAND_LIMIT: usize = 64 << 10;

/// Progress, for the deadline: a fragment that completes a command set or
/// a data set, a PDU other than P-DATA-TF, or fragments bringing the bytes
/// received since the last progress to this many. A peer must make progress
/// within the timeout of each wait (see [`receive`]).
pub const MIN_PROGRESS: usize = 4096;

/// The longest reason a log line gives (a peer's bytes may end up in
/// an error's text).
const REASON_MAX: usize = 200;

/// What an association did, for its log line.
#[derive(Debug, Default)]
pub struct Tally {
    pub instances: u64,
    pub failed: u64,
    pub bytes: u64,
    pub echoes: u64,
}

/// How an association ended.
#[derive(Debug)]
pub enum End {
    /// Released by the peer, as it should.
    Released,
    /// Aborted by the peer.
    AbortedByPeer,
    /// Aborted by us, for the reason given (a protocol violation).
    Aborted(String),
    /// The connection failed or went silent.
    Lost(String),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            End::Released => f.write_str("released"),
            End::AbortedByPeer => f.write_str("aborted by the peer"),
            End::Aborted(why) => write!(f, "aborted: {why}"),
            End::Lost(why) => write!(f, "lost: {why}"),
        }
    }
}

/// Who is at the other end.
pub struct Peer<'a> {
    pub address: &'a str,
    pub ae_title: &'a str,
}

/// What serving an association came to.
pub struct Served {
    /// The calling and called AE titles.
    pub titles: (String, String),
    pub tally: Tally,
    pub end: End,
}

/// What the loop needs of a connection (plain TCP, or TLS over it) beyond
/// reading and writing: the socket, for its timeouts.
pub trait Connection: Read + Write + CloseSocket {
    fn tcp(&self) -> &TcpStream;
}

impl Connection for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Connection for TlsStream {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// Serves a negotiated association with the peer at `address` until it
/// ends, and aborts it if we end it; tells `downstream` what it
/// delivered.
pub fn serve<S: Connection>(
    mut association: ServerAssociation<S>,
    address: SocketAddr,
    config: &ListenConfig,
    deadline: &Deadline,
    downstream: Downstream,
) -> Served {
    // After negotiation, the socket timeout (DIMSE messages may wait
    // longer: their own timeout is set per message by the loop).
    let socket = association.inner_stream().tcp();
    let _ = socket.set_read_timeout(config.socket_timeout);
    let _ = socket.set_write_timeout(config.socket_timeout);
    let calling = association.peer_ae_title().to_string();
    let called = association.called_ae_title().to_string();
    let peer = Peer {
        address: &address.to_string(),
        ae_title: &calling,
    };
    let mut delivered = downstream.association(&calling, &called, peer.address);
    let mut tally = Tally::default();
    let timeout = match (config.dimse_timeout, config.socket_timeout) {
        (Some(dimse), Some(socket)) => Some(dimse.min(socket)),
        (dimse, socket) => dimse.or(socket),
    };
    let end = receive(
        &mut association,
        &peer,
        config,
        timeout,
        deadline,
        &mut tally,
        &mut delivered,
    );
    if let End::Aborted(_) = end {
        let _ = association.abort();
    }
    delivered.ended(&end);
    Served {
        titles: (calling, called),
        tally,
        end,
    }
}

/// Receives what the peer of `association` sends until the association
/// ends; `tally` counts what was done, `delivered` tells downstream.
///
/// `timeout` is both the socket's read timeout and the progress deadline
/// (`None`: neither): each time the peer makes progress (see
/// [`MIN_PROGRESS`]) `deadline` is held while that is handled (an
/// instance filed), then armed again with `timeout`. A peer that sends
/// nothing, or too little, for that long is aborted, however it spreads
/// its bytes over the reads.
fn receive<S: Connection>(
    association: &mut ServerAssociation<S>,
    peer: &Peer,
    config: &ListenConfig,
    timeout: Option<Duration>,
    deadline: &Deadline,
    tally: &mut Tally,
    delivered: &mut Delivered,
) -> End {
    let contexts: HashMap<u8, String> = association
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| (pc.id, pc.transfer_syntax.clone()))
        .collect();
    if let Err(e) = association.inner_stream().tcp().set_read_timeout(timeout) {
        return End::Lost(e.to_string());
    }
    let timed_out = || End::Aborted(format!("no progress within {}", seconds(timeout)));
    if !deadline.arm(timeout) {
        return timed_out();
    }
    let mut state = State::Idle {
        command: Vec::new(),
    };
    let mut session = Session {
        peer,
        config,
        tally,
        next_instance: NextInstance::default(),
        delivered,
    };
    let max_pdu = association.local_max_pdu_length();
    let (_, already_read) = association.get_mut();
    let mut wire = Wire::new(max_pdu, already_read);
    already_read.clear();
    // Fragment bytes received since the last progress.
    let mut unprogressed = 0usize;
    loop {
        let unit = match wire.next(association.inner_stream()) {
            Ok(unit) => unit,
            Err(_) if deadline.expired() => return timed_out(),
            Err(e) => return receive_failure(e, timeout),
        };
        let progress = match &unit {
            Unit::Fragment(fragment) => {
                unprogressed += fragment.data.len();
                unprogressed >= MIN_PROGRESS || fragment.ends_message
            }
            Unit::Pdu(_) => true,
        };
        if progress {
            unprogressed = 0;
            if !deadline.hold() {
                return timed_out();
            }
        }
        let fragment = match unit {
            Unit::Fragment(fragment) => fragment,
            Unit::Pdu(Pdu::ReleaseRQ) => {
                // What was made ahead for a next instance is given back
                // before the peer learns that the association is over.
                drop(session);
                let _ = association.send(&Pdu::ReleaseRP);
                return End::Released;
            }
            Unit::Pdu(Pdu::AbortRQ { .. }) => return End::AbortedByPeer,
            Unit::Pdu(other) => {
                return End::Aborted(format!("unexpected {}", pdu_name(&other)));
            }
        };
        let context = fragment.context;
        let Some(transfer_syntax) = contexts.get(&context) else {
            return End::Aborted(format!(
                "data for presentation context {context}, which was not accepted"
            ));
        };
        let (next, reply) = match state.take(fragment, transfer_syntax, &mut session) {
            Ok(step) => step,
            Err(why) => return End::Aborted(why),
        };
        state = next;
        if let Some(command) = reply {
            let pdu = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: command,
                }],
            };
            if let Err(e) = association.send(&pdu) {
                return End::Lost(brief(one_line(&e)));
            }
            // While the peer prepares its next request.
            session.next_instance.make_ready(&config.filing);
        }
        if progress && !deadline.arm(timeout) {
            return timed_out();
        }
    }
}

/// How the association ends when nothing more can be read.
fn receive_failure(error: WireError, timeout: Option<Duration>) -> End {
    match error {
        WireError::Read(e) if is_timeout(&e) => {
            End::Aborted(format!("silent for {}", seconds(timeout)))
        }
        WireError::Read(e) => End::Lost(brief(one_line(&e))),
        WireError::Closed => End::Lost("the peer closed the connection".into()),
        WireError::Malformed(why) => End::Aborted(brief(why)),
    }
}

/// Why a connection was dropped whose request did not come in time.
pub fn no_request_within(acse_timeout: Duration) -> String {
    format!(
        "no whole A-ASSOCIATE-RQ within the ACSE timeout ({})",
        seconds(Some(acse_timeout))
    )
}

/// Why an association could not be negotiated (for the log line), and
/// the A-ABORT to send when dicom-ul sent nothing (a request it could
/// not read). `deadline` tells whether the ACSE timeout cut the
/// connection.
pub fn negotiation_failure(
    error: &UlError,
    deadline: &Deadline,
    acse_timeout: Duration,
) -> (String, Option<AbortRQServiceProviderReason>) {
    if deadline.expired() {
        return (no_request_within(acse_timeout), None);
    }
    match error {
        UlError::ReceivePdu {
            source: ReadError::ReadPdu { source, .. },
            ..
        } if is_timeout(source) => (
            format!(
                "silent for the ACSE timeout ({})",
                seconds(Some(acse_timeout))
            ),
            None,
        ),
        UlError::ReceivePdu {
            source: ReadError::ReadPdu { .. },
            ..
        } => (brief(one_line(error)), None),
        UlError::ReceivePdu { .. } => (
            format!("{} (aborted)", brief(one_line(error))),
            Some(AbortRQServiceProviderReason::InvalidPduParameter),
        ),
        UlError::ConnectionClosed { .. } => ("the peer closed the connection".into(), None),
        // dicom-ul answered these with an A-ABORT.
        UlError::UnexpectedPdu { pdu, .. } | UlError::UnknownPdu { pdu, .. } => (
            format!("{} before the association (aborted)", pdu_name(pdu)),
            None,
        ),
        UlError::Aborted { .. } => ("released before it was associated".into(), None),
        _ => (brief(one_line(error)), None),
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn seconds(timeout: Option<Duration>) -> String {
    match timeout {
        Some(timeout) => format!("{} s", timeout.as_secs_f64()),
        None => "ever".into(),
    }
}

/// A PDU's name, without its content.
pub fn pdu_name(pdu: &Pdu) -> String {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ".into(),
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC".into(),
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ".into(),
        Pdu::PData { .. } => "P-DATA-TF".into(),
        Pdu::ReleaseRQ => "A-RELEASE-RQ".into(),
        Pdu::ReleaseRP => "A-RELEASE-RP".into(),
        Pdu::AbortRQ { .. } => "A-ABORT".into(),
        Pdu::Unknown { pdu_type, .. } => format!("PDU type {pdu_type:#04x}"),
    }
}

/// `text` cut to [`REASON_MAX`] characters.
fn brief(text: String) -> String {
    match text.char_indices().nth(REASON_MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// What receiving an association's instances takes, beyond the instance.
struct Session<'a, 'e> {
    peer: &'a Peer<'a>,
    config: &'a ListenConfig,
    tally: &'a mut Tally,
    next_instance: NextInstance,
    /// The series delivered, when series events are on.
    delivered: &'a mut Delivered<'e>,
}

/// Where an association is between PDVs.
enum State {
    /// Between messages, or reading a command set.
    Idle { command: Vec<u8> },
    /// Reading the data set of a C-STORE request.
    Storing {
        request: Command,
        context: u8,
        /// The file it goes into, or why there is none (the data is then
        /// read and dropped, and the failure answered).
        file: Result<InstanceFile, RepackError>,
        /// With `--fsync always`, its filing's count at the group commit's
        /// gate, from now (see [`crate::syncing`]).
        durable: Option<Coming>,
    },
}

/// A command set to send back (on the presentation context of the
/// fragment that asked for it).
type Reply = Option<Vec<u8>>;

impl State {
    /// Takes one fragment: returns the next state and the reply to send, or
    /// why the association must be aborted.
    fn take(
        self,
        fragment: Fragment,
        transfer_syntax: &str,
        session: &mut Session,
    ) -> Result<(State, Reply), String> {
        let context = fragment.context;
        match (self, fragment.kind) {
            (State::Idle { mut command }, PDataValueType::Command) => {
                if command.len() + fragment.data.len() > COMMAND_LIMIT {
                    return Err(format!("a command set of more than {COMMAND_LIMIT} bytes"));
                }
                command.extend_from_slice(fragment.data);
                if !fragment.ends_message {
                    return Ok((State::Idle { command }, None));
                }
                let request = dimse::parse(&command)?;
                Self::command(request, context, transfer_syntax, session)
            }
            (State::Idle { .. }, PDataValueType::Data) => {
                Err("a data set without a command".into())
            }
            (State::Storing { .. }, PDataValueType::Command) => {
                Err("a command in the middle of a data set".into())
            }
            (
                State::Storing {
                    request,
                    context: expected,
                    mut file,
                    durable,
                },
                PDataValueType::Data,
            ) => {
                if context != expected {
                    return Err(format!(
                        "data set fragments on presentation contexts {expected} and {context}"
                    ));
                }
                if let Ok(instance_file) = &mut file {
                    instance_file.write(fragment.data);
                }
                if !fragment.ends_message {
                    return Ok((
                        State::Storing {
                            request,
                            context,
                            file,
                            durable,
                        },
                        None,
                    ));
                }
                let (status, comment) = store(&request, file, durable, session, Instant::now());
                let reply =
                    dimse::response(&request, dimse::C_STORE_RSP, status, comment.as_deref());
                Ok((
                    State::Idle {
                        command: Vec::new(),
                    },
                    Some(reply),
                ))
            }
        }
    }

    /// A complete command set.
    fn command(
        request: Command,
        context: u8,
        transfer_syntax: &str,
        session: &mut Session,
    ) -> Result<(State, Reply), String> {
        match (request.field, request.has_data_set) {
            (dimse::C_ECHO_RQ, false) => {
                session.tally.echoes += 1;
                let reply = dimse::response(&request, dimse::C_ECHO_RSP, dimse::SUCCESS, None);
                Ok((
                    State::Idle {
                        command: Vec::new(),
                    },
                    Some(reply),
                ))
            }
            (dimse::C_STORE_RQ, true) => {
                let given = |uid: &Option<String>| uid.clone().filter(|uid| !uid.is_empty());
                let Some(class) = given(&request.sop_class_uid) else {
                    return Err("a C-STORE request without its affected SOP class UID".into());
                };
                let Some(instance) = given(&request.sop_instance_uid) else {
                    return Err("a C-STORE request without its affected SOP instance UID".into());
                };
                let meta = Meta {
                    transfer_syntax,
                    sop_class_uid: &class,
                    sop_instance_uid: &instance,
                    source_ae_title: session.peer.ae_title,
                };
                let filing = &session.config.filing;
                let datadir = filing.datadir.as_std_path();
                let file = session
                    .config
                    .floor
                    .check()
                    .map_err(RepackError::NoRoom)
                    .and_then(|()| {
                        InstanceFile::start(datadir, &meta, &mut session.next_instance)
                            .map_err(|source| data_dir_failure(filing, source))
                    });
                let durable = (file.is_ok() && session.config.durable).then(Coming::start);
                Ok((
                    State::Storing {
                        request,
                        context,
                        file,
                        durable,
                    },
                    None,
                ))
            }
            (field, data) => Err(format!(
                "command {field:#06x} ({}) is not served here",
                if data {
                    "with a data set"
                } else {
                    "without a data set"
                }
            )),
        }
    }
}

/// Files the instance `request` sent into `file` (or answers why there is
/// none), durably when `durable` is given, whose last fragment came at
/// `arrived`: the status and error comment to answer with.
fn store(
    request: &Command,
    file: Result<InstanceFile, RepackError>,
    durable: Option<Coming>,
    session: &mut Session,
    arrived: Instant,
) -> (u16, Option<String>) {
    let Session {
        peer,
        config,
        tally,
        next_instance,
        delivered,
    } = session;
    tally.instances += 1;
    let instance = request.sop_instance_uid.as_deref().unwrap_or("?");
    let result = file.and_then(|instance_file| {
        tally.bytes += instance_file.bytes();
        METRICS.received(instance_file.bytes());
        let file = instance_file
            .finish(next_instance)
            .map_err(|source| data_dir_failure(&config.filing, source))?;
        let origin = Origin::Received {
            file,
            name: quarantine_name(instance),
            durable,
            record_file: next_instance.take_record_file(),
        };
        pipeline::repack(origin, &config.filing)
    });
    let src = format!("{}@{}/{instance}", peer.ae_title.trim(), peer.address);
    let report = Report::of(&config.filing.reporting, &src, &result);
    report.print_record();
    report.print_message();
    let told = match &result {
        Ok(repacked) => delivered.kept(repacked),
        Err(_) => Ok(()),
    };
    let fsync = result.as_ref().ok().and_then(|repacked| repacked.fsync);
    let (status, comment) = match (result, told) {
        (Ok(_), Ok(())) => (dimse::SUCCESS, None),
        (Ok(_), Err(e)) => {
            // Filed, but its series would never be announced: not
            // acknowledged, so that the sender tries again.
            tally.failed += 1;
            let why = format!("cannot record its series in the log dir: {e}");
            eprintln!("{}: error: {src}: {why}", config.filing.reporting.program);
            (dimse::failure_status(Fault::Resources), Some(why))
        }
        (Err(e), _) => {
            tally.failed += 1;
            let why = e.to_string();
            delivered.lost(&e, &why);
            (dimse::failure_status(e.fault()), Some(why))
        }
    };
    METRICS.answered(Outcome::of(status), arrived.elapsed(), fsync);
    (status, comment)
}

/// The data dir of `filing` failed to take an instance's bytes.
fn data_dir_failure(filing: &Filing, source: io::Error) -> RepackError {
    RepackError::Place(PlaceError::DataDir {
        datadir: filing.datadir.clone().into_std_path_buf(),
        source,
    })
}

/// The name a received file is kept under in the quarantine.
fn quarantine_name(instance: &str) -> String {
    let safe: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("{safe}.dcm")
}
