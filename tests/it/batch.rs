//! Batch mode: many files in one process, in parallel, through the same
//! per-file pipeline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use predicates::str::contains;

use crate::common::*;
use crate::oracle;

fn batch(datadir: &Path) -> assert_cmd::Command {
    let mut cmd = rx();
    cmd.arg("--datadir").arg(datadir);
    cmd
}

/// [`batch`] as a process to spawn.
fn batch_process(datadir: &Path) -> Command {
    let mut cmd = rx_process();
    cmd.arg("--datadir").arg(datadir);
    cmd
}

fn file_count(dir: &Path) -> usize {
    if dir.exists() { tree(dir).len() } else { 0 }
}

#[test]
fn a_directory_is_repacked_like_one_call_per_file() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sag_anon_files();
    rx_repack_each(&files[..20], &tmp.path().join("each"), None, &[]);
    let incoming = tmp.path().join("incoming");
    copy_files(&files[..20], &incoming.join("nested/deeper"));
    batch(&tmp.path().join("batch"))
        .arg(&incoming)
        .assert()
        .success()
        .stderr(contains("20 placed, 0 failed"));
    assert!(
        tree(&tmp.path().join("batch")) == tree(&tmp.path().join("each")),
        "trees differ"
    );
}

/// Every image record's `os.stat` fields describe its file as it is once
/// the run is over, in copy and in move mode (where the record is written
/// before the source's link is removed).
#[test]
fn image_records_describe_the_placed_files() {
    use std::os::unix::fs::MetadataExt;
    let files = &sag_anon_files()[..8];
    for extra in [&[][..], &["--cleanup"][..]] {
        let tmp = tempfile::tempdir().unwrap();
        let (incoming, log) = (tmp.path().join("in"), tmp.path().join("log"));
        copy_files(files, &incoming);
        batch(&tmp.path().join("data"))
            .arg("--logdir")
            .arg(&log)
            .args(extra)
            .arg(&incoming)
            .assert()
            .success();
        let records: Vec<_> = json_files(&log)
            .into_iter()
            .filter(|(path, _)| path.to_string_lossy().contains("-img/"))
            .collect();
        assert_eq!(records.len(), files.len(), "{extra:?}");
        for (path, record) in records {
            let series = record.as_object().unwrap().values().next().unwrap();
            let stat = series["imageObj"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap();
            let placed = std::fs::metadata(stat["FSlocation"].as_str().unwrap()).unwrap();
            for (field, value) in [
                ("nlink", placed.nlink()),
                ("ino", placed.ino()),
                ("size", placed.size()),
            ] {
                assert_eq!(stat[field], value, "{extra:?} {}: {field}", path.display());
            }
        }
    }
}

#[test]
fn nul_separated_paths_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sag_anon_files();
    let mut paths = Vec::new();
    for f in &files {
        paths.extend(f.as_os_str().as_encoded_bytes());
        paths.push(0);
    }
    let assert = batch(&tmp.path().join("data"))
        .args(["-0", "--log-ndjson", "-j", "2", "-"])
        .write_stdin(paths)
        .assert()
        .success();
    let out = assert.get_output();
    // One whole JSON object per line, never two interleaved.
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), files.len());
    assert!(
        lines
            .iter()
            .all(|l| l["dst"].is_string() && l["error"].is_null())
    );
    assert_eq!(file_count(&tmp.path().join("data")), files.len());
}

/// px-repack's output for the same command is the oracle's `substr` case.
#[test]
fn parse_all_files_with_substr_matches_px_repack() {
    let px = oracle::case("substr");
    assert_eq!(
        px.args()[..4],
        [
            "--seriesDirTemplate",
            "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID",
            "--parseAllFilesWithSubStr",
            "0001,.dcm"
        ],
        "the oracle's substr case ran another command"
    );
    let tmp = tempfile::tempdir().unwrap();
    let incoming = tmp.path().join("incoming");
    copy_files(&sag_anon_files(), &incoming);
    std::fs::write(incoming.join("notes.txt"), "not selected").unwrap();
    let (rx_data, rx_log) = (tmp.path().join("rx-data"), tmp.path().join("rx-log"));
    rx().arg("--xcrdir")
        .arg(&incoming)
        .args(["--parseAllFilesWithSubStr", "0001,.dcm"])
        .arg("--datadir")
        .arg(&rx_data)
        .arg("--logdir")
        .arg(&rx_log)
        .assert()
        .success();
    px.assert_same_tree(&rx_data);
    let names =
        |log: &Path| -> Vec<PathBuf> { json_files(log).into_iter().map(|(p, _)| p).collect() };
    assert_eq!(names(&rx_log), names(&px.log()));
    assert!(incoming.join("notes.txt").exists());
}

