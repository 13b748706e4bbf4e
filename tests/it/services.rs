//! The real services rx-listen talks to in ChRIS, started by the tests on
//! free loopback ports and stopped when dropped: Debian's redis-server,
//! a Celery 5 worker from PyPI (get_oracle.sh installs it) running a task
//! with CUBE's name and signature, and Debian's nats-server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Running, examples_dir};

/// How long a service may take to start.
const START: Duration = Duration::from_secs(30);

/// A port nothing listens on now, below the kernel's ephemeral range: a
/// port from that range, let go, may be handed to an outgoing connection
/// before the service binds it (RabbitMQ, which binds its distribution
/// port seconds after it starts, found one taken so). Successive calls
/// step through the range from a point chosen once per test process.
pub fn free_port() -> u16 {
    const FIRST: u32 = 10_000;
    static NEXT: LazyLock<AtomicU32> = LazyLock::new(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        AtomicU32::new(std::process::id() ^ nanos)
    });
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(FIRST).max(1);
    for _ in 0..span {
        // A prime stride visits every port of the span before repeating.
        let port = FIRST + NEXT.fetch_add(7_919, Ordering::Relaxed) % span;
        let port = u16::try_from(port).expect("ports are below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port from {FIRST} to {ephemeral}");
}

/// Waits until `ready` holds, at most [`START`]; `what` says what for.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < START, "{what}: not within {START:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A program a service needs, or a failure saying how to get it.
fn needed(program: &str, package: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(program);
    let sbin = Path::new("/usr/sbin").join(program);
    [path, sbin]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{program} is missing: apt-get install {package}"))
}

