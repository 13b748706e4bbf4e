//! Connections beyond `--max-associations`: rejected at once by the
//! accepting thread, without a thread of their own, so that a flood of
//! connections costs a file descriptor each for a second at most.
//!
//! The A-ASSOCIATE-RJ (transient, local limit exceeded) is written as soon
//! as the connection is accepted, without waiting for the request, and
//! our side is closed for writing. Closing the socket while the peer's
//! request sits unread in it would send a reset, which may destroy the
//! rejection before the peer reads it; so the connection lingers, its
//! input read and dropped, until the peer closes it or for [`LINGER`]
//! at most. At most [`MAX_LINGERING`] linger; beyond that the oldest is
//! closed at once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu, write_pdu,
};

/// How long a rejected connection is kept open for its peer to read the
/// rejection.
const LINGER: Duration = Duration::from_secs(1);
/// Rejected connections kept open at once.
const MAX_LINGERING: usize = 256;
/// Bytes read off one rejected connection per round, at most.
const DRAIN_PER_ROUND: usize = 64 << 10;
/// How often the lingering connections are looked at.
const ROUND: Duration = Duration::from_millis(20);

/// The rejected connections still open.
pub struct Refusals {
    rejection: Vec<u8>,
    lingering: VecDeque<(TcpStream, Instant)>,
    last_round: Instant,
}

impl Default for Refusals {
    fn default() -> Refusals {
        let rejection = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        });
        let mut bytes = Vec::new();
        // Writing a fixed 10-byte PDU into a Vec cannot fail.
        let _ = write_pdu(&mut bytes, &rejection);
        Refusals {
            rejection: bytes,
            lingering: VecDeque::new(),
            last_round: Instant::now(),
        }
    }
}

impl Refusals {
    /// Rejects the association `stream` would request; never blocks.
    pub fn refuse(&mut self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        // Ten bytes into the empty send buffer of a new connection.
        let _ = (&stream).write(&self.rejection);
        let _ = stream.shutdown(Shutdown::Write);
        if self.lingering.len() >= MAX_LINGERING {
            self.lingering.pop_front();
        }
        self.lingering.push_back((stream, Instant::now() + LINGER));
        self.round();
    }

    /// Reads and drops what the peers of lingering connections sent;
    /// closes those their peer closed, and those past their time.
    pub fn round(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_round) < ROUND {
            return;
        }
        self.last_round = now;
        let mut sink = [0u8; 4096];
        self.lingering.retain(|(stream, until)| {
            let mut drained = 0;
            while drained < DRAIN_PER_ROUND {
                match (&*stream).read(&mut sink) {
                    Ok(0) => return false,
                    Ok(n) => drained += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            now < *until
        });
    }

    /// Whether no rejected connection is still open.
    pub fn is_empty(&self) -> bool {
        self.lingering.is_empty()
    }
}
