//! One association, once negotiated: its PDUs read as they come (each at
//! most the PDU length we announced; see [`super::wire`]), commands
//! answered, each C-STORE's data set streamed into a file that is filed
//! when it is complete, and only then acknowledged.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use dicom_ul::Pdu;
use dicom_ul::association::CloseSocket;
use dicom_ul::association::Error as UlError;
use dicom_ul::association::server::{ServerAssociation, TlsStream};
use dicom_ul::association::{Association, SyncAssociation};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, PDataValue, PDataValueType, PresentationContextResultReason,
    ReadError,
};

use super::deadline::Deadline;
use super::dimse::{self, Command};
use super::incoming::{Incoming, Meta, NextInstance};
use super::wire::{Fragment, Unit, Wire, WireError};
use crate::config::Config;
use crate::error_text::one_line;
use crate::pipeline::{self, RepackError, Repacked};
use crate::reading::ReadError as FileReadError;
use crate::report::Report;

/// A command set larger than this is not a command set.
const COMMAND_LIMIT: usize = 64 << 10;

/// Progress, for the deadline: a fragment that completes a command set or
/// a data set, a PDU other than P-DATA-TF, or fragments bringing the bytes
/// received since the last progress to this many. A peer must make progress
/// within the timeout of each wait (see [`serve`]).
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

/// Who is at the other end.
pub struct Peer<'a> {
    pub address: &'a str,
    pub ae_title: &'a str,
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

/// Serves `association` until it ends; `tally` counts what was done.
///
/// `timeout` is both the socket's read timeout and the progress deadline
/// (`None`: neither): each time the peer makes progress (see
/// [`MIN_PROGRESS`]) `deadline` is held while that is handled (an
/// instance filed), then armed again with `timeout`. A peer that sends
/// nothing, or too little, for that long is aborted, however it spreads
/// its bytes over the reads.
pub fn serve<S: Connection>(
    association: &mut ServerAssociation<S>,
    peer: &Peer,
    config: &Config,
    timeout: Option<Duration>,
    deadline: &Deadline,
    tally: &mut Tally,
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
    let mut filing = Filing {
        peer,
        config,
        tally,
        next_instance: NextInstance::default(),
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
                drop(filing);
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
        let (next, reply) = match state.take(fragment, transfer_syntax, &mut filing) {
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
            filing.next_instance.make_ready(config);
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

/// What filing an association's instances takes, beyond the instance.
struct Filing<'a> {
    peer: &'a Peer<'a>,
    config: &'a Config,
    tally: &'a mut Tally,
    next_instance: NextInstance,
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
        file: Result<Incoming, String>,
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
        filing: &mut Filing,
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
                Self::command(request, context, transfer_syntax, filing)
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
                },
                PDataValueType::Data,
            ) => {
                if context != expected {
                    return Err(format!(
                        "data set fragments on presentation contexts {expected} and {context}"
                    ));
                }
                if let Ok(incoming) = &mut file {
                    incoming.write(fragment.data);
                }
                if !fragment.ends_message {
                    return Ok((
                        State::Storing {
                            request,
                            context,
                            file,
                        },
                        None,
                    ));
                }
                let (status, comment) = file_away(&request, file, filing);
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
        filing: &mut Filing,
    ) -> Result<(State, Reply), String> {
        match (request.field, request.has_data_set) {
            (dimse::C_ECHO_RQ, false) => {
                filing.tally.echoes += 1;
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
                    source_ae_title: filing.peer.ae_title,
                };
                let datadir = &filing.config.datadir;
                let file = Incoming::start(datadir.as_std_path(), &meta)
                    .map_err(|e| format!("cannot write into the data dir {datadir}: {e}"));
                Ok((
                    State::Storing {
                        request,
                        context,
                        file,
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
/// none): the status and error comment to answer with.
fn file_away(
    request: &Command,
    file: Result<Incoming, String>,
    filing: &mut Filing,
) -> (u16, Option<String>) {
    let Filing {
        peer,
        config,
        tally,
        next_instance,
    } = filing;
    tally.instances += 1;
    let instance = request.sop_instance_uid.as_deref().unwrap_or("?");
    let name = format!("{}@{}/{instance}", peer.ae_title.trim(), peer.address);
    let result = match file {
        Ok(incoming) => {
            tally.bytes += incoming.bytes();
            match incoming.finish(next_instance) {
                Ok(file) => pipeline::repack_received(file, &received_name(instance), config),
                Err(e) => Err(RepackError::Read(FileReadError::Read(e))),
            }
        }
        Err(why) => {
            tally.failed += 1;
            report(&name, &Err(RepackError::Received(why.clone())), config);
            return (dimse::OUT_OF_RESOURCES, Some(why));
        }
    };
    report(&name, &result, config);
    match result {
        Ok(_) => (dimse::SUCCESS, None),
        Err(e) => {
            tally.failed += 1;
            let status = if matches!(&e, RepackError::Read(cause) | RepackError::Quarantined { cause, .. } | RepackError::QuarantineFailed { cause, .. } if cause.is_bad_content())
            {
                dimse::CANNOT_UNDERSTAND
            } else {
                dimse::OUT_OF_RESOURCES
            };
            (status, Some(e.to_string()))
        }
    }
}

/// The name a received file is kept under in the quarantine.
fn received_name(instance: &str) -> String {
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

fn report(name: &str, result: &Result<Repacked, RepackError>, config: &Config) {
    let report = Report::of(Path::new(name), result, config.verbosity, config.ndjson);
    report.print_record();
    report.print_message();
}
