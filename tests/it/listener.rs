//! The rx-listen harness of the tests: rx-listen started on a free
//! loopback port and stopped by the test, DCMTK's storescu to send to it,
//! and what the tests read of what it filed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::Running;

pub const AE_TITLE: &str = "RXLISTEN";
/// How long anything here may take.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// rx-listen on a free loopback port, filing into a scratch dir (or the
/// dirs given); killed if the test ends before it is stopped.
pub struct Listener {
    pub running: Running,
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Listener {
    pub fn start(extra: &[&str]) -> Listener {
        let tmp = tempfile::tempdir().unwrap();
        let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
        let program = Command::new(listen_path());
        Listener::start_with(program, &data, &log, extra, "127.0.0.1:0", tmp)
    }

    /// `program` (rx-listen, or a wrapper with rx-listen as its first
    /// argument) filing into `data` and `log`.
    pub fn start_in(program: Command, data: &Path, log: &Path, extra: &[&str]) -> Listener {
        Listener::start_at(program, data, log, extra, "127.0.0.1:0")
    }

    /// [`Listener::start_in`] listening on `address` (on 127.0.0.1).
    pub fn start_at(
        program: Command,
        data: &Path,
        log: &Path,
        extra: &[&str],
        address: &str,
    ) -> Listener {
        let tmp = tempfile::tempdir().unwrap();
        Listener::start_with(program, data, log, extra, address, tmp)
    }

    fn start_with(
        mut program: Command,
        data: &Path,
        log: &Path,
        extra: &[&str],
        address: &str,
        tmp: tempfile::TempDir,
    ) -> Listener {
        let running = Running::spawn(
            program
                .arg("--datadir")
                .arg(data)
                .arg("--logdir")
                .arg(log)
                .args(["--aet", AE_TITLE, "--log-ndjson"])
                .args(extra)
                .arg(address)
                .stdin(std::process::Stdio::null()),
        );
        let started = Instant::now();
        let port = loop {
            let said = running.stderr_so_far();
            if let Some(port) = said
                .lines()
                .find_map(|line| line.split("listening on 127.0.0.1:").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|port| port.parse().ok())
            {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "rx-listen did not start: {said}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Listener {
            running,
            port,
            data: data.to_path_buf(),
            log: log.to_path_buf(),
            _tmp: tmp,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.data.clone()
    }

    /// Its peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.running.child.id()))
            .expect("Linux /proc");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }

    pub fn log(&self) -> PathBuf {
        self.log.clone()
    }

    /// Stops it (SIGTERM), which must exit 0; returns what it printed.
    pub fn stop(&mut self) -> Output {
        let pid = self.running.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let out = self.running.finish(PATIENCE).unwrap();
        assert!(
            out.status.success(),
            "rx-listen exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

pub fn listen_path() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("rx-listen")
}

/// Runs a sender to its end (at most [`PATIENCE`]); it must succeed.
pub fn send(mut cmd: Command) {
    cmd.env("TCP_NODELAY", "1");
    let out = Running::spawn(cmd.stdin(std::process::Stdio::null()))
        .finish(PATIENCE)
        .unwrap_or_else(|e| panic!("{cmd:?} {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn storescu(port: u16, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new("storescu");
    cmd.args(["-aet", "STORESCU", "-aec", AE_TITLE])
        .args(extra)
        .args(["+sd", "127.0.0.1"])
        .arg(port.to_string())
        .arg(dir);
    cmd
}

pub fn dcmsend(port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new("dcmsend");
    cmd.args(["-aet", "DCMSEND", "-aec", AE_TITLE, "127.0.0.1"])
        .arg(port.to_string())
        .arg(dir)
        .arg("--scan-directories");
    cmd
}

/// The bytes of the data set of the Part 10 file `bytes`: after its meta
/// group, walked element by element (explicit VR little endian), so that
/// a group length that does not count every element misleads nothing.
pub fn data_set(bytes: &[u8]) -> &[u8] {
    assert_eq!(&bytes[128..132], b"DICM");
    let mut at = 132;
    while bytes[at..at + 2] == [2, 0] {
        let vr = &bytes[at + 4..at + 6];
        let long = matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT" | b"UC" | b"UR");
        at += if long {
            12 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize
        } else {
            8 + u16::from_le_bytes(bytes[at + 6..at + 8].try_into().unwrap()) as usize
        };
    }
    &bytes[at..]
}
