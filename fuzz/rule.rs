//! Issue 13's rule as the `structure` fuzz target checks it (shared with
//! `tests/it/fuzz_regressions.rs`): a file whose header both DCMTK's
//! `dcmdump` and pydicom read is placed; one they both fail on is refused.
//!
//! Our reads run in-process; the toolkits only where they can disagree
//! with us. When we refuse a file, `dcmdump -q` is asked (its exit status);
//! if it reads the file, pydicom is asked too (as px-repack reads a header:
//! `dcmread(stop_before_pixels=True)`, then every keyword of `ds.dir()`),
//! unless the file lacks the preamble and `DICM` pydicom needs without
//! `force=True`. Both reading it is a breach of the rule: a panic, which the
//! fuzzer keeps as a crash. When we accept a file, `dcmdump` is asked for
//! one file in [`Oracle::accept_sample`], and pydicom when `dcmdump` fails:
//! the rule allows placing it only if pydicom reads it; either way that is
//! counted, not a failure (see fuzz/README.md).
//!
//! A refusal must also name the content as the cause: the files are on
//! tmpfs, so "cannot read" (a system error, which `--quarantine` leaves in
//! place) is a misreading (finding S4, recognised while it is open).
//!
//! pydicom runs in one long-lived helper process (`pydicom_verdict.py`), so
//! that asking costs milliseconds, not a Python start-up.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a toolkit may take on one file before it is taken to fail.
const TIMEOUT: Duration = Duration::from_secs(20);

/// What a toolkit said of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Reads,
    Fails(String),
    /// Not asked, or it could not answer (no Python, a timeout).
    Unknown(String),
}

/// The toolkits, and where the counts go.
pub struct Oracle {
    /// Ask `dcmdump` about one accepted file in this many (1: all, 0: none).
    pub accept_sample: u64,
    /// Where to append one line per file ("category\treason"), and keep
    /// sample files of the rarer categories; `None`: nowhere.
    pub stats: Option<PathBuf>,
    python: Option<PathBuf>,
    script: PathBuf,
    pydicom: Option<Pydicom>,
    dcmdump_cache: HashMap<u64, Verdict>,
    samples_kept: HashMap<String, usize>,
}

/// What the rule check found, for a caller that counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub category: &'static str,
    pub reason: String,
}

