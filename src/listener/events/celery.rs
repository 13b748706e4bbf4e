//! `--celery-broker`: each event registers its series with ChRIS's CUBE as
//! oxidicom does, by sending CUBE's Celery task
//! `pacsfiles.tasks.register_pacs_series` to its queue. The message is
//! Celery's protocol 2 as kombu puts it on each transport: on Redis a
//! JSON envelope pushed on the queue's list, on AMQP the JSON body with
//! the headers as a table; a Celery 5 worker executes either.
//!
//! The task's arguments are read from one instance of the series on disk,
//! so a replayed event registers as a live one does; the count is the
//! series' on disk, not one association's (oxidicom's). The task id is the
//! event's id: a duplicate after a crash is recognisably the same task.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use base64::Engine;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use serde::Serialize;
use serde_json::{Value, json};

use super::amqp::{self, AmqpAddress};
use super::delivery::{Failure, Sink};
use super::event::Event;
use super::resp::{self, RedisAddress};
use crate::layout::chris::iso_date;
use crate::listener::lonk::Lonk;
use crate::reading::{non_blank, read_elements};

/// CUBE's task, and the queue its workers take it from.
pub const TASK: &str = "pacsfiles.tasks.register_pacs_series";
pub const DEFAULT_QUEUE: &str = "main2";

/// How long a broker may take to connect or answer.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The elements the registration reads from an instance (the UIDs and
/// PatientID are the event's).
const REGISTERED: &[Tag] = &[
    tags::STUDY_DATE,
    tags::SOURCE_APPLICATION_ENTITY_TITLE,
    tags::PATIENT_NAME,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_AGE,
    tags::PATIENT_SEX,
    tags::ACCESSION_NUMBER,
    tags::MODALITY,
    tags::PROTOCOL_NAME,
    tags::STUDY_DESCRIPTION,
    tags::SERIES_DESCRIPTION,
];

/// The task's keyword arguments, in the order of CUBE's signature (which
/// is how oxidicom sends them); what the instance lacks is null.
#[derive(Debug, Serialize, PartialEq)]
pub struct Registration {
    #[serde(rename = "PatientID")]
    pub patient_id: String,
    /// `YYYY-MM-DD`.
    #[serde(rename = "StudyDate")]
    pub study_date: String,
    #[serde(rename = "StudyInstanceUID")]
    pub study_instance_uid: String,
    #[serde(rename = "SeriesInstanceUID")]
    pub series_instance_uid: String,
    /// The calling AE title.
    pub pacs_name: String,
    /// The series dir, relative to the storage root.
    pub path: String,
    pub ndicom: u64,
    #[serde(rename = "PatientName")]
    pub patient_name: Option<String>,
    #[serde(rename = "PatientBirthDate")]
    pub patient_birth_date: Option<String>,
    /// In days.
    #[serde(rename = "PatientAge")]
    pub patient_age: Option<i64>,
    #[serde(rename = "PatientSex")]
    pub patient_sex: Option<String>,
    #[serde(rename = "AccessionNumber")]
    pub accession_number: Option<String>,
    #[serde(rename = "Modality")]
    pub modality: Option<String>,
    #[serde(rename = "ProtocolName")]
    pub protocol_name: Option<String>,
    #[serde(rename = "StudyDescription")]
    pub study_description: Option<String>,
    #[serde(rename = "SeriesDescription")]
    pub series_description: Option<String>,
}

impl Registration {
    /// The registration of `event`'s series, read from one of its files.
    pub fn of(event: &Event) -> Result<Registration, String> {
        let file = an_instance(Path::new(&event.series_dir))?;
        let header = read_elements(&file, REGISTERED)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let value = |tag: Tag| non_blank(header.text(tag)).map(|text| text.trim().to_string());
        let study_date = value(tags::STUDY_DATE)
            .as_deref()
            .and_then(iso_date)
            .ok_or_else(|| format!("{} has no StudyDate CUBE takes", file.display()))?;
        Ok(Registration {
            patient_id: event.patient_id.clone(),
            study_date,
            study_instance_uid: event.study_instance_uid.clone(),
            series_instance_uid: event.series_instance_uid.clone(),
            pacs_name: value(tags::SOURCE_APPLICATION_ENTITY_TITLE).unwrap_or_default(),
            path: event.series_dir_relative.clone(),
            ndicom: event.instances,
            patient_name: value(tags::PATIENT_NAME),
            patient_birth_date: value(tags::PATIENT_BIRTH_DATE),
            patient_age: value(tags::PATIENT_AGE).as_deref().and_then(age_in_days),
            patient_sex: value(tags::PATIENT_SEX),
            accession_number: value(tags::ACCESSION_NUMBER),
            modality: value(tags::MODALITY),
            protocol_name: value(tags::PROTOCOL_NAME),
            study_description: value(tags::STUDY_DESCRIPTION),
            series_description: value(tags::SERIES_DESCRIPTION),
        })
    }
}

