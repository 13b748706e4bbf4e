//! Waiting for the start of a peer's first message before dicom-ul reads
//! it.
//!
//! With its `sync-tls` feature (which our TLS needs), dicom-ul 0.10.1
//! spins forever on a connection whose bytes end inside a TLS record:
//! a TLS handshake reads until the ClientHello is whole, and a plain
//! negotiation that fails replays what it read through a TLS acceptor (to
//! tell a TLS client on a plain port); when the bytes end first, rustls
//! reads nothing, asks for more, and the loop never ends. A peer that
//! connects and closes, or sends half a ClientHello, would take a CPU for
//! good. So a connection is handed over only once its first bytes are
//! safe: at least a PDU header that is not a TLS record (rustls refuses
//! its first byte at once), or a whole first TLS record holding a whole
//! ClientHello.
//!
//! The fix belongs in dicom-ul (`accept_tls` should stop when `read_tls`
//! reads nothing); once a release has it, this module can go.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::association::no_request_within;

/// A PDU's header: type, reserved byte, 4-byte length.
const PDU_HEADER: usize = 6;
/// A TLS record's header: content type, version, 2-byte length.
const RECORD_HEADER: usize = 5;
/// The largest TLS record (2^14 bytes of plaintext, plus what TLS 1.2
/// allows for compression and protection).
const RECORD_LIMIT: usize = (1 << 14) + 2048;
/// TLS's content types: change cipher spec, alert, handshake, data.
const TLS_CONTENT_TYPES: std::ops::RangeInclusive<u8> = 0x14..=0x17;
const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
/// How long to wait between looks while the first bytes are incomplete.
const LOOK_AGAIN: Duration = Duration::from_millis(5);

/// Waits, at most `within`, until the first bytes of `stream` are safe to
/// hand to dicom-ul; or says why the connection is to be dropped. The
/// bytes stay in the socket (they are only peeked at).
pub fn wait_for_first_message(stream: &TcpStream, within: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut first = vec![0u8; RECORD_HEADER + RECORD_LIMIT];
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(no_request_within(within));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let got = match stream.peek(&mut first) {
            Ok(0) => return Err("the peer closed the connection".into()),
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        match verdict(&first[..got]) {
            Verdict::Safe => return Ok(()),
            Verdict::Refused(why) => return Err(why),
            Verdict::Incomplete => {
                if closed_within(stream, LOOK_AGAIN) {
                    return Err("the peer closed the connection inside its first message".into());
                }
            }
        }
    }
}

/// Waits `pause` for the peer to close its side; whether it did. (A peek
/// cannot tell: it returns the bytes still unread, closed or not.)
fn closed_within(stream: &TcpStream, pause: Duration) -> bool {
    let mut watched = [PollFd::new(stream, PollFlags::RDHUP)];
    let pause = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(pause.subsec_nanos()),
    };
    match poll(&mut watched, Some(&pause)) {
        Ok(_) => watched[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
        Err(_) => false,
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Safe,
    Incomplete,
    Refused(String),
}

/// Whether the first bytes of a connection, `bytes`, are safe to hand over.
fn verdict(bytes: &[u8]) -> Verdict {
    let Some(&kind) = bytes.first() else {
        return Verdict::Incomplete;
    };
    if !TLS_CONTENT_TYPES.contains(&kind) {
        return match bytes.len() >= PDU_HEADER {
            true => Verdict::Safe,
            false => Verdict::Incomplete,
        };
    }
    if bytes.len() < RECORD_HEADER {
        return Verdict::Incomplete;
    }
    let record = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    if record > RECORD_LIMIT {
        return Verdict::Refused(format!("a TLS record of {record} bytes"));
    }
    let Some(body) = bytes.get(RECORD_HEADER..RECORD_HEADER + record) else {
        return Verdict::Incomplete;
    };
    // A ClientHello split over records would be read past this one.
    let whole_hello = kind == HANDSHAKE
        && body.len() >= 4
        && body[0] == CLIENT_HELLO
        && 4 + u32::from_be_bytes([0, body[1], body[2], body[3]]) as usize <= body.len();
    match whole_hello {
        true => Verdict::Safe,
        false => Verdict::Refused("a first TLS record without a whole ClientHello".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdu_header_is_enough_unless_it_is_a_tls_record() {
        assert_eq!(verdict(&[]), Verdict::Incomplete);
        assert_eq!(verdict(&[1, 0, 0, 0]), Verdict::Incomplete);
        assert_eq!(verdict(&[1, 0, 0, 0, 0, 0xCD]), Verdict::Safe);
        assert_eq!(verdict(b"GET / HTTP/1.1"), Verdict::Safe);
        // A TLS record header declaring more than has come.
        assert_eq!(verdict(&[0x16, 3, 1, 0, 10, 1, 0]), Verdict::Incomplete);
    }

    #[test]
    fn a_tls_record_must_hold_a_whole_client_hello() {
        let hello = |declared: u8, len: usize| {
            let mut record = vec![0x16, 3, 1, 0, len as u8, CLIENT_HELLO, 0, 0, declared];
            record.resize(RECORD_HEADER + len, 0);
            record
        };
        assert_eq!(verdict(&hello(6, 10)), Verdict::Safe);
        assert!(matches!(verdict(&hello(60, 10)), Verdict::Refused(_)));
        let alert = [0x15, 3, 3, 0, 2, 2, 40];
        assert!(matches!(verdict(&alert), Verdict::Refused(_)));
        assert!(matches!(
            verdict(&[0x17, 3, 3, 0xFF, 0xFF]),
            Verdict::Refused(_)
        ));
    }
}