impl Oracle {
    /// `root` is the repository (for the helper script and the venv);
    /// RX_FUZZ_PYTHON names another Python with pydicom 2.x,
    /// RX_FUZZ_STATS a directory for the counts, RX_FUZZ_ACCEPT_SAMPLE how
    /// often to check an accepted file (default 8).
    pub fn from_env(root: &Path) -> Oracle {
        let python = std::env::var_os("RX_FUZZ_PYTHON")
            .map(PathBuf::from)
            .or_else(|| Some(root.join("examples-data/pypx-venv/bin/python")))
            .filter(|p| p.exists());
        let accept_sample = std::env::var("RX_FUZZ_ACCEPT_SAMPLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let stats = std::env::var_os("RX_FUZZ_STATS").map(PathBuf::from);
        if let Some(dir) = &stats {
            let _ = fs::create_dir_all(dir.join("samples"));
        }
        Oracle {
            accept_sample,
            stats,
            python,
            script: root.join("fuzz/pydicom_verdict.py"),
            pydicom: None,
            dcmdump_cache: HashMap::new(),
            samples_kept: HashMap::new(),
        }
    }

    /// `dcmdump -q path`: reads it if it exits 0.
    pub fn dcmdump(&mut self, path: &Path, bytes: &[u8]) -> Verdict {
        let key = hash(bytes);
        if let Some(verdict) = self.dcmdump_cache.get(&key) {
            return verdict.clone();
        }
        let verdict = run_dcmdump(path);
        if self.dcmdump_cache.len() > 100_000 {
            self.dcmdump_cache.clear();
        }
        self.dcmdump_cache.insert(key, verdict.clone());
        verdict
    }

    /// pydicom 2.x, as px-repack reads a header.
    pub fn pydicom(&mut self, path: &Path) -> Verdict {
        let Some(python) = &self.python else {
            return Verdict::Unknown("no Python with pydicom (run ./get_oracle.sh)".into());
        };
        if self.pydicom.is_none() {
            match Pydicom::start(python, &self.script) {
                Ok(helper) => self.pydicom = Some(helper),
                Err(e) => return Verdict::Unknown(format!("cannot start pydicom: {e}")),
            }
        }
        let helper = self.pydicom.as_mut().expect("started");
        match helper.ask(path) {
            Ok(verdict) => verdict,
            Err(e) => {
                // Killed, hung or gone: a fresh one next time.
                if let Some(mut helper) = self.pydicom.take() {
                    let _ = helper.child.kill();
                    let _ = helper.child.wait();
                }
                Verdict::Unknown(e)
            }
        }
    }

    /// Checks the rule on the file at `path` (holding `bytes`), which our
    /// reads `refused` (with that reason) or not; `has_preamble`: whether
    /// pydicom can read it without `force=True`. Panics on a breach.
    pub fn check(
        &mut self,
        path: &Path,
        bytes: &[u8],
        refused: Option<&str>,
        has_preamble: bool,
    ) -> Outcome {
        if let Some(why) = refused {
            // The file is on tmpfs: a read that fails is the content's
            // fault, and must be said so (a system error is not quarantined).
            let system = why.starts_with("cannot read") || why.starts_with("cannot open");
            assert!(
                !system,
                "refused as a system error, not as bad content: {why}"
            );
        }
        let outcome = match refused {
            Some(why) => {
                let reason = normalise(why);
                match self.dcmdump(path, bytes) {
                    Verdict::Reads if !has_preamble => Outcome {
                        category: "refused; dcmdump reads; no preamble (pydicom needs force)",
                        reason,
                    },
                    Verdict::Reads => match self.pydicom(path) {
                        Verdict::Reads if known(bytes, why).is_some() => Outcome {
                            category: "refused; both read; a known open finding",
                            reason: format!("{}: {reason}", known(bytes, why).unwrap_or_default()),
                        },
                        Verdict::Reads => panic!(
                            "the rule: dcmdump and pydicom read this file, rx-repack refuses it: {why}"
                        ),
                        Verdict::Fails(e) => Outcome {
                            category: "refused; dcmdump reads; pydicom fails",
                            reason: format!("{reason} | pydicom: {}", normalise(&e)),
                        },
                        Verdict::Unknown(e) => Outcome {
                            category: "refused; dcmdump reads; pydicom unknown",
                            reason: format!("{reason} | {e}"),
                        },
                    },
                    Verdict::Fails(_) | Verdict::Unknown(_) => Outcome {
                        category: "refused; dcmdump fails",
                        reason,
                    },
                }
            }
            None if self.accept_sample == 0 || !hash(bytes).is_multiple_of(self.accept_sample) => {
                Outcome {
                    category: "accepted; not asked",
                    reason: String::new(),
                }
            }
            None => match self.dcmdump(path, bytes) {
                Verdict::Reads => Outcome {
                    category: "accepted; dcmdump reads",
                    reason: String::new(),
                },
                Verdict::Fails(e) | Verdict::Unknown(e) => {
                    let dcmdump = normalise(&e);
                    match (has_preamble, self.pydicom(path)) {
                        (false, _) => Outcome {
                            category: "accepted; dcmdump fails; no preamble (pydicom needs force)",
                            reason: dcmdump,
                        },
                        (true, Verdict::Reads) => Outcome {
                            category: "accepted; dcmdump fails; pydicom reads",
                            reason: dcmdump,
                        },
                        (true, Verdict::Fails(e)) => Outcome {
                            category: "accepted; dcmdump fails; pydicom fails",
                            reason: format!("pydicom: {}", normalise(&e)),
                        },
                        (true, Verdict::Unknown(e)) => Outcome {
                            category: "accepted; dcmdump fails; pydicom unknown",
                            reason: e,
                        },
                    }
                }
            },
        };
        self.record(&outcome, bytes);
        outcome
    }

    /// Appends the outcome to this process's counts and keeps a few files
    /// of each category that involves a toolkit disagreeing.
    fn record(&mut self, outcome: &Outcome, bytes: &[u8]) {
        let Some(dir) = &self.stats else {
            return;
        };
        let line = format!("{}\t{}\n", outcome.category, outcome.reason);
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.tsv", std::process::id())))
        {
            let _ = file.write_all(line.as_bytes());
        }
        let keep = outcome.category.contains("fails;") || outcome.category.contains("reads;");
        if !keep {
            return;
        }
        let slug: String = outcome
            .category
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let kept = self.samples_kept.entry(slug.clone()).or_default();
        let samples = dir.join("samples").join(&slug);
        // At most 20 per process, 200 in all, of each category.
        let in_all = fs::read_dir(&samples).map_or(0, |d| d.count());
        if *kept >= 20 || in_all >= 400 {
            return;
        }
        *kept += 1;
        let _ = fs::create_dir_all(&samples);
        let name = format!("{:016x}", hash(bytes));
        let _ = fs::write(samples.join(format!("{name}.dcm")), bytes);
        let _ = fs::write(
            samples.join(format!("{name}.txt")),
            format!("{}\n{}\n", outcome.category, outcome.reason),
        );
    }
}

/// Whether a file (its bytes, our reason for refusing it) is an open finding.
pub type Recognise = fn(&[u8], &str) -> bool;

/// The open findings (fuzz/README.md, "Findings"), recognised so that a run
/// counts them and goes on to find others. Empty once they are fixed.
pub const KNOWN: [(&str, Recognise); 0] = [];

/// Which open finding a file that both toolkits read and we refuse is.
fn known(bytes: &[u8], why: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(_, is)| is(bytes, why))
        .map(|(name, _)| *name)
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// A reason without its numbers and tags, so that alike reasons count as one.
pub fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
            out.push('N');
        } else if c == '(' {
            // (gggg,eeee)
            let rest: String = chars.clone().take(10).collect();
            let is_tag = rest.len() == 10
                && rest.as_bytes()[4] == b','
                && rest.as_bytes()[9] == b')'
                && rest
                    .chars()
                    .enumerate()
                    .all(|(i, c)| i == 4 || i == 9 || c.is_ascii_hexdigit());
            if is_tag {
                out.push_str("(gggg,eeee)");
                for _ in 0..10 {
                    chars.next();
                }
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out.chars().take(300).collect()
}

fn run_dcmdump(path: &Path) -> Verdict {
    let child = Command::new("dcmdump")
        .arg("-q")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return Verdict::Unknown(format!("cannot run dcmdump: {e}")),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Verdict::Reads,
            Ok(Some(status)) => return Verdict::Fails(format!("dcmdump: {status}")),
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Verdict::Fails("dcmdump: timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Verdict::Unknown(format!("dcmdump: {e}")),
        }
    }
}

/// The long-lived pydicom helper: a path a line in, a verdict a line out.
struct Pydicom {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Pydicom {
    fn start(python: &Path, script: &Path) -> std::io::Result<Pydicom> {
        // 12 GiB of address space: pydicom allocates what a length declares
        // (4 GiB at most, untouched), but a runaway must not take the machine.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 12582912; exec \"$0\" \"$1\"")
            .arg(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Pydicom {
            child,
            stdin,
            lines,
        })
    }

    fn ask(&mut self, path: &Path) -> Result<Verdict, String> {
        let path = path.to_str().ok_or("a path that is not UTF-8")?;
        writeln!(self.stdin, "{path}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("pydicom helper: {e}"))?;
        // Its first answer waits for pydicom to load.
        let line = self
            .lines
            .recv_timeout(TIMEOUT + Duration::from_secs(10))
            .map_err(|_| "pydicom helper: no answer (timed out or died)".to_string())?;
        Ok(match line.split_once('\t') {
            None if line == "ok" => Verdict::Reads,
            Some(("error", why)) => Verdict::Fails(why.to_string()),
            _ => Verdict::Unknown(format!("pydicom helper said {line:?}")),
        })
    }
}

impl Drop for Pydicom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
