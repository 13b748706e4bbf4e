//! What the user sees per instance: an NDJSON line on stdout, or one line
//! on stderr for errors and warnings, each starting with the name of the
//! binary that speaks.

use std::io::Write;

use serde::Serialize;

use crate::filing::Reporting;
use crate::pipeline::{RepackError, Repacked};
use crate::placing::Outcome;
use crate::reading::keywords::tag_of;

/// One NDJSON record, the shape rx-repack 1.0 printed.
#[allow(non_snake_case)]
#[derive(Serialize)]
struct Record<'a> {
    src: String,
    dst: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    PatientID: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    SeriesInstanceUID: Option<&'a str>,
    /// `new`, `replaced` (a re-delivery) or `renamed` (another instance
    /// holds the name its tags give).
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<Missing>,
    /// How the file was read, where a user should know.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [String],
}

#[derive(Serialize)]
struct Missing {
    tag: String,
    name: &'static str,
    error: &'static str,
}

/// The NDJSON line (without newline) for the instance from `src`.
fn ndjson_line(src: &str, result: &Result<Repacked, RepackError>) -> String {
    let record = match result {
        Ok(done) => Record {
            src: src.to_string(),
            dst: Some(done.dst.display().to_string()),
            size: Some(done.size),
            PatientID: done.patient_id.as_deref(),
            SeriesInstanceUID: done.series_instance_uid.as_deref(),
            outcome: Some(match done.outcome {
                Outcome::New => "new",
                Outcome::Replaced => "replaced",
                Outcome::Renamed => "renamed",
            }),
            error: None,
            missing: done.missing.iter().map(|name| missing(name)).collect(),
            notes: &done.notes,
        },
        Err(e) => Record {
            src: src.to_string(),
            dst: None,
            size: None,
            PatientID: None,
            SeriesInstanceUID: None,
            outcome: None,
            error: Some(e.to_string()),
            missing: Vec::new(),
            notes: &[],
        },
    };
    serde_json::to_string(&record).expect("a record of strings and numbers always serialises")
}

fn missing(name: &'static str) -> Missing {
    let tag = tag_of(name)
        .map(|(_, tag)| format!("({:04X},{:04X})", tag.group(), tag.element()))
        .unwrap_or_default();
    Missing {
        tag,
        name,
        error: "element not found",
    }
}

/// What the user is told about one instance: an NDJSON line on stdout,
/// lines on stderr, either or both or neither.
pub struct Report {
    stdout: Option<String>,
    stderr: Option<String>,
}

impl Report {
    /// The report on `result` for the instance from `src` (a path, or
    /// where rx-listen received it from), as `reporting` asks.
    pub fn of(reporting: &Reporting, src: &str, result: &Result<Repacked, RepackError>) -> Report {
        let Reporting {
            program,
            verbosity,
            ndjson,
        } = *reporting;
        let mut lines = Vec::new();
        match result {
            Err(e) => lines.push(format!("{program}: error: {src}: {e}")),
            Ok(done) => {
                if verbosity >= 1 && done.outcome == Outcome::Renamed {
                    lines.push(format!(
                        "{program}: warning: {src}: a different instance holds the name its tags give; placed at {}",
                        done.dst.display()
                    ));
                }
                if verbosity >= 1 && !ndjson {
                    if !done.missing.is_empty() {
                        lines.push(format!(
                            "{program}: warning: {src}: missing {} (keyword used in the name)",
                            done.missing.join(", ")
                        ));
                    }
                    for note in &done.notes {
                        lines.push(format!("{program}: warning: {src}: {note}"));
                    }
                }
                if verbosity >= 2 {
                    lines.push(format!("{program}: {src} -> {}", done.dst.display()));
                }
            }
        }
        let stderr = (!lines.is_empty()).then(|| lines.join("\n") + "\n");
        Report {
            stdout: ndjson.then(|| format!("{}\n", ndjson_line(src, result))),
            stderr,
        }
    }

    /// Whether there is something for stderr.
    pub fn has_message(&self) -> bool {
        self.stderr.is_some()
    }

    /// Prints the NDJSON line, if any. Each line goes out in one write, so
    /// lines of parallel workers never mix.
    pub fn print_record(&self) {
        if let Some(line) = &self.stdout {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }

    /// Prints the stderr lines, if any, in one write.
    pub fn print_message(&self) {
        if let Some(line) = &self.stderr {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}