/// The first instance file of the series dir `dir` (by name; hidden
/// names are ours, unfinished).
fn an_instance(dir: &Path) -> Result<PathBuf, String> {
    let cannot = |e: std::io::Error| format!("cannot list {}: {e}", dir.display());
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(cannot)?
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .ok_or_else(|| format!("no instance in {}", dir.display()))
}

/// A DICOM age string (`045Y`, `020D`, `2W`, `5M`) in days, as oxidicom
/// counts them (a month 30.44 days, a year 365.24), rounded.
pub fn age_in_days(age: &str) -> Option<i64> {
    let age = age.trim();
    let (number, days) = [("D", 1.0), ("W", 7.0), ("M", 30.44), ("Y", 365.24)]
        .into_iter()
        .find_map(|(unit, days)| age.strip_suffix(unit).map(|number| (number, days)))?;
    let number: f64 = number.parse().ok()?;
    number
        .is_finite()
        .then(|| (number * days).round())
        .filter(|days| days.abs() < 1e15)
        .map(|days| days as i64)
}

/// The task's body: its arguments (none by position, `registration` by
/// keyword) and the embedded options, as Celery's protocol 2 has it.
fn body(registration: &Registration) -> Vec<u8> {
    let embed = json!({"callbacks": null, "errbacks": null, "chain": null, "chord": null});
    serde_json::to_vec(&json!([[], registration, embed])).expect("a registration serialises")
}

/// The task's headers, as Celery 5 sends them, with the id `id`.
fn headers(registration: &Registration, id: &str, origin: &str) -> Value {
    let kwargs = serde_json::to_string(registration).expect("a registration serialises");
    json!({
        "lang": "py",
        "task": TASK,
        "id": id,
        "shadow": null,
        "eta": null,
        "expires": null,
        "group": null,
        "group_index": null,
        "retries": 0,
        "timelimit": [null, null],
        "root_id": id,
        "parent_id": null,
        "argsrepr": "()",
        "kwargsrepr": kwargs,
        "origin": origin,
        "ignore_result": false,
    })
}

/// The task message of `registration`, with the id `id`, as kombu's
/// Redis transport pushes it on `queue`'s list.
pub fn redis_message(registration: &Registration, id: &str, queue: &str, origin: &str) -> Value {
    json!({
        "body": base64::engine::general_purpose::STANDARD.encode(body(registration)),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers(registration, id, origin),
        "properties": {
            "correlation_id": id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            // kombu tracks a message it has handed to a worker by this tag:
            // unique for each push, a repeat of the same task included.
            "delivery_tag": delivery_tag(id),
        },
    })
}

/// A tag no other push has: the task id's MD5 with the time and process.
fn delivery_tag(id: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = md5::compute(format!("{id}\n{now}\n{}", std::process::id()));
    super::event::uuid_text(&format!("{digest:x}"))
}

/// Where the tasks go: CUBE's Celery broker.
#[derive(Debug, Clone, PartialEq)]
pub enum Broker {
    Redis(RedisAddress),
    Amqp(AmqpAddress),
}

impl Broker {
    /// `redis://...` or `amqp://...`.
    pub fn parse(url: &str) -> Result<Broker, String> {
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("amqp") => AmqpAddress::parse(url).map(Broker::Amqp),
            Some("redis") => RedisAddress::parse(url).map(Broker::Redis),
            Some(other) => Err(format!(
                "{other}:// is not supported (redis:// and amqp:// are, without TLS)"
            )),
            None => Err("expected redis://HOST:PORT/DB or amqp://HOST:PORT/VHOST".into()),
        }
    }
}

/// A connection to the broker.
enum Connected {
    Redis(resp::Connection),
    Amqp(amqp::Connection),
}

/// Registers each series with CUBE through its Celery broker.
pub struct CelerySink {
    broker: Broker,
    /// Kept between events; dropped after a failure, made again next time.
    connection: Mutex<Option<Connected>>,
    queue: String,
    /// Celery's `origin` header: who sent the task.
    origin: String,
    /// Told of each registration (its count, then done).
    lonk: Option<Lonk>,
}

impl CelerySink {
    /// A sink for `broker`; nothing is connected until the first event.
    pub fn new(broker: Broker, queue: &str, lonk: Option<Lonk>) -> CelerySink {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        CelerySink {
            broker,
            connection: Mutex::new(None),
            queue: queue.to_string(),
            origin: format!("rx-listen{}@{host}", std::process::id()),
            lonk,
        }
    }

