//! What an operator sees (`--metrics ADDR:PORT`): Prometheus metrics on
//! `/metrics`, `/healthz` (the process serves) and `/readyz` (the data
//! dir and the log dir are writable and above `--min-free`).
//!
//! Every label value comes from a fixed set of ours (an outcome, how an
//! association ended, which dir): nothing a peer chose (AE titles, UIDs,
//! addresses) becomes a label, so no peer can grow what is kept here.
//!
//! The HTTP server is one thread of its own that answers one connection
//! at a time, reads at most one small request within a deadline, and
//! only reads counters the associations update: a slow or hostile client
//! of it delays nobody's acknowledgement.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::association::End;
use super::free_space::FreeSpaceFloor;

/// How an instance was answered.
pub enum Outcome {
    /// 0x0000.
    Success,
    /// 0xA700: it could not be kept (a full or failing disk, the floor).
    OutOfResources,
    /// 0xC000: it could not be read (kept in the quarantine, if any).
    CannotUnderstand,
}

impl Outcome {
    /// The outcome of answering `status`.
    pub fn of(status: u16) -> Outcome {
        match status {
            0x0000 => Outcome::Success,
            0xA700..=0xA7FF => Outcome::OutOfResources,
            _ => Outcome::CannotUnderstand,
        }
    }
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::OutOfResources => "out_of_resources",
            Outcome::CannotUnderstand => "cannot_understand",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// How an association ended.
pub enum Ended {
    Released,
    AbortedByPeer,
    /// By us: a protocol violation, or no progress within the deadline.
    Aborted,
    /// The connection failed or went silent.
    Lost,
    /// Refused by the access rules (AE titles, addresses).
    Rejected,
    /// Beyond `--max-associations`.
    Busy,
    /// Never negotiated (no request, an unreadable one, a TLS failure).
    NotEstablished,
}

impl From<&End> for Ended {
    fn from(end: &End) -> Ended {
        match end {
            End::Released => Ended::Released,
            End::AbortedByPeer => Ended::AbortedByPeer,
            End::Aborted(_) => Ended::Aborted,
            End::Lost(_) => Ended::Lost,
        }
    }
}

impl Ended {
    fn label(&self) -> &'static str {
        match self {
            Ended::Released => "released",
            Ended::AbortedByPeer => "aborted_by_peer",
            Ended::Aborted => "aborted",
            Ended::Lost => "lost",
            Ended::Rejected => "rejected",
            Ended::Busy => "busy",
            Ended::NotEstablished => "not_established",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndedLabel {
    ended: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirLabel {
    dir: &'static str,
}

/// The metrics of this process.
pub struct Metrics {
    registry: Registry,
    instances: Family<OutcomeLabel, Counter>,
    received_bytes: Counter,
    associations: Family<EndedLabel, Counter>,
    in_flight: Gauge,
    acknowledgement: Histogram,
    fsync: Histogram,
    free_bytes: Family<DirLabel, Gauge>,
    free_inodes: Family<DirLabel, Gauge>,
    series_completed: Counter,
    delivery_failures: Counter,
    outbox: Family<SinkLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    /// exec, ndjson or celery: the sinks' own names.
    sink: &'static str,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rx_listen");
        let instances = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "instances",
            "Instances received, by how they were answered",
            instances.clone(),
        );
        let received_bytes = Counter::default();
        registry.register_with_unit(
            "received",
            "Bytes of data sets received",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let associations = Family::<EndedLabel, Counter>::default();
        registry.register(
            "associations",
            "Associations, by how they ended",
            associations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "associations_in_flight",
            "Associations being served",
            in_flight.clone(),
        );
        // 100 µs to 13 s.
        let acknowledgement = Histogram::new(exponential_buckets(1e-4, 2.0, 18));
        registry.register_with_unit(
            "acknowledgement",
            "Time from an instance's last fragment to its answer",
            Unit::Seconds,
            acknowledgement.clone(),
        );
        let fsync = Histogram::new(exponential_buckets(1e-4, 2.0, 18));
        registry.register_with_unit(
            "fsync",
            "Time an instance's fsyncs took (--fsync always), the wait to share a commit with other associations included",
            Unit::Seconds,
            fsync.clone(),
        );
        let free_bytes = Family::<DirLabel, Gauge>::default();
        registry.register_with_unit(
            "free",
            "Space left to rx-listen's user in the data dir and the log dir",
            Unit::Bytes,
            free_bytes.clone(),
        );
        let free_inodes = Family::<DirLabel, Gauge>::default();
        registry.register(
            "free_inodes",
            "Inodes left to rx-listen's user in the data dir and the log dir",
            free_inodes.clone(),
        );
        let series_completed = Counter::default();
        registry.register(
            "series_completed",
            "Series announced complete (each count of a series once)",
            series_completed.clone(),
        );
        let delivery_failures = Counter::default();
        registry.register(
            "delivery_failures",
            "Failed deliveries of series events to their sinks (each try)",
            delivery_failures.clone(),
        );
        let outbox = Family::<SinkLabel, Gauge>::default();
        registry.register(
            "outbox_waiting_events",
            "Series events in the outbox, waiting for their sink",
            outbox.clone(),
        );
        Metrics {
            registry,
            series_completed,
            delivery_failures,
            outbox,
            instances,
            received_bytes,
            associations,
            in_flight,
            acknowledgement,
            fsync,
            free_bytes,
            free_inodes,
        }
    }

    /// An instance was answered with `outcome`, `waited` after its last
    /// fragment; its fsyncs took `fsync` (when durable).
    pub fn answered(&self, outcome: Outcome, waited: Duration, fsync: Option<Duration>) {
        self.instances
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
        self.acknowledgement.observe(waited.as_secs_f64());
        if let Some(fsync) = fsync {
            self.fsync.observe(fsync.as_secs_f64());
        }
    }

    pub fn received(&self, bytes: u64) {
        self.received_bytes.inc_by(bytes);
    }

    pub fn series_completed(&self) {
        self.series_completed.inc();
    }

    pub fn delivery_failed(&self) {
        self.delivery_failures.inc();
    }

    /// `waiting` events wait in the outbox of `sink`.
    pub fn outbox(&self, sink: &'static str, waiting: usize) {
        self.outbox
            .get_or_create(&SinkLabel { sink })
            .set(gauge(waiting as u64));
    }

    pub fn ended(&self, ended: Ended) {
        self.associations
            .get_or_create(&EndedLabel {
                ended: ended.label(),
            })
            .inc();
    }

    /// One more association served, until the guard returned is dropped.
    pub fn serving(&self) -> Serving {
        self.in_flight.inc();
        Serving
    }

    /// The text exposition, with the free space of `floor`'s dirs as of
    /// now.
    fn exposition(&self, floor: &FreeSpaceFloor) -> String {
        for (i, space) in floor.space().into_iter().enumerate() {
            let dir = DirLabel {
                dir: if i == 0 { "data" } else { "log" },
            };
            if let Some((bytes, inodes)) = space {
                self.free_bytes.get_or_create(&dir).set(gauge(bytes));
                self.free_inodes.get_or_create(&dir).set(gauge(inodes));
            }
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        classic(&text)
    }
}

/// The Prometheus text format (0.0.4) of the OpenMetrics text the
/// client library writes: a counter's HELP and TYPE name its `_total`
/// samples, and there are no UNIT or EOF lines. promtool checks this
/// format, and every Prometheus reads it.
fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["#", "TYPE", name, "counter"] => {
                out.push_str(&format!("# TYPE {name}_total counter\n"));
            }
            ["#", "HELP", name, help] if is_counter(openmetrics, name) => {
                out.push_str(&format!("# HELP {name}_total {help}\n"));
            }
            ["#", "UNIT", ..] | ["#", "EOF"] => {}
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether `name` is a counter's family in `openmetrics`.
fn is_counter(openmetrics: &str, name: &str) -> bool {
    openmetrics.contains(&format!("# TYPE {name} counter\n"))
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An association being served (see [`Metrics::serving`]).
pub struct Serving;

impl Drop for Serving {
    fn drop(&mut self) {
        METRICS.in_flight.dec();
    }
}

/// How long a client of the metrics server may take to send its request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The most of a request read (a request line and a few headers).
const REQUEST_LIMIT: usize = 4096;

/// Serves `/metrics`, `/healthz` and `/readyz` on `address`, on a thread
/// of its own, for as long as the process lives.
pub fn serve(address: SocketAddr, floor: FreeSpaceFloor) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &floor);
            }
        })?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, floor: &FreeSpaceFloor) -> io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_DEADLINE))?;
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < REQUEST_LIMIT {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let (status, kind, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            METRICS.exposition(floor),
        ),
        (Some(b"GET"), Some(b"/healthz")) => ("200 OK", "text/plain", "serving\n".into()),
        (Some(b"GET"), Some(b"/readyz")) => match floor.ready() {
            Ok(()) => ("200 OK", "text/plain", "ready\n".into()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        (Some(b"GET"), _) => ("404 Not Found", "text/plain", "not here\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}