#[test]
fn bad_files_are_quarantined_and_the_batch_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let incoming = tmp.path().join("incoming");
    let files = sag_anon_files();
    copy_files(&files[..5], &incoming);
    std::fs::write(incoming.join("a-text.dcm"), "hello").unwrap();
    std::fs::write(incoming.join("b-empty.dcm"), "").unwrap();
    let truncated = std::fs::read(&files[0]).unwrap();
    std::fs::write(incoming.join("c-truncated.dcm"), &truncated[..2000]).unwrap();
    let quarantine = tmp.path().join("quarantine");
    let out = batch(&tmp.path().join("data"))
        .arg("--quarantine")
        .arg(&quarantine)
        .arg("--cleanup")
        .arg(&incoming)
        .assert()
        // Any failure makes the exit non-zero.
        .code(1)
        .stderr(contains("5 placed, 3 failed").and(contains("panicked").not()));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert_eq!(file_count(&tmp.path().join("data")), 5);
    for (name, why) in [
        ("a-text.dcm", "not a DICOM file"),
        ("b-empty.dcm", "not a DICOM file"),
        ("c-truncated.dcm", "corrupt or cut short"),
    ] {
        assert!(
            quarantine.join(name).exists(),
            "{name} not quarantined: {stderr}"
        );
        let reason =
            std::fs::read_to_string(quarantine.join(format!("{name}.reason.txt"))).unwrap();
        assert!(reason.contains(why), "{reason}");
        assert!(!incoming.join(name).exists());
    }
    assert_eq!(
        std::fs::read(quarantine.join("c-truncated.dcm")).unwrap(),
        &truncated[..2000],
        "quarantine changed the file"
    );
}

/// SIGTERM while paths are still arriving: the files in flight finish, no
/// new one starts, nothing is half-written, and a re-run completes the job.
#[test]
fn sigterm_mid_batch_leaves_a_consistent_state() {
    let tmp = tempfile::tempdir().unwrap();
    let incoming = tmp.path().join("incoming");
    let files = sag_anon_files();
    copy_files(&files, &incoming);
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let (datadir, logdir) = (tmp.path().join("data"), tmp.path().join("log"));
    let mut child = batch_process(&datadir)
        .arg("--logdir")
        .arg(&logdir)
        .args(["--cleanup", "-j", "2", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Half the paths now; the list stays open, as from a slow producer.
    let mut stdin = child.stdin.take().unwrap();
    for f in &files[..96] {
        writeln!(stdin, "{}", incoming.join(f.file_name().unwrap()).display()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while file_count(&datadir) < 10 {
        assert!(Instant::now() < deadline, "the batch did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(child.id(), "TERM");
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "summary line: {stderr}");

    let placed = tree(&datadir);
    assert!(placed.len() < files.len(), "nothing was left to interrupt");
    assert!(
        placed
            .iter()
            .all(|(p, _)| !p.to_string_lossy().contains(".rx-repack-")),
        "temporary files left"
    );
    let remaining = tree(&incoming);
    let mut found: Vec<&Vec<u8>> = placed.iter().chain(&remaining).map(|(_, b)| b).collect();
    found.sort();
    let mut expected: Vec<&Vec<u8>> = originals.iter().collect();
    expected.sort();
    assert!(
        found == expected,
        "some instance is lost, duplicated or changed"
    );
    json_files(&logdir);

    // A re-run over what is left completes the job.
    batch(&datadir)
        .arg("--logdir")
        .arg(&logdir)
        .arg("--cleanup")
        .arg(&incoming)
        .assert()
        .success();
    assert_eq!(file_count(&incoming), 0);
    assert_eq!(file_count(&datadir), files.len());
    assert_eq!(image_records(&json_files(&logdir)), files.len());
}

fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the batch did not stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// On a terminal (here a pseudo-terminal made by util-linux's `script`),
/// the bar appears once there is a file to count, shows a whole rate, and
/// is redrawn about ten times a second, not once per file.
#[test]
fn the_progress_bar_is_drawn_at_most_ten_times_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let sag = sag_anon();
    let command = format!(
        "{} -j 1 --datadir {} {} {} {}",
        rx_path().display(),
        tmp.path().join("data").display(),
        sag.display(),
        sag.display(),
        sag.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let frames: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|frame| frame.contains(" files "))
        .collect();
    let summary = text
        .split(['\r', '\n'])
        .find(|line| line.contains(" placed, "))
        .unwrap_or_else(|| panic!("no summary line: {text}"));
    let seconds: f64 = summary
        .trim()
        .rsplit(", ")
        .next()
        .and_then(|elapsed| elapsed.strip_suffix(" s"))
        .and_then(|elapsed| elapsed.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed time in {summary:?}"));
    assert!(!frames.is_empty(), "no bar drawn: {text}");
    assert!(
        frames.len() as f64 <= seconds * 10.0 + 2.0,
        "{} frames in {seconds} s",
        frames.len()
    );
    for frame in &frames {
        assert!(
            !frame.contains(" 0/0 files"),
            "a frame of nothing: {frame:?}"
        );
        let rate = frame
            .split_whitespace()
            .find(|word| word.ends_with("/s"))
            .unwrap_or_else(|| panic!("no rate in {frame:?}"));
        assert!(
            rate.trim_end_matches("/s")
                .bytes()
                .all(|b| b.is_ascii_digit()),
            "rate not rounded: {frame:?}"
        );
    }
}
