//! rx-listen against slow and hostile peers, on loopback (issue 15): peers
//! that say nothing, stall in the middle of a PDU or of an instance, or
//! trickle their bytes; floods of connections beyond the association
//! limit; malformed PDUs and command sets. Each is dropped in its time,
//! with one line on stderr, leaves nothing behind, and good senders are
//! served meanwhile. Every peer here stops by itself within seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::listener::{AE_TITLE, Listener, data_set};
use crate::raw_scu;

/// How long any peer here waits for the listener to end its connection.
const PATIENCE: Duration = Duration::from_secs(12);

/// How a hostile peer's connection ended.
#[derive(Debug)]
struct Ending {
    /// The types of the PDUs the listener sent.
    pdus: Vec<u8>,
    /// When the listener closed the connection, from the peer's start.
    after: Duration,
    /// Whether it did close it (rather than the peer giving up).
    closed: bool,
}

/// The types of the whole PDUs in `bytes`.
fn pdu_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 6 {
        let len = u32::from_be_bytes(bytes[2..6].try_into().unwrap()) as usize;
        if bytes.len() < 6 + len {
            break;
        }
        types.push(bytes[0]);
        bytes = &bytes[6 + len..];
    }
    types
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap()
}

/// Watches `stream` until the listener closes it (or [`PATIENCE`]),
/// writing one of `trickle` every `every` meanwhile (and nothing once a
/// write fails). Times are counted from `started`.
fn watch(
    mut stream: TcpStream,
    started: Instant,
    trickle: Vec<Vec<u8>>,
    every: Duration,
) -> Ending {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut received = Vec::new();
    let mut pieces = trickle.into_iter();
    let mut next_write = Instant::now();
    let mut writing = true;
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break, // reset: closed too
        }
        if started.elapsed() > PATIENCE {
            return Ending {
                pdus: pdu_types(&received),
                after: started.elapsed(),
                closed: false,
            };
        }
        if writing && Instant::now() >= next_write {
            match pieces.next() {
                Some(piece) => writing = stream.write_all(&piece).is_ok(),
                None => writing = false,
            }
            next_write += every;
        }
    }
    Ending {
        pdus: pdu_types(&received),
        after: started.elapsed(),
        closed: true,
    }
}

/// `bytes` one byte at a time.
fn bytewise(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.iter().map(|b| vec![*b]).collect()
}

/// Example instances for a good sender: (SOPInstanceUID, data set).
fn good_instances(files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            (instance_uid(path), data_set(&bytes).to_vec())
        })
        .collect()
}

/// A line of /proc/PID/status, as a number (the unit dropped).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} line"))
}

