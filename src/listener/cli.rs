//! rx-listen's command line, parsed and nothing more; [`super::config`]
//! resolves it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ipnet::IpNet;

use super::events::celery;
use super::free_space::MinFree;
use super::lonk;
use crate::filing::FilingArgs;

const AFTER_HELP: &str = "\
Receives DICOM instances (C-STORE) and files each one as rx-repack does,
in process, as it streams in: the same tree, the same pypx records. An
instance is acknowledged only once it is at its final name and recorded
(and, with --fsync always, on disk).

Example, on this machine:

  rx-listen --datadir /data/dicom --logdir /data/log --aet RXLISTEN 11113 &
  TCP_NODELAY=1 storescu -aec RXLISTEN +sd localhost 11113 /archive/series/

Over TLS, only clients with a certificate from our CA:

  rx-listen --datadir /data/dicom --tls-cert rx.crt --tls-key rx.key \
            --tls-client-ca ca.crt --allow-from 10.1.0.0/16 104
  storescu -aec RXLISTEN +tls modality.key modality.crt +cf ca.crt rx.example.org 104 a.dcm

DCMTK's spellings are accepted too: -aet, -pdu, -ta, -td, -ts.
SIGTERM or Ctrl-C: no new association is accepted, those in flight have
--grace seconds to finish, the rest are aborted; the exit status is 0.

In place of oxidicom (ChRIS), its OXIDICOM_* environment variables are
read as options too (the command line wins): see docs/oxidicom.md.";

#[derive(Debug, Parser)]
#[command(
    name = "rx-listen",
    version,
    about = "A DICOM storage SCP that files every instance it receives into a patient/study/series tree and pypx's log dir",
    after_help = AFTER_HELP,
    // The last of an option given twice wins, as in DCMTK's tools: the
    // options made of OXIDICOM_* variables come first.
    args_override_self = true,
    mut_arg("verbosity", |arg| arg.help(
        "0: errors only; 1: also warnings and one line per association; 2: also one line per instance"
    ))
)]
pub struct ListenCli {
    /// Where to listen: PORT, or ADDRESS:PORT ([::1]:PORT for IPv6)
    #[arg(value_name = "[ADDR:]PORT")]
    pub listen: Option<String>,

    #[command(flatten)]
    pub filing: FilingArgs,

