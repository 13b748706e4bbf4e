//! Issue 13's rule over every public DICOM sample the package registries
//! ship (the corpus and the toolkits' verdicts are made once by
//! `get_oracle.sh`, in `examples-data/conformance/`; docs/conformance.md
//! says what they hold):
//!
//! - a file whose header both DCMTK's `dcmdump` and pydicom read is placed
//!   (exit 0, exactly one file in the data dir, byte-identical to the
//!   source, the source still there) and recorded (the six records of one
//!   instance, each parsing, the image record's `FSlocation` naming the
//!   copy);
//! - a file both fail on is refused: exit 1, one line on stderr naming the
//!   file, the source untouched, and nothing in the data dir or the log dir
//!   (no file and no directory: a refusal creates nothing);
//! - a file only one of them reads may be placed or refused, but either
//!   way cleanly, as above.
//!
//! A file that is placed where the rule says refused, or refused where it
//! says placed, fails the test unless `tests/conformance_exceptions.tsv`
//! lists it with a reason; that file is the only list. Each
//! file is run once through the real binary, storescp-style
//! (`--xcrdirfile F --datadir D --logdir L`, D and L fresh and empty), with
//! 1 GiB of address space, the files shared among one thread per CPU. The
//! summary and a table to refresh docs/conformance.md from are written to
//! `target/conformance/` (under CARGO_TARGET_DIR when set).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use walkdir::WalkDir;

use crate::common::{
    examples_dir, files_under, is_temp_name, refusal_problems, run_bounded, source_problems,
};

/// The first line of `conformance/STAMP` these tests are written for;
/// `get_oracle.sh` writes it (its `conformance_recipe` variable).
const RECIPE: &str = "conformance recipe 1";

/// Address space for each call, as in odd_files.rs: a file that makes the
/// binary allocate wildly fails instead of taking the machine's memory.
const MEMORY_LIMIT_KIB: u64 = 1 << 20;

const MAKE: &str = "run `./get_examples.sh examples-data && ./get_oracle.sh examples-data`";

/// One file of the corpus and the toolkits' verdicts on it (a line of
/// `verdicts.tsv`).
struct Sample {
    /// Its path under `conformance/files/`.
    name: String,
    size: u64,
    /// `dcmdump -q`'s exit status, and the first error line a plain
    /// `dcmdump` prints.
    dcmdump: i32,
    dcmdump_message: String,
    /// Whether pydicom 2.4.5 reads the header, and its exception if not.
    pydicom_reads: bool,
    pydicom_message: String,
}

impl Sample {
    fn dcmdump_reads(&self) -> bool {
        self.dcmdump == 0
    }

    /// What the rule asks of rx-repack: `Some(true)` placed, `Some(false)`
    /// refused, `None` either.
    fn expected(&self) -> Option<bool> {
        match (self.dcmdump_reads(), self.pydicom_reads) {
            (true, true) => Some(true),
            (false, false) => Some(false),
            _ => None,
        }
    }

    /// The toolkits' verdicts, as the report shows them.
    fn verdicts(&self) -> (String, String) {
        let dcmdump = if self.dcmdump_reads() {
            "reads".to_string()
        } else {
            format!("fails ({}): {}", self.dcmdump, self.dcmdump_message)
        };
        let pydicom = if self.pydicom_reads {
            "reads".to_string()
        } else {
            format!("fails: {}", self.pydicom_message)
        };
        (dcmdump, pydicom)
    }
}