/// A silent peer, one that stops half-way through its A-ASSOCIATE-RQ,
/// one that trickles it a byte at a time, one that stops in the middle
/// of a P-DATA PDU, one in the middle of an instance, and one that sends
/// its instance in P-DATA PDUs of one byte: each is dropped once its
/// timeout has passed (3 s here; the trickling ones by the progress
/// deadline, since no read ever times out), after its last progress and
/// not before; the partial instances are nowhere; and three good senders
/// started meanwhile are served at once.
#[test]
fn slow_and_stalled_peers_are_dropped_in_time_and_good_senders_served() {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let mut listener = Listener::start(&[
        "--acse-timeout",
        "3",
        "--socket-timeout",
        "3",
        "--fsync",
        "never",
    ]);
    let port = listener.port;
    let request = raw_scu::associate_rq(AE_TITLE, raw_scu::MR_IMAGE_STORAGE);
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let partial = data_set(&example).to_vec();
    let bad_uid = |n: u32| format!("1.2.826.0.1.3680043.8.498.1515{n}");
    let command = |n: u32| raw_scu::p_data(3, &raw_scu::c_store_rq(1, &bad_uid(n)));
    let slow = Duration::from_millis(150);

    let hostile = std::thread::scope(|scope| {
        let mut peers = Vec::new();
        // Before association: the ACSE timeout.
        let request_ = request.clone();
        peers.push((
            "silent",
            scope.spawn(move || watch(connect(port), Instant::now(), vec![], slow)),
        ));
        peers.push((
            "half an A-ASSOCIATE-RQ",
            scope.spawn(move || {
                let mut stream = connect(port);
                let started = Instant::now();
                stream.write_all(&request_[..request_.len() / 2]).unwrap();
                watch(stream, started, vec![], slow)
            }),
        ));
        let request_ = request.clone();
        peers.push((
            "an A-ASSOCIATE-RQ trickled",
            scope.spawn(move || watch(connect(port), Instant::now(), bytewise(&request_), slow)),
        ));
        // Associated: the socket timeout.
        let half_pdu = command(1);
        peers.push((
            "half a P-DATA PDU",
            scope.spawn(move || {
                let mut stream = raw_scu::associate(port, AE_TITLE);
                let started = Instant::now();
                stream.write_all(&half_pdu[..half_pdu.len() / 2]).unwrap();
                watch(stream, started, vec![], slow)
            }),
        ));
        let (command_2, first) = (command(2), partial[..8000].to_vec());
        peers.push((
            "half an instance",
            scope.spawn(move || {
                let mut stream = raw_scu::associate(port, AE_TITLE);
                stream.write_all(&command_2).unwrap();
                stream.write_all(&raw_scu::p_data(0, &first)).unwrap();
                watch(stream, Instant::now(), vec![], slow)
            }),
        ));
        let (command_3, trickled) = (command(3), partial.clone());
        peers.push((
            "an instance in one-byte PDUs",
            scope.spawn(move || {
                // Made before the command goes: the clock starts with it.
                let pieces = trickled.iter().map(|b| raw_scu::p_data(0, &[*b])).collect();
                let mut stream = raw_scu::associate(port, AE_TITLE);
                stream.write_all(&command_3).unwrap();
                watch(stream, Instant::now(), pieces, Duration::from_millis(50))
            }),
        ));

        // Meanwhile, three good senders at once.
        std::thread::sleep(Duration::from_millis(300));
        let files = sag_anon_files();
        let good_started = Instant::now();
        let senders: Vec<_> = files
            .chunks(5)
            .take(3)
            .map(|chunk| {
                let instances = good_instances(chunk);
                scope.spawn(move || raw_scu::send(port, AE_TITLE, &instances))
            })
            .collect();
        for sender in senders {
            assert_eq!(sender.join().unwrap(), [0; 5], "a good sender's statuses");
        }
        let took = good_started.elapsed();
        // Alone they take about 0.2 s; what matters is that they are
        // served while every stalled peer still holds its connection.
        assert!(
            took < TIMEOUT - Duration::from_millis(500),
            "the good senders took {took:?}, with stalled peers connected"
        );
        peers
            .into_iter()
            .map(|(name, peer)| (name, peer.join().unwrap()))
            .collect::<Vec<_>>()
    });

    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, ending) in &hostile {
        assert!(
            ending.closed,
            "{name}: still connected: {ending:?}\n{stderr}"
        );
        assert!(
            ending.after >= TIMEOUT - Duration::from_millis(100)
                && ending.after < TIMEOUT + Duration::from_secs(3),
            "{name}: dropped after {:?}, the timeout is {TIMEOUT:?}\n{stderr}",
            ending.after
        );
    }
    // Negotiating: closed without a word (ARTIM); associated: aborted.
    for (name, ending) in &hostile[..3] {
        assert!(ending.pdus.is_empty(), "{name}: {ending:?}");
    }
    for (name, ending) in &hostile[3..] {
        assert_eq!(ending.pdus, [0x07], "{name}: an A-ABORT");
    }
    assert_eq!(stderr.matches("no association").count(), 3, "{stderr}");
    assert!(
        stderr.contains("no whole A-ASSOCIATE-RQ within the ACSE timeout (3 s)"),
        "the trickled request: {stderr}"
    );
    assert_eq!(
        stderr.matches("0 instances (0 failed)").count(),
        3,
        "{stderr}"
    );
    assert!(
        stderr.contains("aborted: no progress within 3 s"),
        "the one-byte PDUs: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Only the good senders' instances, and their records.
    let placed = files_under(&listener.data());
    assert_eq!(placed.len(), 15, "{placed:?}");
    for path in &placed {
        let name = path.to_string_lossy();
        assert!(!name.contains("498.1515"), "a partial instance: {name}");
    }
    assert_eq!(image_records(&json_files(&listener.log())), 15);
}

