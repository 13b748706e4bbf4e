//! rx-listen's resolved options: where it listens, whom it lets in, its
//! timeouts, and how it files what it receives.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use super::access::AccessRules;
use super::cli::{Fsync, ListenCli};
use super::events::celery::Broker;
use super::events::exec::split_template;
use super::events::{CeleryConfig, EventsConfig};
use super::free_space::FreeSpaceFloor;
use super::lonk::{LonkConfig, NatsAddress};
use super::tls;
use crate::filing::{Filing, FilingArgsError};

/// The name every line rx-listen prints starts with.
pub const PROGRAM: &str = "rx-listen";

/// What rx-listen does.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// Listens on the address.
    Listen(SocketAddr),
    /// Replays the series events of the log dir, and exits.
    ReplayEvents,
}

/// How rx-listen runs.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub task: Task,
    pub ae_title: String,
    pub max_pdu: u32,
    pub acse_timeout: Duration,
    pub dimse_timeout: Option<Duration>,
    pub socket_timeout: Option<Duration>,
    pub max_associations: usize,
    pub grace: Duration,
    pub access: AccessRules,
    /// TLS, when --tls-cert is given.
    pub tls: Option<Arc<ServerConfig>>,
    /// Each instance and its records are on disk before it is
    /// acknowledged (`--fsync always`).
    pub durable: bool,
    /// How every instance is filed.
    pub filing: Filing,
    /// `--min-free`, over the data dir and the log dir.
    pub floor: FreeSpaceFloor,
    /// Where to serve metrics and health (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Series completion events, when a sink is given.
    pub events: Option<EventsConfig>,
    /// LONK's progress on NATS, with `--nats`.
    pub lonk: Option<LonkConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenConfigError {
    #[error("cannot listen on {text}: {why}")]
    Address { text: String, why: String },
    #[error("nowhere to listen: give [ADDR:]PORT (or --replay-events)")]
    NoAddress,
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Events(String),
    #[error("{0}")]
    Filing(#[from] FilingArgsError),
}

impl ListenConfig {
    pub fn from_cli(cli: ListenCli) -> Result<ListenConfig, ListenConfigError> {
        let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let events = events(&cli)?;
        let lonk = cli
            .nats
            .as_deref()
            .map(|url| lonk_config(url, &cli))
            .transpose()?;
        let task = match &cli.listen {
            Some(text) => Task::Listen(address(text)?),
            None if !cli.replay_events => return Err(ListenConfigError::NoAddress),
            None if events.is_some() => Task::ReplayEvents,
            None => {
                return Err(ListenConfigError::Events(
                    "--replay-events: nowhere to replay to: give --exec-on-series, --events-ndjson or --celery-broker".into(),
                ));
            }
        };
        let filing = cli.filing.resolve(PROGRAM)?;
        let guarded = [Some(&filing.datadir), filing.logdir.as_ref()];
        let guarded = guarded
            .into_iter()
            .flatten()
            .map(|dir| dir.clone().into_std_path_buf());
        Ok(ListenConfig {
            task,
            ae_title: cli.aet,
            max_pdu: cli.max_pdu,
            acse_timeout: Duration::from_secs(cli.acse_timeout.max(1)),
            dimse_timeout: seconds(cli.dimse_timeout),
            socket_timeout: seconds(cli.socket_timeout),
            max_associations: cli.max_associations as usize,
            grace: Duration::from_secs(cli.grace),
            access: AccessRules {
                any_called: cli.any_called_aet,
                calling: cli.allow_calling,
                from: cli.allow_from,
            },
            tls: match (&cli.tls_cert, &cli.tls_key) {
                (Some(cert), Some(key)) => Some(
                    tls::server_config(cert, key, cli.tls_client_ca.as_deref())
                        .map_err(ListenConfigError::Tls)?,
                ),
                _ => None,
            },
            durable: cli.fsync == Fsync::Always,
            floor: FreeSpaceFloor::new(cli.min_free, guarded.collect(), PROGRAM),
            metrics: cli.metrics,
            filing,
            events,
            lonk,
        })
    }
}

/// The series events' options, if a sink is given.
fn events(cli: &ListenCli) -> Result<Option<EventsConfig>, ListenConfigError> {
    if cli.exec_on_series.is_none() && cli.events_ndjson.is_none() && cli.celery_broker.is_none() {
        return Ok(None);
    }
    if cli.filing.logdir.is_none() {
        return Err(ListenConfigError::Events(
            "series events need --logdir: their state and outbox are kept there".into(),
        ));
    }
    let exec = cli
        .exec_on_series
        .as_deref()
        .map(split_template)
        .transpose()
        .map_err(ListenConfigError::Events)?;
    Ok(Some(EventsConfig {
        settle: cli.series_settle,
        exec,
        exec_timeout: Duration::from_secs(cli.exec_timeout),
        exec_retries: cli.exec_retries,
        ndjson: cli.events_ndjson.clone(),
        celery: cli
            .celery_broker
            .as_deref()
            .map(|url| celery_config(url, &cli.celery_queue))
            .transpose()?,
        outbox_max: usize::try_from(cli.outbox_max).unwrap_or(usize::MAX),
    }))
}

/// `PORT` (every interface) or `ADDRESS:PORT`.
fn address(text: &str) -> Result<SocketAddr, ListenConfigError> {
    let bad = |why: String| ListenConfigError::Address {
        text: text.to_string(),
        why,
    };
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    text.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no such address".into()))
}

/// `--celery-broker URL` on `queue`, if rx-listen can send to it.
fn celery_config(url: &str, queue: &str) -> Result<CeleryConfig, ListenConfigError> {
    let broker = Broker::parse(url)
        .map_err(|why| ListenConfigError::Events(format!("--celery-broker {url}: {why}")))?;
    if queue.is_empty() {
        return Err(ListenConfigError::Events("--celery-queue: empty".into()));
    }
    Ok(CeleryConfig {
        broker,
        queue: queue.to_string(),
    })
}

/// `--nats URL`, with the root and interval of `cli`.
fn lonk_config(url: &str, cli: &ListenCli) -> Result<LonkConfig, ListenConfigError> {
    let address = NatsAddress::parse(url)
        .map_err(|why| ListenConfigError::Events(format!("--nats {url}: {why}")))?;
    let root = &cli.nats_root;
    let valid = |token: &str| {
        !token.is_empty()
            && !token
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '>')
    };
    if !root.split('.').all(valid) {
        return Err(ListenConfigError::Events(format!(
            "--nats-root {root:?}: not a NATS subject (dot-separated words, no spaces, * or >)"
        )));
    }
    Ok(LonkConfig {
        address,
        root: root.clone(),
        interval: cli.progress_interval,
    })
}