    /// Sends the task of `registration`, with the id `id`: pushed on the
    /// queue's list (Redis) or published to the queue and confirmed
    /// (AMQP); done once the broker has it.
    fn send(&self, registration: &Registration, id: &str) -> std::io::Result<()> {
        let mut held = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_none() {
            *held = Some(match &self.broker {
                Broker::Redis(address) => {
                    Connected::Redis(resp::Connection::open(address, BROKER_TIMEOUT)?)
                }
                Broker::Amqp(address) => {
                    Connected::Amqp(amqp::Connection::open(address, BROKER_TIMEOUT)?)
                }
            });
        }
        let sent = match held.as_mut().expect("connected above") {
            Connected::Redis(connection) => {
                let message = redis_message(registration, id, &self.queue, &self.origin);
                let message = message.to_string();
                connection
                    .command(&[b"LPUSH", self.queue.as_bytes(), message.as_bytes()])
                    .map(drop)
            }
            Connected::Amqp(connection) => {
                let properties = amqp::Properties {
                    content_type: "application/json",
                    content_encoding: "utf-8",
                    correlation_id: id.to_string(),
                    headers: headers(registration, id, &self.origin),
                };
                connection.publish(&self.queue, &properties, &body(registration))
            }
        };
        if sent.is_err() {
            *held = None;
        }
        sent
    }
}

impl Sink for CelerySink {
    fn name(&self) -> &'static str {
        "celery"
    }

    /// A broker that is down is waited for: CUBE must hear of every series.
    fn retries(&self) -> Option<u32> {
        None
    }

    /// An event whose series CUBE cannot take (no instance left on disk,
    /// or one without a StudyDate) is given up on at once.
    fn deliver(&self, event: &Event, _stop: &AtomicBool) -> Result<(), Failure> {
        let registration = Registration::of(event).map_err(Failure::Never)?;
        self.send(&registration, &event.event_id)
            .map_err(|e| Failure::Again(format!("cannot send the task to the broker: {e}")))?;
        if let Some(lonk) = &self.lonk {
            let subject = lonk.subject(&registration.pacs_name, &registration.series_instance_uid);
            lonk.count(&subject, registration.ndicom);
            lonk.done(&subject);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_count_days_as_oxidicom_does() {
        for (age, days) in [
            ("030Y", Some(10957)),
            ("003Y", Some(1096)),
            ("045Y", Some(16436)),
            ("020D", Some(20)),
            ("2W", Some(14)),
            ("5M", Some(152)),
            ("45", None),
            ("Y", None),
            ("abcY", None),
            ("", None),
        ] {
            assert_eq!(age_in_days(age), days, "{age}");
        }
    }

    #[test]
    fn the_message_carries_the_keyword_arguments_in_cubes_order() {
        let registration = Registration {
            patient_id: "1449c1d".into(),
            study_date: "2013-03-08".into(),
            study_instance_uid: "1.2.3".into(),
            series_instance_uid: "1.2.3.4".into(),
            pacs_name: "PACS".into(),
            path: "SERVICES/PACS/PACS/x/y/z".into(),
            ndicom: 192,
            patient_name: Some("anonymized".into()),
            patient_birth_date: None,
            patient_age: Some(1096),
            patient_sex: None,
            accession_number: None,
            modality: Some("MR".into()),
            protocol_name: None,
            study_description: None,
            series_description: None,
        };
        let message = redis_message(&registration, "the-id", "main2", "me");
        assert_eq!(message["headers"]["task"], TASK);
        assert_eq!(
            message["properties"]["delivery_info"]["routing_key"],
            "main2"
        );
        let body = base64::engine::general_purpose::STANDARD
            .decode(message["body"].as_str().unwrap())
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body[0], json!([]));
        let keys: Vec<&String> = body[1].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "PatientID",
                "StudyDate",
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "pacs_name",
                "path",
                "ndicom",
                "PatientName",
                "PatientBirthDate",
                "PatientAge",
                "PatientSex",
                "AccessionNumber",
                "Modality",
                "ProtocolName",
                "StudyDescription",
                "SeriesDescription"
            ]
        );
        assert_eq!(body[1]["ndicom"], 192);
        assert_eq!(body[1]["PatientSex"], Value::Null);
        let again = redis_message(&registration, "the-id", "main2", "me");
        assert_ne!(
            message["properties"]["delivery_tag"],
            again["properties"]["delivery_tag"]
        );
    }
}
