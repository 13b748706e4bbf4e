//! `--nats`: the progress of each series as it arrives, on NATS in
//! oxidicom's LONK encoding, for ChRIS's UI. On the subject
//! `<root>.<calling AE>.<SeriesInstanceUID>`:
//!
//! - `0x01` and the count so far (u32, little endian): the first instance,
//!   then at most once per `--progress-interval` for each series an
//!   association delivers, and its count when the association ends;
//! - `0x02` and the text of the error, for an instance not kept;
//! - `0x00` once the series is registered ([`super::events::celery`]),
//!   after its count on disk.
//!
//! Progress is dropped, never queued without bound, while NATS is away
//! or slow: one thread publishes what a bounded queue holds, and the
//! receiving threads never wait for it.

mod nats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use nats::Connection;
pub use nats::NatsAddress;

/// oxidicom's root subject.
pub const DEFAULT_ROOT: &str = "oxidicom";
/// Messages waiting for the publisher beyond which new ones are dropped.
const QUEUE: usize = 4096;
/// How long after a failed connection the publisher tries again.
const RECONNECT: Duration = Duration::from_secs(1);
/// How often an idle publisher answers the server.
const IDLE: Duration = Duration::from_millis(500);
/// Longest subject part: a value longer than any UID or AE title is cut.
const MAX_PART: usize = 128;

/// `--nats`'s options, resolved.
#[derive(Debug, Clone)]
pub struct LonkConfig {
    pub address: NatsAddress,
    pub root: String,
    pub interval: Duration,
}

/// One LONK message.
struct Message {
    subject: String,
    payload: Vec<u8>,
}

/// The progress messages of one rx-listen, on their way to NATS.
#[derive(Clone)]
pub struct Lonk {
    queue: SyncSender<Message>,
    root: String,
    interval: Duration,
    dropped: Arc<AtomicU64>,
}

impl Lonk {
    /// Starts the publisher, on a thread of its own; it connects when
    /// there is something to say, and again after each failure.
    pub fn start(config: &LonkConfig, program: &'static str) -> Lonk {
        let (queue, waiting) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let (address, counted) = (config.address.clone(), dropped.clone());
        std::thread::spawn(move || publish(&address, &waiting, &counted, program));
        Lonk {
            queue,
            root: config.root.clone(),
            interval: config.interval,
            dropped,
        }
    }

    /// The subject of the series `series_uid` sent by `pacs_name`.
    pub fn subject(&self, pacs_name: &str, series_uid: &str) -> String {
        format!("{}.{}.{}", self.root, part(pacs_name), part(series_uid))
    }

    pub fn count(&self, subject: &str, count: u64) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let mut payload = vec![0x01];
        payload.extend_from_slice(&count.to_le_bytes());
        self.send(subject, payload);
    }

    pub fn error(&self, subject: &str, text: &str) {
        let mut payload = vec![0x02];
        payload.extend_from_slice(text.as_bytes());
        self.send(subject, payload);
    }

    pub fn done(&self, subject: &str) {
        self.send(subject, vec![0x00]);
    }

    fn send(&self, subject: &str, payload: Vec<u8>) {
        let message = Message {
            subject: subject.to_string(),
            payload,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(message)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages dropped so far (NATS away, or too slow).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The progress of one association from `calling`.
    pub fn association(&self, calling: &str) -> Progress<'_> {
        Progress {
            lonk: self,
            calling: calling.trim().to_string(),
            series: HashMap::new(),
        }
    }
}

/// A subject part as oxidicom makes it (space, `.`, `*` and `>` become
/// `_`, NUL is dropped), and valid whatever the value: every other
/// whitespace and control character becomes `_` too (a CR or LF would
/// end the PUB line), an empty part is `_`, a long one is cut.
fn part(value: &str) -> String {
    let part: String = value
        .chars()
        .filter(|&c| c != '\0')
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .take(MAX_PART)
        .collect();
    if part.is_empty() { "_".into() } else { part }
}