/// The corpus directory and its samples; fails, saying how to make them,
/// when they are missing or were made by another recipe.
fn corpus() -> (PathBuf, Vec<Sample>) {
    let dir = examples_dir().join("conformance");
    let stamp = std::fs::read_to_string(dir.join("STAMP")).unwrap_or_else(|e| {
        panic!(
            "the conformance corpus is missing from {} ({e}): {MAKE}",
            dir.display()
        )
    });
    assert_eq!(
        stamp.lines().next(),
        Some(RECIPE),
        "{} was made by another recipe of get_oracle.sh: {MAKE}",
        dir.display()
    );
    let tsv = std::fs::read_to_string(dir.join("verdicts.tsv"))
        .unwrap_or_else(|e| panic!("{}/verdicts.tsv: {e}: {MAKE}", dir.display()));
    let samples: Vec<Sample> = tsv
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [
                name,
                size,
                dcmdump,
                dcmdump_message,
                pydicom,
                pydicom_message,
            ] = fields[..]
            else {
                panic!("not a line of verdicts.tsv: {line:?}: {MAKE}")
            };
            Sample {
                name: name.to_string(),
                size: size.parse().expect("a size"),
                dcmdump: dcmdump.parse().expect("an exit status"),
                dcmdump_message: dcmdump_message.to_string(),
                pydicom_reads: pydicom == "ok",
                pydicom_message: pydicom_message.to_string(),
            }
        })
        .collect();
    assert!(
        !samples.is_empty(),
        "{}/verdicts.tsv is empty: {MAKE}",
        dir.display()
    );
    let files: Vec<PathBuf> = files_under(&dir.join("files"));
    assert_eq!(
        files.len(),
        samples.len(),
        "{}/files does not hold the files verdicts.tsv names: {MAKE}",
        dir.display()
    );
    for sample in &samples {
        let path = dir.join("files").join(&sample.name);
        let size = std::fs::metadata(&path).map(|m| m.len()).ok();
        assert_eq!(
            size,
            Some(sample.size),
            "{} is missing or not the file the verdicts were made on: {MAKE}",
            path.display()
        );
    }
    (dir, samples)
}

/// The exceptions: file name -> reason, from
/// `tests/conformance_exceptions.tsv` (`name<TAB>reason` a line, `#`
/// comments).
fn exceptions() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance_exceptions.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the exceptions {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line.split_once('\t').unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "{}: the exception for {name} gives no reason (name, a tab, the reason)",
            path.display()
        );
        out.insert(name.trim().to_string(), reason.trim().to_string());
    }
    out
}

/// What one call did.
struct Outcome {
    placed: bool,
    /// The cause rx-repack gave for a refusal (its line without the
    /// `rx-repack: error: PATH: ` prefix), or its exit status if it did
    /// something else than place or refuse.
    message: String,
    /// Ways the call broke the rule whatever the verdicts: a placement
    /// that is not one complete copy with its records, a refusal that
    /// left something behind or said it badly.
    problems: Vec<String>,
}

/// Runs rx-repack once on a writable copy of `src`, storescp-style, and
/// checks what it left.
fn repack(src: &Path) -> Outcome {
    let scratch = tempfile::tempdir().unwrap();
    let inbox = scratch.path().join("in");
    let (datadir, logdir) = (scratch.path().join("data"), scratch.path().join("log"));
    for dir in [&inbox, &datadir, &logdir] {
        std::fs::create_dir(dir).unwrap();
    }
    let file = inbox.join(src.file_name().unwrap());
    std::fs::copy(src, &file).unwrap();
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&file, perms).unwrap();
    let original = std::fs::read(&file).unwrap();

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(crate::common::rx_path())
        .arg("--xcrdirfile")
        .arg(&file)
        .arg("--datadir")
        .arg(&datadir)
        .arg("--logdir")
        .arg(&logdir);
    let out = run_bounded(cmd);
    let mut problems = source_problems(&file, &original);
    match out.status.code() {
        Some(0) => {
            problems.extend(placement_problems(&datadir, &logdir, &original));
            Outcome {
                placed: true,
                message: String::new(),
                problems,
            }
        }
        Some(1) => {
            problems.extend(refusal_problems(&out, &file, ""));
            problems.extend(left_behind(&datadir, &logdir));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let prefix = format!("rx-repack: error: {}: ", file.display());
            let line = stderr.lines().next().unwrap_or_default();
            Outcome {
                placed: false,
                message: line.strip_prefix(&prefix).unwrap_or(line).to_string(),
                problems,
            }
        }
        _ => {
            problems.push(format!("neither placed nor refused: {}", printed(&out)));
            problems.extend(left_behind(&datadir, &logdir));
            Outcome {
                placed: false,
                message: format!("{}", out.status),
                problems,
            }
        }
    }
}