/// 200 idle connections against `--max-associations 8`: the 192 beyond
/// the limit get a transient A-ASSOCIATE-RJ at once, from the accepting
/// thread (rx-listen's thread count stays at the limit, its memory
/// flat); once the ACSE timeout has dropped the 8 idle ones holding the
/// slots, a good sender associates and is served, the 200 still open.
#[test]
fn a_flood_beyond_the_association_limit_is_rejected_at_once() {
    const LIMIT: usize = 8;
    const FLOOD: usize = 200;
    let mut listener = Listener::start(&[
        "--max-associations",
        "8",
        "--acse-timeout",
        "3",
        "--fsync",
        "never",
    ]);
    let pid = listener.running.child.id();
    let rss_before = proc_status(pid, "VmRSS:");
    let mut flood: Vec<(TcpStream, Vec<u8>, Option<Duration>)> = (0..FLOOD)
        .map(|_| {
            let stream = connect(listener.port);
            stream.set_nonblocking(true).unwrap();
            (stream, Vec::new(), None)
        })
        .collect();
    let connected = Instant::now();
    let mut most_threads = 0;
    // Until every rejection has come, or two seconds.
    while connected.elapsed() < Duration::from_secs(2)
        && flood.iter().filter(|(_, _, at)| at.is_some()).count() < FLOOD - LIMIT
    {
        for (stream, received, at) in flood.iter_mut().filter(|(_, _, at)| at.is_none()) {
            let mut buffer = [0u8; 64];
            match stream.read(&mut buffer) {
                Ok(n) if n > 0 => received.extend(&buffer[..n]),
                _ => {}
            }
            if received.len() >= 10 {
                *at = Some(connected.elapsed());
            }
        }
        most_threads = most_threads.max(proc_status(pid, "Threads:"));
        std::thread::sleep(Duration::from_millis(10));
    }
    let rejected: Vec<_> = flood
        .iter()
        .filter_map(|(_, received, at)| at.map(|at| (received, at)))
        .collect();
    assert_eq!(rejected.len(), FLOOD - LIMIT, "rejections within 2 s");
    for (received, _) in &rejected {
        // A-ASSOCIATE-RJ: transient (2), service provider, presentation
        // related (3): local limit exceeded (2).
        assert_eq!(
            received[..],
            [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2],
            "the rejection"
        );
    }
    let slowest = rejected.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        slowest < Duration::from_millis(1500),
        "the last rejection came after {slowest:?}"
    );
    assert!(
        most_threads <= LIMIT as u64 + 3,
        "rx-listen ran {most_threads} threads for {LIMIT} associations"
    );

    // A good sender, once the idle ones holding the slots are dropped.
    let instances = good_instances(&sag_anon_files()[..5]);
    let mut stream = loop {
        let mut stream = connect(listener.port);
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
            .write_all(&raw_scu::associate_rq(AE_TITLE, raw_scu::MR_IMAGE_STORAGE))
            .unwrap();
        let (kind, _) = raw_scu::read_pdu(&mut stream);
        if kind == 0x02 {
            break stream;
        }
        assert!(
            connected.elapsed() < PATIENCE,
            "no association for a good sender within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let accepted = connected.elapsed();
    assert!(
        accepted < Duration::from_secs(5),
        "a good sender waited {accepted:?} (the ACSE timeout is 3 s)"
    );
    for (id, (uid, data_set)) in (1..).zip(&instances) {
        assert_eq!(raw_scu::store(&mut stream, id, uid, data_set), 0);
    }
    raw_scu::release(stream);
    let peak = listener.peak_rss_kib();
    drop(flood);
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(files_under(&listener.data()).len(), 5, "{stderr}");
    assert!(
        peak < rss_before + (16 << 10),
        "peak RSS {peak} KiB, {rss_before} KiB before the flood"
    );
    assert_eq!(stderr.matches("no association").count(), LIMIT, "{stderr}");
    // The flood, and the good sender's attempts while the slots were held.
    let rejections = stderr.matches("rejected: 8 associations already").count();
    assert!(
        rejections >= FLOOD - LIMIT,
        "{rejections} rejections logged"
    );
    eprintln!(
        "peak RSS {peak} KiB, {rss_before} KiB before the flood; {most_threads} threads at most; last rejection after {slowest:?}"
    );
}

/// Malformed PDUs and command sets, before and after association: each
/// connection is aborted at once (an A-ABORT, then closed), with one line
/// on stderr saying why; nothing panics, memory stays bounded, and a
/// good instance sent afterwards is filed.
#[test]
fn malformed_pdus_are_aborted_at_once_and_the_listener_serves_on() {
    use raw_scu::{c_store_rq, c_store_rq_fields, command_set, p_data, p_data_on, pdu};
    let mut listener = Listener::start(&["--fsync", "never"]);
    let pid = listener.running.child.id();
    let uid = "1.2.826.0.1.3680043.8.498.151599";
    let without_instance: Vec<_> = c_store_rq_fields(1, uid)
        .into_iter()
        .filter(|(element, _)| *element != 0x1000)
        .collect();
    let header = |kind: u8, length: u32| {
        let mut out = vec![kind, 0];
        out.extend(length.to_be_bytes());
        out
    };
    // (what, associate first?, bytes sent, what stderr says)
    let cases: Vec<(&str, bool, Vec<u8>, &str)> = vec![
        (
            "an A-ASSOCIATE-RQ declaring 4 GiB",
            false,
            header(0x01, u32::MAX),
            "too large: length 4294967295",
        ),
        (
            "an A-ASSOCIATE-RQ over our maximum",
            false,
            header(0x01, 131073),
            "too large: length 131073",
        ),
        (
            "an A-ASSOCIATE-RQ too short",
            false,
            pdu(0x01, &[0; 10]),
            "Invalid PDU field length",
        ),
        (
            "garbage",
            false,
            b"GET / HTTP/1.1\r\nHost: rx-listen\r\n\r\n".to_vec(),
            "too large",
        ),
        (
            "data before association",
            false,
            p_data(3, &c_store_rq(1, uid)),
            "P-DATA-TF before the association",
        ),
        (
            "an unknown PDU type first",
            false,
            pdu(0x09, &[0; 8]),
            "PDU type 0x09 before the association",
        ),
        (
            "a P-DATA-TF declaring 4 GiB",
            true,
            header(0x04, u32::MAX),
            "too large: length 4294967295",
        ),
        (
            "a P-DATA-TF over the negotiated maximum",
            true,
            header(0x04, 131073),
            "too large: length 131073",
        ),
        (
            "a PDV shorter than its header",
            true,
            pdu(0x04, &[0, 0, 0, 1, 1, 3]),
            "invalid PDV item length 1",
        ),
        (
            "a fragment for an unknown presentation context",
            true,
            p_data_on(3, 3, &c_store_rq(1, uid)),
            "presentation context 3, which was not accepted",
        ),
        (
            "a C-STORE without its affected SOP instance UID",
            true,
            p_data(3, &command_set(&without_instance)),
            "without its affected SOP instance UID",
        ),
        (
            "a command set cut inside an element",
            true,
            p_data(3, &[0, 0, 0, 0, 4, 0]),
            "ends inside an element header",
        ),
        (
            "an unknown PDU type",
            true,
            pdu(0x09, &[0; 4]),
            "unexpected PDU type 0x09",
        ),
        (
            "a second A-ASSOCIATE-RQ",
            true,
            raw_scu::associate_rq(AE_TITLE, raw_scu::MR_IMAGE_STORAGE),
            "unexpected A-ASSOCIATE-RQ",
        ),
    ];
    for (what, associated, bytes, _) in &cases {
        let mut stream = if *associated {
            raw_scu::associate(listener.port, AE_TITLE)
        } else {
            connect(listener.port)
        };
        let started = Instant::now();
        stream.write_all(bytes).unwrap();
        let ending = watch(stream, started, vec![], Duration::ZERO);
        assert!(
            ending.closed && ending.after < Duration::from_secs(2),
            "{what}: not dropped at once: {ending:?}"
        );
        assert_eq!(ending.pdus, [0x07], "{what}: an A-ABORT");
    }
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let good = (uid.to_string(), data_set(&example).to_vec());
    assert_eq!(raw_scu::send(listener.port, AE_TITLE, &[good]), [0]);
    let peak = proc_status(pid, "VmHWM:");
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let ends: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("aborted") || line.contains("no association"))
        .collect();
    assert_eq!(ends.len(), cases.len(), "one line each:\n{stderr}");
    for (what, _, _, says) in &cases {
        assert!(stderr.contains(says), "{what}: no {says:?} in\n{stderr}");
    }
    for line in &ends {
        assert!(line.len() < 400, "a long line: {line}");
    }
    assert_eq!(files_under(&listener.data()).len(), 1, "{stderr}");
    assert!(peak < 48 << 10, "peak RSS {peak} KiB");
}
