//! rx-listen's serving code on one loopback connection carrying fuzz
//! bytes: the `association` target, and its corpus replayed by
//! `tests/it/fuzz_regressions.rs`.
//!
//! The bytes are written by a client socket, whose writing side is then
//! closed; the connection is served in process by
//! `rx_repack::listener::serve_connection`, as rx-listen serves each
//! connection it accepts (negotiation, command sets, C-STORE data sets
//! streamed into files and filed). The client reads what it is sent to
//! the end; the run is over when the server has closed the connection
//! and its thread has returned. A panic of the server is raised again
//! in the caller.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use rx_repack::listener::cli::ListenCli;
use rx_repack::listener::config::ListenConfig;
use rx_repack::listener::serve_connection;

/// A run longer than this is a hang: every input is written at once and
/// the client closes its side, so the server needs no timeout to end.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs between clean-ups of the data and log dirs.
const CLEAN_EVERY: u32 = 200;

/// A loopback listener and rx-listen's config, filing into `dir`.
pub struct Server {
    listener: TcpListener,
    config: ListenConfig,
    dir: PathBuf,
    runs: u32,
}

impl Server {
    pub fn new(dir: &Path) -> Server {
        let arg = |name: &str| dir.join(name).display().to_string();
        let cli = ListenCli::parse_from([
            "rx-listen",
            "--datadir",
            &arg("data"),
            "--logdir",
            &arg("log"),
            "--quarantine",
            &arg("quarantine"),
            "--fsync",
            "never",
            "-v",
            "0",
            // Timeouts that a run never reaches unless the server hangs.
            "--acse-timeout",
            "20",
            "--socket-timeout",
            "20",
            "127.0.0.1:0",
        ]);
        Server {
            listener: TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port"),
            config: ListenConfig::from_cli(cli).expect("a config"),
            dir: dir.to_path_buf(),
            runs: 0,
        }
    }

    /// Serves one connection carrying `input`; returns how long it took.
    pub fn serve(&mut self, input: &[u8]) -> Duration {
        let started = Instant::now();
        let mut client =
            TcpStream::connect(self.listener.local_addr().unwrap()).expect("a connection");
        let (stream, _) = self.listener.accept().expect("the connection accepted");
        let config = &self.config;
        std::thread::scope(|scope| {
            let server = scope.spawn(move || serve_connection(stream, config));
            let _ = client.set_write_timeout(Some(LIMIT));
            let _ = client.set_read_timeout(Some(LIMIT));
            // The server may stop reading (an abort): the rest is lost.
            let _ = client.write_all(input);
            let _ = client.shutdown(Shutdown::Write);
            let mut sink = [0u8; 16 << 10];
            while let Ok(n) = client.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            if let Err(panic) = server.join() {
                std::panic::resume_unwind(panic);
            }
        });
        self.runs += 1;
        if self.runs.is_multiple_of(CLEAN_EVERY) {
            self.clean();
        }
        started.elapsed()
    }

    /// Removes what was filed.
    pub fn clean(&self) {
        for sub in ["data", "log", "quarantine"] {
            let _ = std::fs::remove_dir_all(self.dir.join(sub));
        }
    }
}