/// What is wrong with a placement: the data dir must hold exactly one
/// file, `original`'s bytes, and the log dir the six records of one
/// instance, each parsing, the image record naming that file.
fn placement_problems(datadir: &Path, logdir: &Path, original: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let placed = files_under(datadir);
    let copy = match placed.as_slice() {
        [one] => {
            if std::fs::read(one).unwrap() != original {
                problems.push(format!(
                    "the copy {} differs from the source",
                    one.display()
                ));
            }
            Some(one.clone())
        }
        many => {
            problems.push(format!("{} files in the data dir, not one", many.len()));
            None
        }
    };
    problems.extend(record_problems(logdir));
    // The record kinds of one instance, each expected once.
    let kinds = [
        "patientData/*.json",
        "studyData/*-meta.json",
        "studyData/*-series/*-meta.json",
        "seriesData/*-meta.json",
        "seriesData/*-pack.json",
        "seriesData/*-img/*.json",
    ];
    let mut counts: BTreeMap<&str, usize> = kinds.iter().map(|k| (*k, 0)).collect();
    for path in files_under(logdir) {
        let rel = path.strip_prefix(logdir).unwrap();
        if rel.starts_with(".rx-repack") {
            continue;
        }
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let kind = match parts.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["patientData", f] if f.ends_with(".json") => kinds[0],
            ["studyData", f] if f.ends_with("-meta.json") => kinds[1],
            ["studyData", d, f] if d.ends_with("-series") && f.ends_with("-meta.json") => kinds[2],
            ["seriesData", f] if f.ends_with("-pack.json") => kinds[4],
            ["seriesData", f] if f.ends_with("-meta.json") => kinds[3],
            ["seriesData", d, f] if d.ends_with("-img") && f.ends_with(".json") => {
                if let Some(copy) = &copy {
                    let record: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_default();
                    let location = find_key(&record, "FSlocation");
                    if location.and_then(|v| v.as_str()) != copy.to_str() {
                        problems.push(format!(
                            "the image record {} gives FSlocation {location:?}, not {}",
                            rel.display(),
                            copy.display()
                        ));
                    }
                }
                kinds[5]
            }
            _ => {
                problems.push(format!("unexpected file in the log dir: {}", rel.display()));
                continue;
            }
        };
        *counts.get_mut(kind).unwrap() += 1;
    }
    for (kind, n) in counts {
        if n != 1 {
            problems.push(format!("{n} records {kind} in the log dir, not one"));
        }
    }
    problems
}

/// What is wrong in a log dir: a file in the directories pypx lists that
/// is not a non-empty, parseable `.json`, or a file in our work dir other
/// than the lock and temporary files. (common's `log_problems` would do,
/// but takes `patientData/.json`, the record of an empty PatientID, named
/// as px-repack names it, for a file without the extension.)
fn record_problems(logdir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for path in files_under(logdir) {
        let rel = path.strip_prefix(logdir).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        if rel.starts_with(".rx-repack") {
            if name != "patientData.lock" && !is_temp_name(rel) {
                problems.push(format!(
                    "unexpected file in the log work dir: {}",
                    rel.display()
                ));
            }
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if is_temp_name(rel) || !name.ends_with(".json") {
            problems.push(format!(
                "not a record, in a listed directory: {}",
                rel.display()
            ));
        } else if bytes.is_empty() {
            problems.push(format!("empty record: {}", rel.display()));
        } else if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            problems.push(format!("record does not parse: {}: {e}", rel.display()));
        }
    }
    problems
}

/// The first value of `key` anywhere in `value`.
fn find_key<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

/// Anything, file or directory, under the data dir or the log dir.
fn left_behind(datadir: &Path, logdir: &Path) -> Vec<String> {
    [datadir, logdir]
        .into_iter()
        .flat_map(|root| {
            WalkDir::new(root)
                .min_depth(1)
                .into_iter()
                .map(|e| e.unwrap().into_path())
                .collect::<Vec<_>>()
        })
        .map(|p| format!("left behind by a refusal: {}", p.display()))
        .collect()
}

/// The exit status and the start of stderr, for messages.
fn printed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().take(3).collect();
    format!("{}, stderr {:?}", out.status, lines.join("\n"))
}

/// Runs `repack` on every sample, one thread per CPU.
fn run_all(dir: &Path, samples: &[Sample]) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(samples.iter().map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sample) = samples.get(i) else { break };
                    let outcome = repack(&dir.join("files").join(&sample.name));
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|o| o.expect("every sample ran"))
        .collect()
}