/// redis-server on a free port, keeping nothing on disk.
pub struct Redis {
    running: Option<Running>,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis {
            running: None,
            port: free_port(),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it (its queues are lost with it: nothing is saved).
    pub fn stop(&mut self) {
        self.running = None;
    }

    /// Starts it again, on the same port.
    pub fn restart(&mut self) {
        let program = needed("redis-server", "redis-server");
        let running = Running::spawn(
            Command::new(program)
                .args(["--bind", "127.0.0.1", "--port"])
                .arg(self.port.to_string())
                .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"]),
        );
        // Its own word that it listens: another test's server may have
        // taken the port meanwhile (it would then exit, refused).
        wait_for("redis-server", || {
            running
                .stdout_so_far()
                .contains("Ready to accept connections")
        });
        self.running = Some(running);
    }
}

/// CUBE's task, as the worker runs it: each call appended to a file as a
/// JSON object of its keyword arguments and its task id.
const CUBE_TASKS: &str = r#"
import json, os
from celery import Celery

app = Celery("cube", broker=os.environ["BROKER"])
app.conf.broker_connection_retry_on_startup = True

@app.task(name="pacsfiles.tasks.register_pacs_series", bind=True)
def register_pacs_series(self, PatientID, StudyDate, StudyInstanceUID,
                         SeriesInstanceUID, pacs_name, path, ndicom,
                         PatientName=None, PatientBirthDate=None,
                         PatientAge=None, PatientSex=None,
                         AccessionNumber=None, Modality=None,
                         ProtocolName=None, StudyDescription=None,
                         SeriesDescription=None):
    call = dict(locals())
    del call["self"]
    call["task_id"] = self.request.id
    with open(os.environ["CALLS"], "a") as calls:
        calls.write(json.dumps(call) + "\n")
"#;

/// A Celery 5 worker taking CUBE's queue from a broker.
pub struct CeleryWorker {
    running: Running,
    calls: PathBuf,
    _dir: tempfile::TempDir,
}

impl CeleryWorker {
    /// A worker of `queue` on the broker at `broker`.
    pub fn start(broker: &str, queue: &str) -> CeleryWorker {
        let celery = examples_dir().join("cube-venv/bin/celery");
        assert!(
            celery.exists(),
            "Celery is missing at {}: run `./get_oracle.sh examples-data`",
            celery.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cube.py"), CUBE_TASKS).unwrap();
        let calls = dir.path().join("calls.ndjson");
        let running = Running::spawn(
            Command::new(celery)
                .args(["-A", "cube", "worker", "--pool", "solo", "-Q", queue])
                .args([
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ])
                .args(["-l", "info"])
                .current_dir(dir.path())
                .env("BROKER", broker)
                .env("CALLS", &calls),
        );
        wait_for("the Celery worker", || {
            running.stderr_so_far().contains(" ready.")
        });
        CeleryWorker {
            running,
            calls,
            _dir: dir,
        }
    }

    /// The tasks it has executed, in order.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        self.running.stderr_so_far()
    }
}

/// nats-server on a free port.
pub struct Nats {
    _running: Running,
    pub port: u16,
}

impl Nats {
    pub fn start() -> Nats {
        let port = free_port();
        let running = Running::spawn(
            Command::new(needed("nats-server", "nats-server"))
                .args(["-a", "127.0.0.1", "-p"])
                .arg(port.to_string()),
        );
        wait_for("nats-server", || {
            running.stderr_so_far().contains("Server is ready")
        });
        Nats {
            _running: running,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// A NATS client (nats-py) recording every message on a subject: each
/// a JSON line of its subject and its bytes in hex.
const SUBSCRIBER: &str = r#"
import asyncio, json, os, sys
import nats

async def main():
    client = await nats.connect(os.environ["NATS"])
    out = open(os.environ["OUT"], "a")
    async def record(message):
        out.write(json.dumps({"subject": message.subject, "data": message.data.hex()}) + "\n")
        out.flush()
    await client.subscribe(os.environ["SUBJECT"], cb=record)
    await client.flush()
    print("subscribed", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// What a subscriber of LONK's subjects has received.
pub struct Subscriber {
    _running: Running,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Subscriber {
    /// Subscribes to `subject` (wildcards allowed) on the server at `url`.
    pub fn start(url: &str, subject: &str) -> Subscriber {
        let python = examples_dir().join("cube-venv/bin/python");
        assert!(
            python.exists(),
            "nats-py is missing at {}: run `./get_oracle.sh examples-data`",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("messages.ndjson");
        let running = Running::spawn(
            Command::new(python)
                .args(["-c", SUBSCRIBER])
                .env("NATS", url)
                .env("SUBJECT", subject)
                .env("OUT", &out),
        );
        wait_for("the NATS subscriber", || {
            running.stderr_so_far().contains("subscribed")
        });
        Subscriber {
            _running: running,
            out,
            _dir: dir,
        }
    }

    /// The messages received on `subject`, in order.
    pub fn messages(&self, subject: &str) -> Vec<Vec<u8>> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|message| message["subject"] == subject)
            .map(|message| hex(message["data"].as_str().unwrap()))
            .collect()
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// Orthanc (Debian's), a PACS that sends: instances are uploaded over
/// its REST API, and pushed from it to a modality as oxidicom's own
/// tests push them.
pub struct Orthanc {
    _running: Running,
    http: u16,
    _dir: tempfile::TempDir,
}

impl Orthanc {
    /// Orthanc with the AE title `aet`, knowing the modality `name`
    /// (`called` at 127.0.0.1:`port`).
    pub fn start(aet: &str, name: &str, called: &str, port: u16) -> Orthanc {
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let config = serde_json::json!({
            "Name": "rx-listen-tests",
            "StorageDirectory": dir.path().join("db"),
            "IndexDirectory": dir.path().join("db"),
            "HttpPort": http,
            "DicomPort": free_port(),
            "DicomAet": aet,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomModalities": { name: [called, "127.0.0.1", port] },
            "Plugins": [],
        });
        let path = dir.path().join("orthanc.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let running = Running::spawn(Command::new(needed("Orthanc", "orthanc")).arg(&path));
        let orthanc = Orthanc {
            _running: running,
            http,
            _dir: dir,
        };
        wait_for("Orthanc's REST API", || {
            orthanc.curl(&["/system"]).status.success()
        });
        orthanc
    }

    fn curl(&self, args: &[&str]) -> std::process::Output {
        let (path, rest) = args.split_first().unwrap();
        Command::new("curl")
            .args(["-sS", "-f", "--max-time", "120"])
            .arg(format!("http://127.0.0.1:{}{path}", self.http))
            .args(rest)
            .output()
            .expect("curl (Debian: curl)")
    }

    /// Posts `json` to `path`; returns the answer.
    pub fn post(&self, path: &str, json: &Value) -> Value {
        let out = self.curl(&[path, "-X", "POST", "--data-binary", &json.to_string()]);
        assert!(
            out.status.success(),
            "POST {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Uploads the files `files` into its store.
    pub fn upload(&self, files: &[PathBuf]) {
        for file in files {
            let data = format!("@{}", file.display());
            let out = self.curl(&["/instances", "-X", "POST", "--data-binary", &data]);
            assert!(
                out.status.success(),
                "uploading {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Pushes the series `series_uid` to the modality `name`, and waits
    /// until it is sent; returns Orthanc's report.
    pub fn push_series(&self, name: &str, series_uid: &str) -> Value {
        let found = self.post(
            "/tools/find",
            &serde_json::json!({"Level": "Series", "Query": {"SeriesInstanceUID": series_uid}}),
        );
        assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
        self.post(
            &format!("/modalities/{name}/store"),
            &serde_json::json!({"Resources": found, "Synchronous": true, "Timeout": 120}),
        )
    }
}

/// RabbitMQ (Debian's), an AMQP broker as ChRIS deployments run it, on a
/// free port with its state in a scratch dir.
pub struct RabbitMq {
    _running: Running,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RabbitMq {
    pub fn start() -> RabbitMq {
        let program = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        assert!(
            program.exists(),
            "RabbitMQ is missing: apt-get install rabbitmq-server"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(dir.path().join("enabled_plugins"), "[].").unwrap();
        let running = Running::spawn(
            Command::new(program)
                // Where the Erlang VM leaves a crash dump, if any.
                .current_dir(dir.path())
                .env("HOME", dir.path())
                .env("RABBITMQ_NODENAME", format!("rx{port}@localhost"))
                .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                .env("RABBITMQ_NODE_PORT", port.to_string())
                .env("RABBITMQ_DIST_PORT", free_port().to_string())
                .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
                .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
                .env("RABBITMQ_LOGS", "-")
                .env(
                    "RABBITMQ_ENABLED_PLUGINS_FILE",
                    dir.path().join("enabled_plugins"),
                )
                .env("RABBITMQ_CONFIG_FILE", dir.path().join("rabbitmq")),
        );
        let started = Instant::now();
        while !running.stdout_so_far().contains("Server startup complete") {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "RabbitMQ did not start: {}{}",
                running.stdout_so_far(),
                running.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RabbitMq {
            _running: running,
            port,
            _dir: dir,
        }
    }

    /// Its default vhost, as the guest (who may log in from loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}//", self.port)
    }
}

/// An HTTP GET of `path` on 127.0.0.1:`port`: the status code (0 if
/// nothing answered) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

/// A Prometheus server (Debian's `prometheus`) on loopback, scraping
/// `target` (host:port) every second.
pub struct Prometheus {
    _running: Running,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        let program = needed("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
                 scrape_configs:\n  - job_name: rx\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let running = Running::spawn(
            Command::new(program)
                .current_dir(dir.path())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        );
        let prometheus = Prometheus {
            _running: running,
            port,
            _dir: dir,
        };
        wait_for("Prometheus ready", || prometheus.get("/-/ready").is_some());
        prometheus
    }

    fn get(&self, path: &str) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sS", "-f", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl runs (apt-get install curl)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The value of the instant query `query`, if it has one sample.
    pub fn value(&self, query: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sS", "-f", "--max-time", "5", "-G"])
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .arg("--data-urlencode")
            .arg(format!("query={query}"))
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout).ok()?;
        let result = answer["data"]["result"].as_array()?;
        match result.as_slice() {
            [sample] => sample["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }
}
