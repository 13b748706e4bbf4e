//! Issue 6, resource faults: a read-only destination, a log dir without
//! write permission, a full file system under the data dir or the log
//! dir, and sources removed while a batch runs. Each refused file gets one
//! error line naming it and a non-zero exit; its source stays where it
//! was, byte-identical, also with `--cleanup`; no record is half-written
//! and nothing half-written sits at a final name in the data dir.
//!
//! Tests run as root, whom permission bits do not stop: read-only and
//! full file systems are real mounts (a read-only tmpfs, a read-only bind
//! mount, a small tmpfs), unmounted by a guard; "permission denied" runs
//! the tool with CAP_DAC_OVERRIDE dropped (setpriv). Without the privilege
//! to mount, the tests fail saying so.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::assert::OutputAssertExt;

use crate::common::*;

pub(crate) const READ_ONLY: &str = "Read-only file system";
pub(crate) const DENIED: &str = "Permission denied";
pub(crate) const FULL: &str = "No space left on device";

#[test]
fn a_read_only_destination_is_refused_and_the_source_kept() {
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        let scene = Scene::new();
        let _read_only = Mount::tmpfs(&scene.datadir, "size=1m,ro");
        problems.extend(scene.refused("read-only data dir", rx_process(), 0, cleanup, READ_ONLY));

        // The series dir exists (an earlier instance is in it) but its file
        // system has become read-only.
        let scene = Scene::new();
        let series_dir = scene.place(0);
        let _read_only = Mount::read_only_bind(&series_dir);
        problems.extend(scene.refused("read-only series dir", rx_process(), 1, cleanup, READ_ONLY));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_log_dir_without_write_permission_is_refused_and_the_source_kept() {
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        let scene = Scene::new();
        deny_writes(&scene.logdir);
        problems.extend(scene.refused("log dir", unprivileged(), 0, cleanup, DENIED));

        // The locked read-modify-write of patientData.
        let scene = Scene::new();
        deny_writes(&scene.logdir.join("patientData"));
        problems.extend(scene.refused("patientData", unprivileged(), 0, cleanup, DENIED));

        // A series already recorded: only the image record is left to write.
        let scene = Scene::new();
        scene.place(0);
        deny_writes(&image_record_dir(&scene.logdir));
        problems.extend(scene.refused("image records", unprivileged(), 1, cleanup, DENIED));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_full_data_file_system_is_refused_and_the_source_kept() {
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        let scene = Scene::new();
        let _small = Mount::tmpfs(&scene.datadir, "size=128k");
        assert!(
            examples()[0].len() > 128 * 1024,
            "the instance must not fit"
        );
        problems.extend(scene.refused("full data dir", rx_process(), 0, cleanup, FULL));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_full_log_file_system_is_refused_and_the_source_kept() {
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        let mut scene = Scene::new();
        let _small = scene.log_on_small_tmpfs();
        fill(&scene.logdir.with_file_name("filler"));
        problems.extend(scene.refused("full log dir", rx_process(), 0, cleanup, FULL));

        // A series already recorded: only the image record is left to write.
        let mut scene = Scene::new();
        let _small = scene.log_on_small_tmpfs();
        scene.place(0);
        fill(&scene.logdir.with_file_name("filler"));
        problems.extend(scene.refused(
            "full log dir, series recorded",
            rx_process(),
            1,
            cleanup,
            FULL,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Paths fed on stdin whose files were removed after the batch started
/// (before their turn) are reported, one line each, and every other file
/// is placed and recorded.
#[test]
fn sources_removed_mid_run_are_reported_and_the_others_placed() {
    let scene = Scene::new();
    let incoming = scene.tmp.path().join("incoming");
    let files = sag_anon_files();
    copy_files(&files[..40], &incoming);
    let sources: Vec<PathBuf> = files[..40]
        .iter()
        .map(|f| incoming.join(f.file_name().unwrap()))
        .collect();
    let removed = [&sources[25], &sources[30], &sources[39]];
    let mut batch = Running::spawn(
        rx_process()
            .arg("--datadir")
            .arg(&scene.datadir)
            .arg("--logdir")
            .arg(&scene.logdir)
            .args(["--cleanup", "-j", "2", "-"])
            .stdin(Stdio::piped()),
    );
    let mut stdin = batch.child.stdin.take().unwrap();
    let feed = |stdin: &mut std::process::ChildStdin, paths: &[PathBuf]| {
        for path in paths {
            writeln!(stdin, "{}", path.display()).unwrap();
        }
    };
    feed(&mut stdin, &sources[..20]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while split_temps(&scene.datadir).0.len() < 5 {
        assert!(Instant::now() < deadline, "the batch did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    for path in removed {
        std::fs::remove_file(path).unwrap();
    }
    feed(&mut stdin, &sources[20..]);
    drop(stdin);
    let out = batch.finish(Duration::from_secs(60)).unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rx-repack: error: "))
        .collect();
    assert_eq!(errors.len(), removed.len(), "{stderr}");
    for path in removed {
        let named = format!("rx-repack: error: {}: ", path.display());
        assert_eq!(
            errors
                .iter()
                .filter(|l| l.starts_with(&named) && l.contains("No such file"))
                .count(),
            1,
            "{} not reported once: {stderr}",
            path.display()
        );
    }
    assert!(stderr.contains("37 placed, 3 failed"), "{stderr}");
    let (placed, temps) = split_temps(&scene.datadir);
    assert_eq!((placed.len(), temps.len()), (37, 0), "{stderr}");
    let kept: Vec<&[u8]> = examples()[..40]
        .iter()
        .enumerate()
        .filter(|(i, _)| ![25, 30, 39].contains(i))
        .map(|(_, bytes)| bytes.as_slice())
        .collect();
    let mut placed_bytes: Vec<&[u8]> = placed.iter().map(|(_, b)| b.as_slice()).collect();
    placed_bytes.sort();
    let mut expected = kept.clone();
    expected.sort();
    assert!(
        placed_bytes == expected,
        "placed files differ from the inputs"
    );
    assert!(tree(&incoming).is_empty(), "sources left after the move");
    let problems = log_problems(&scene.logdir);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let images = json_files(&scene.logdir)
        .into_iter()
        .filter(|(p, _)| {
            p.parent()
                .is_some_and(|d| d.to_string_lossy().ends_with("-img"))
        })
        .count();
    assert_eq!(images, 37);
}

/// The bytes of the example instances, in name order.
fn examples() -> &'static [Vec<u8>] {
    static BYTES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BYTES.get_or_init(|| {
        sag_anon_files()
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect()
    })
}

/// A fresh directory with a data dir and a log dir.
struct Scene {
    tmp: tempfile::TempDir,
    datadir: PathBuf,
    logdir: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let (datadir, logdir) = (tmp.path().join("data"), tmp.path().join("log"));
        Scene {
            tmp,
            datadir,
            logdir,
        }
    }

    /// Puts the log dir on a 256 KiB tmpfs (next to room for a filler).
    fn log_on_small_tmpfs(&mut self) -> Mount {
        let mount = Mount::tmpfs(&self.tmp.path().join("logfs"), "size=256k");
        self.logdir = mount.dir.join("log");
        mount
    }

    /// Receives example instance `n`: its path in `incoming-n/`.
    fn receive(&self, n: usize) -> PathBuf {
        let incoming = self.tmp.path().join(format!("incoming-{n}"));
        copy_files(&sag_anon_files()[n..=n], &incoming);
        incoming.join(sag_anon_files()[n].file_name().unwrap())
    }

    /// Delivers example instance `n` successfully; returns the directory
    /// it was placed in.
    fn place(&self, n: usize) -> PathBuf {
        let out = deliver(
            &self.receive(n),
            &self.datadir,
            &self.logdir,
            &["--log-ndjson"],
        )
        .assert()
        .success();
        let line: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        PathBuf::from(line["dst"].as_str().unwrap())
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// Delivers example instance `n` with `program` and returns what is
    /// wrong with the refusal the `case` calls for, because of `cause`.
    fn refused(
        &self,
        case: &str,
        program: Command,
        n: usize,
        cleanup: bool,
        cause: &str,
    ) -> Vec<String> {
        let src = self.receive(n);
        let extra: &[&str] = if cleanup { &["--cleanup"] } else { &[] };
        let out = deliver_with(program, &src, &self.datadir, &self.logdir, extra);
        let mut problems = refusal_problems(&out, &src, cause);
        problems.extend(source_problems(&src, &examples()[n]));
        problems.extend(log_problems(&self.logdir));
        let inputs: Vec<&[u8]> = examples().iter().map(Vec::as_slice).collect();
        problems.extend(unknown_files(&self.datadir, &inputs));
        for dir in [&self.datadir, &self.logdir.join(".rx-repack")] {
            let temps = split_temps(dir).1;
            if !temps.is_empty() {
                problems.push(format!(
                    "temporary files left in {}: {temps:?}",
                    dir.display()
                ));
            }
        }
        let mode = if cleanup { "--cleanup" } else { "copy" };
        problems
            .into_iter()
            .map(|p| format!("{case} ({mode}): {p}"))
            .collect()
    }
}

/// Our binary without CAP_DAC_OVERRIDE (and the related capabilities), so
/// that permission bits stop it although it runs as root.
fn unprivileged() -> Command {
    let mut cmd = without_dac_override();
    cmd.arg(rx_path());
    cmd
}

pub(crate) fn without_dac_override() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--bounding-set",
        "-dac_override,-dac_read_search,-fowner",
        "--",
    ]);
    cmd
}

/// Makes `dir` (created if needed) read-only by its permission bits, and
/// checks that this stops a process without CAP_DAC_OVERRIDE.
pub(crate) fn deny_writes(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = without_dac_override()
        .arg("touch")
        .arg(dir.join("probe"))
        .output()
        .unwrap_or_else(|e| panic!("setpriv (util-linux) is needed: {e}"));
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(
        !probe.status.success() && stderr.contains(DENIED),
        "cannot make {} unwritable for the tool (setpriv dropping \
         CAP_DAC_OVERRIDE did not work: {probe:?})",
        dir.display()
    );
}

/// The `-img` directory of the one series recorded in `logdir`.
pub(crate) fn image_record_dir(logdir: &Path) -> PathBuf {
    std::fs::read_dir(logdir.join("seriesData"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-img"))
        .expect("a series was recorded")
}

/// Fills the file system of `path` by writing to it until it is full.
pub(crate) fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let error = loop {
        if let Err(e) = file.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(error.raw_os_error(), Some(28), "filling: {error}");
}