/// Publishes what `waiting` holds until every [`Lonk`] is gone; a message
/// that cannot be published now is dropped and counted.
fn publish(
    address: &NatsAddress,
    waiting: &Receiver<Message>,
    dropped: &AtomicU64,
    program: &'static str,
) {
    let mut publisher = Publisher {
        address,
        program,
        connection: None,
        failed_at: None,
        complained: false,
    };
    loop {
        let message = match waiting.recv_timeout(IDLE) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        publisher.serve();
        if let Some(message) = message
            && !publisher.publish(&message)
        {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The publisher's connection, and what it has said of its troubles.
struct Publisher<'a> {
    address: &'a NatsAddress,
    program: &'static str,
    connection: Option<Connection>,
    /// When the last connection failed: the next try waits [`RECONNECT`].
    failed_at: Option<Instant>,
    /// One line for a run of failures, and one when it is over.
    complained: bool,
}

impl Publisher<'_> {
    /// Answers the server, if connected.
    fn serve(&mut self) {
        if let Some(Err(e)) = self.connection.as_mut().map(Connection::serve) {
            self.lost(&e);
        }
    }

    /// Publishes `message`, connecting first if need be; false if it
    /// could not.
    fn publish(&mut self, message: &Message) -> bool {
        if self.connection.is_none() && self.failed_at.is_none_or(|at| at.elapsed() >= RECONNECT) {
            match Connection::open(self.address) {
                Ok(open) => {
                    if std::mem::take(&mut self.complained) {
                        eprintln!(
                            "{}: NATS {}: connected again",
                            self.program, self.address.host_port
                        );
                    }
                    self.connection = Some(open);
                    self.failed_at = None;
                }
                Err(e) => self.lost(&e),
            }
        }
        let Some(open) = &mut self.connection else {
            return false;
        };
        match open.publish(&message.subject, &message.payload) {
            Ok(()) => true,
            Err(e) => {
                self.lost(&e);
                false
            }
        }
    }

    /// The connection failed (or could not be made) for `why`.
    fn lost(&mut self, why: &std::io::Error) {
        if !std::mem::replace(&mut self.complained, true) {
            eprintln!(
                "{}: NATS {}: {why}; progress is dropped until it is back",
                self.program, self.address.host_port
            );
        }
        self.connection = None;
        self.failed_at = Some(Instant::now());
    }
}

/// The progress of the series one association delivers.
pub struct Progress<'a> {
    lonk: &'a Lonk,
    calling: String,
    /// Each series' subject, count, and when its count was last sent.
    series: HashMap<String, (String, u64, Instant)>,
}

impl Progress<'_> {
    /// An instance of `series_uid` was kept.
    pub fn stored(&mut self, series_uid: &str) {
        let lonk = self.lonk;
        match self.series.get_mut(series_uid) {
            Some((subject, count, sent)) => {
                *count += 1;
                if sent.elapsed() >= lonk.interval {
                    lonk.count(subject, *count);
                    *sent = Instant::now();
                }
            }
            None => {
                let subject = lonk.subject(&self.calling, series_uid);
                lonk.count(&subject, 1);
                self.series
                    .insert(series_uid.to_string(), (subject, 1, Instant::now()));
            }
        }
    }

    /// An instance (of `series_uid`, when it is known) was not kept.
    pub fn failed(&self, series_uid: Option<&str>, why: &str) {
        let subject = self
            .lonk
            .subject(&self.calling, series_uid.unwrap_or("UNKNOWN"));
        self.lonk.error(&subject, why);
    }

    /// The association ended: each series' count, as it ended.
    pub fn ended(self) {
        for (subject, count, _) in self.series.values() {
            self.lonk.count(subject, *count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_parts_are_oxidicoms_and_always_valid() {
        assert_eq!(part("OXITESTORTHANC"), "OXITESTORTHANC");
        assert_eq!(part("1.2.840.113619"), "1_2_840_113619");
        assert_eq!(part("A B*C>D\0E"), "A_B_C_DE");
        assert_eq!(part("x\r\nPUB evil 1"), "x__PUB_evil_1");
        assert_eq!(part(""), "_");
        assert_eq!(part(&"9".repeat(1000)).len(), MAX_PART);
    }
}