/// A table cell: no `|` or line break inside.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The report: counts by verdicts and outcome, refusals by reason, and a
/// row for every file that is not "both read it, placed".
fn report(
    samples: &[Sample],
    outcomes: &[Outcome],
    exceptions: &BTreeMap<String, String>,
) -> String {
    let reads = |b: bool| if b { "reads" } else { "fails" };
    let mut by_verdicts: BTreeMap<(bool, bool), (usize, usize)> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for (sample, outcome) in samples.iter().zip(outcomes) {
        let entry = by_verdicts
            .entry((!sample.dcmdump_reads(), !sample.pydicom_reads))
            .or_default();
        if outcome.placed {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            let reason = outcome.message.split(':').next().unwrap_or_default();
            *by_reason.entry(reason.to_string()).or_default() += 1;
        }
    }
    let placed = outcomes.iter().filter(|o| o.placed).count();
    let mut md = String::new();
    md.push_str("| dcmdump | pydicom | files | placed | refused |\n|---|---|---:|---:|---:|\n");
    for ((dcmdump_fails, pydicom_fails), (p, r)) in &by_verdicts {
        md.push_str(&format!(
            "| {} | {} | {} | {p} | {r} |\n",
            reads(!dcmdump_fails),
            reads(!pydicom_fails),
            p + r
        ));
    }
    md.push_str(&format!(
        "| all | | {} | {placed} | {} |\n\n",
        samples.len(),
        samples.len() - placed
    ));
    md.push_str("| refused because | files |\n|---|---:|\n");
    for (reason, n) in &by_reason {
        md.push_str(&format!("| {} | {n} |\n", cell(reason)));
    }
    md.push_str("\n| file | dcmdump | pydicom | rx-repack | rule |\n|---|---|---|---|---|\n");
    for (sample, outcome) in samples.iter().zip(outcomes) {
        if sample.expected() == Some(true) && outcome.placed && outcome.problems.is_empty() {
            continue;
        }
        let (dcmdump, pydicom) = sample.verdicts();
        let ours = if outcome.placed {
            "placed".to_string()
        } else {
            format!("refused: {}", outcome.message)
        };
        let rule = if let Some(problem) = outcome.problems.first() {
            format!("**broken**: {}", cell(problem))
        } else {
            match sample.expected() {
                None => "either",
                Some(e) if e == outcome.placed => "met",
                Some(_) if exceptions.contains_key(&sample.name) => "exception",
                Some(_) => "**disagrees**",
            }
            .to_string()
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {rule} |\n",
            sample.name,
            cell(&dcmdump),
            cell(&pydicom),
            cell(&ours)
        ));
    }
    md
}

/// Where the report goes: `conformance/` in cargo's target dir.
fn report_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("conformance")
}

#[test]
fn every_sample_follows_the_rule() {
    let (dir, samples) = corpus();
    let exceptions = exceptions();
    let names: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    let mut failures: Vec<String> = exceptions
        .keys()
        .filter(|name| !names.contains(name.as_str()))
        .map(|name| format!("{name}: listed in the exceptions, but not in the corpus"))
        .collect();

    let outcomes = run_all(&dir, &samples);

    let (mut disagreements, mut excepted_disagreements) = (0, 0);
    for (sample, outcome) in samples.iter().zip(&outcomes) {
        let name = &sample.name;
        for problem in &outcome.problems {
            failures.push(format!("{name}: {problem}"));
        }
        let excepted = exceptions.contains_key(name);
        match sample.expected() {
            Some(expected) if expected != outcome.placed => {
                disagreements += 1;
                if excepted {
                    excepted_disagreements += 1;
                } else {
                    let (dcmdump, pydicom) = sample.verdicts();
                    failures.push(if expected {
                        format!(
                            "{name}: refused, but dcmdump and pydicom both read it: {}",
                            outcome.message
                        )
                    } else {
                        format!(
                            "{name}: placed, but dcmdump and pydicom both fail on it \
                             (dcmdump {dcmdump}; pydicom {pydicom})"
                        )
                    });
                }
            }
            _ if excepted => failures.push(format!(
                "{name}: listed in the exceptions, but follows the rule now: \
                 take it out of tests/conformance_exceptions.tsv"
            )),
            _ => {}
        }
    }

    let table = report(&samples, &outcomes, &exceptions);
    let placed = outcomes.iter().filter(|o| o.placed).count();
    let summary = format!(
        "conformance: {} files, {placed} placed, {} refused, {disagreements} against the rule \
         ({excepted_disagreements} of them exceptions)",
        samples.len(),
        samples.len() - placed,
    );
    let out = report_dir();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("conformance.md"), format!("{summary}\n\n{table}")).unwrap();
    println!(
        "{summary}\n\n{table}\n(written to {})",
        out.join("conformance.md").display()
    );
    assert!(
        failures.is_empty(),
        "{summary}; {} failures (docs/conformance.md says what the rule is; the \
         report is in {}):\n{}",
        failures.len(),
        out.join("conformance.md").display(),
        failures.join("\n")
    );
}