    /// Our AE title (-aet)
    #[arg(
        long = "aet",
        alias = "aetitle",
        value_name = "AETITLE",
        default_value = "RXLISTEN"
    )]
    pub aet: String,

    /// Take associations whatever AE title they call (by default the
    /// called AE title must be --aet)
    #[arg(long = "any-called-aet")]
    pub any_called_aet: bool,

    /// Only these calling AE titles may associate (comma-separated)
    #[arg(long = "allow-calling", value_name = "AET,...", value_delimiter = ',')]
    pub allow_calling: Vec<String>,

    /// Only peers from these networks may associate (comma-separated, e.g.
    /// 10.1.0.0/16,192.168.7.12/32,fd00::/8)
    #[arg(long = "allow-from", value_name = "CIDR,...", value_delimiter = ',')]
    pub allow_from: Vec<IpNet>,

    /// Speak DICOM over TLS with this certificate (PEM, our certificate
    /// first, then its chain); needs --tls-key
    #[arg(long = "tls-cert", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(long = "tls-key", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require a client certificate signed by one of these CAs (PEM)
    #[arg(long = "tls-client-ca", value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Largest PDU we receive, in bytes (-pdu) [4096..131072, as DCMTK;
    /// the largest, so that an instance takes fewer PDUs]
    #[arg(long = "max-pdu", value_name = "BYTES", default_value_t = 131072,
          value_parser = clap::value_parser!(u32).range(4096..=131072))]
    pub max_pdu: u32,

    /// Seconds an association may take to be negotiated (-ta)
    #[arg(long = "acse-timeout", value_name = "SECONDS", default_value_t = 30)]
    pub acse_timeout: u64,

    /// Seconds to wait for the next DIMSE message; 0: no limit (-td)
    #[arg(long = "dimse-timeout", value_name = "SECONDS", default_value_t = 0)]
    pub dimse_timeout: u64,

    /// Seconds a connection may stay silent before it is dropped; 0: no
    /// limit (-ts)
    #[arg(long = "socket-timeout", value_name = "SECONDS", default_value_t = 60)]
    pub socket_timeout: u64,

    /// Associations served at once; more are rejected (transient)
    #[arg(long = "max-associations", value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_associations: u32,

    /// When to fsync: always (each instance and its records are on disk
    /// before it is acknowledged), or never (at their final names: this
    /// survives a crash of rx-listen, not a power loss)
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,

    /// Free space the data dir and the log dir keep: below it a C-STORE
    /// is answered 0xA700 before anything is written, until there is room
    /// again (a size, like 2GiB, or a share of the file system, like 1%;
    /// 0: no floor)
    #[arg(long = "min-free", value_name = "SIZE|PERCENT", default_value = "1%")]
    pub min_free: MinFree,

    /// Serve Prometheus metrics on http://ADDR:PORT/metrics, and /healthz
    /// and /readyz (ready: the data dir and log dir writable and above
    /// --min-free)
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Seconds associations in flight get to finish on SIGTERM or Ctrl-C
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace: u64,

    /// Once a series is complete, run PROGRAM with ARGs, without a shell
    /// (placeholders: #p series dir, #s SeriesInstanceUID, #n count, #a
    /// calling AE, #c called AE, #r peer; the event is also in RX_*
    /// environment variables); needs --logdir
    #[arg(
        long = "exec-on-series",
        value_name = "'PROGRAM ARG...'",
        help_heading = "Series events"
    )]
    pub exec_on_series: Option<String>,

    /// Seconds a hook may run; past it, it is killed and tried again
    #[arg(long = "exec-timeout", value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..), help_heading = "Series events")]
    pub exec_timeout: u64,

    /// Times a failed or timed-out hook is tried again (after 1, 2, 4...
    /// up to 60 s) before its event is set aside in the outbox's failed/
    #[arg(
        long = "exec-retries",
        value_name = "N",
        default_value_t = 10,
        help_heading = "Series events"
    )]
    pub exec_retries: u32,

    /// Append each event to FILE as one JSON line; needs --logdir
    #[arg(
        long = "events-ndjson",
        value_name = "FILE",
        help_heading = "Series events"
    )]
    pub events_ndjson: Option<PathBuf>,

    /// Seconds a series must be quiet, once every association that
    /// delivered it has ended, before it is complete
    #[arg(long = "series-settle", value_name = "SECONDS", default_value = "3",
          value_parser = fractional_seconds, help_heading = "Series events")]
    pub series_settle: Duration,

    /// Events waiting in the outbox for a sink beyond which completions
    /// wait (in the log dir) until it drains
    #[arg(long = "outbox-max", value_name = "N", default_value_t = 10000,
          value_parser = clap::value_parser!(u64).range(1..), help_heading = "Series events")]
    pub outbox_max: u64,

    /// Register each complete series with ChRIS's CUBE, as oxidicom does:
    /// the Celery task pacsfiles.tasks.register_pacs_series, sent to the
    /// broker at URL (redis://HOST:PORT/DB or
    /// amqp://USER:PASSWORD@HOST:PORT/VHOST); needs --logdir
    #[arg(long = "celery-broker", value_name = "URL", help_heading = "ChRIS")]
    pub celery_broker: Option<String>,

    /// The queue CUBE's workers take the task from
    #[arg(long = "celery-queue", value_name = "NAME", default_value = celery::DEFAULT_QUEUE,
          help_heading = "ChRIS")]
    pub celery_queue: String,

    /// Publish the progress of each series on the NATS server at URL
    /// (nats://[USER:PASSWORD@]HOST:PORT), in oxidicom's LONK encoding
    #[arg(long, value_name = "URL", help_heading = "ChRIS")]
    pub nats: Option<String>,

    /// The first part of LONK's subjects (ROOT.<calling AE>.<series UID>)
    #[arg(long = "nats-root", value_name = "ROOT", default_value = lonk::DEFAULT_ROOT,
          help_heading = "ChRIS")]
    pub nats_root: String,

    /// Seconds between two counts of a series' progress
    #[arg(long = "progress-interval", value_name = "SECONDS", default_value = "0.5",
          value_parser = fractional_seconds, help_heading = "ChRIS")]
    pub progress_interval: Duration,

    /// Do not listen: put an event for every series on record in the log
    /// dir into the outbox, deliver the outbox, and exit
    #[arg(
        long = "replay-events",
        conflicts_with = "listen",
        help_heading = "Series events"
    )]
    pub replay_events: bool,
}

/// `--series-settle`, `--progress-interval`: seconds, fractions allowed.
fn fractional_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| *d <= Duration::from_secs(86_400))
        .ok_or_else(|| "expected seconds between 0 and 86400".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    Always,
    Never,
}

/// DCMTK's single-dash long options, as storescp users type them, turned
/// into ours (clap knows only one-letter single-dash options).
pub fn dcmtk_spellings(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            let long = match arg.to_str() {
                Some("-aet") => "--aet",
                Some("-pdu") => "--max-pdu",
                Some("-ta") => "--acse-timeout",
                Some("-td") => "--dimse-timeout",
                Some("-ts") => "--socket-timeout",
                _ => return arg,
            };
            OsString::from(long)
        })
        .collect()
}
