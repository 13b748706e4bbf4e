//! Shared helpers for the integration tests: where the example data is,
//! how to run our binary, and what no crate does for us (a child killed at
//! a chosen moment, mounts, the checks of what a refused call left).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use walkdir::WalkDir;

/// The SOPInstanceUID of the instance at `path`, as rx-repack reads it.
pub fn instance_uid(path: &Path) -> String {
    rx_repack::reading::read_elements(path, &[tags::SOP_INSTANCE_UID])
        .unwrap()
        .instance_uid()
        .unwrap()
}

/// The directory `get_examples.sh` fills (override with RX_REPACK_EXAMPLES).
pub fn examples_dir() -> PathBuf {
    std::env::var_os("RX_REPACK_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-data"))
}

/// The Python of px-repack's venv (pydicom 2.4.5, pynetdicom), which
/// `get_oracle.sh` makes; fails with instructions if it is missing.
pub fn venv_python() -> PathBuf {
    let python = examples_dir().join("pypx-venv/bin/python");
    assert!(
        python.exists(),
        "px-repack's Python is missing at {}: run `./get_oracle.sh examples-data`",
        python.display()
    );
    python
}

/// The 192-instance SAG-anon series, a directory holding those 192 `.dcm`
/// files and nothing else; fails with instructions if it is not that.
pub fn sag_anon() -> PathBuf {
    let dir = examples_dir().join("SAG-anon");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.len() == 192 && names.iter().all(|n| n.ends_with(".dcm")),
        "{} does not hold the 192 instances of the SAG-anon example series and nothing \
         else: run `./get_examples.sh examples-data`",
        dir.display()
    );
    dir
}

/// The SAG-anon files, sorted by name.
pub fn sag_anon_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sag_anon())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The path of our binary, for commands that run it behind a wrapper.
pub fn rx_path() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("rx-repack")
}

/// Our binary, run to its end by assert_cmd (`.assert()`, `.output()`),
/// killed if it takes more than a minute.
pub fn rx() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(rx_path());
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// Our binary as a process to spawn and watch while it runs.
pub fn rx_process() -> Command {
    Command::new(rx_path())
}

/// Copies `files` into a fresh directory `dir` (writable copies).
pub fn copy_files(files: &[PathBuf], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in files {
        let dst = dir.join(f.file_name().unwrap());
        std::fs::copy(f, &dst).unwrap();
        let mut perms = std::fs::metadata(&dst).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&dst, perms).unwrap();
    }
}

/// Every file under `root` (anything but a directory), sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = WalkDir::new(root)
        .into_iter()
        .map(|entry| entry.unwrap_or_else(|e| panic!("walking {}: {e}", root.display())))
        .filter(|entry| !entry.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect();
    out.sort();
    out
}

/// Every file under `root` as (relative path, bytes), sorted.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(root)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path.strip_prefix(root).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// Runs our binary once per file, as storescp would.
pub fn rx_repack_each(files: &[PathBuf], datadir: &Path, logdir: Option<&Path>, extra: &[&str]) {
    for f in files {
        let mut cmd = rx();
        cmd.arg("--xcrdir")
            .arg(f.parent().unwrap())
            .arg("--xcrfile")
            .arg(f.file_name().unwrap())
            .arg("--datadir")
            .arg(datadir)
            .args(extra);
        if let Some(logdir) = logdir {
            cmd.arg("--logdir").arg(logdir);
        }
        cmd.assert().success();
    }
}

/// Writes a copy of the DICOM file `src` to `dst` with some text elements
/// set to new values (VR from the dictionary's usual one for each tag).
pub fn write_variant(src: &Path, dst: &Path, edits: &[(dicom_core::Tag, dicom_core::VR, &str)]) {
    use dicom_core::{DataElement, PrimitiveValue};
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let mut obj = dicom_object::open_file(src).expect("example file opens");
    for (tag, vr, value) in edits {
        obj.put(DataElement::new(*tag, *vr, PrimitiveValue::from(*value)));
        if *tag == dicom_dictionary_std::tags::SOP_INSTANCE_UID {
            obj.meta_mut().media_storage_sop_instance_uid = value.to_string();
        }
    }
    obj.write_to_file(dst).expect("variant writes");
}

/// `studies` x `series` x `per_series` instances of one patient, made from
/// the example series with new UIDs.
pub fn make_instances(
    dir: &Path,
    studies: usize,
    series_per_study: usize,
    per_series: usize,
) -> Vec<PathBuf> {
    let examples = sag_anon_files();
    let mut out = Vec::new();
    for study in 0..studies {
        for series in 0..series_per_study {
            for n in 0..per_series {
                let src =
                    &examples[(study * series_per_study * per_series + series * per_series + n)
                        % examples.len()];
                let dst = dir.join(format!("{study}-{series}-{n}.dcm"));
                write_variant(
                    src,
                    &dst,
                    &[
                        (tags::STUDY_INSTANCE_UID, VR::UI, &format!("1.2.3.{study}")),
                        (
                            tags::SERIES_INSTANCE_UID,
                            VR::UI,
                            &format!("1.2.3.{study}.{series}"),
                        ),
                        (tags::SERIES_NUMBER, VR::IS, &format!("{}", series + 1)),
                        (
                            tags::SOP_INSTANCE_UID,
                            VR::UI,
                            &format!("1.2.3.{study}.{series}.{n}"),
                        ),
                    ],
                );
                out.push(dst);
            }
        }
    }
    out
}

/// Copies `files` into a new dir `name` under `root`, for one sender.
pub fn folder_of(root: &Path, name: &str, files: &[PathBuf]) -> PathBuf {
    let dir = root.join(name);
    copy_files(files, &dir);
    dir
}

/// `make_instances` files of series `series` (of study 0).
pub fn of_series(files: &[PathBuf], series: usize) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("0-{series}-"))
        })
        .cloned()
        .collect()
}

/// Parses every JSON file under `root` (skipping our `.rx-repack` work
/// dir), failing on the first that does not parse. Returns them by
/// relative path.
pub fn json_files(root: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".rx-repack"))
        .map(|(p, bytes)| {
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p, value)
        })
        .collect()
}

/// How many of `records` ([`json_files`] of a log dir) are -img records.
pub fn image_records(records: &[(PathBuf, serde_json::Value)]) -> usize {
    records
        .iter()
        .filter(|(path, _)| path.to_string_lossy().contains("-img/"))
        .count()
}

/// The one patient record among `records` ([`json_files`] of a log dir),
/// and how many studies its StudyList holds.
pub fn patient_studies(records: &[(PathBuf, serde_json::Value)]) -> (&serde_json::Value, usize) {
    let (_, patient) = records
        .iter()
        .find(|(path, _)| path.starts_with("patientData"))
        .expect("a patient record");
    let studies = patient.as_object().unwrap().values().next().unwrap()["StudyList"]
        .as_array()
        .expect("a StudyList")
        .len();
    (patient, studies)
}

// Helpers for the crash-safety, fault and duplicate tests (issue 6).

/// A child process that is killed (SIGKILL) and reaped when dropped, so a
/// failing test never leaves it running. It leads a process group of its
/// own, killed whole: a service started through a script (RabbitMQ's
/// rabbitmq-server runs the Erlang VM as its child) goes with it. Its
/// stdout and stderr go to anonymous files, so a chatty child never
/// blocks on a full pipe.
pub struct Running {
    pub child: std::process::Child,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

impl Running {
    /// Spawns `cmd` (its stdin is left as the caller set it).
    pub fn spawn(cmd: &mut Command) -> Running {
        let stdout = tempfile::tempfile().unwrap();
        let stderr = tempfile::tempfile().unwrap();
        let child = cmd
            .process_group(0)
            .stdout(stdout.try_clone().unwrap())
            .stderr(stderr.try_clone().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// What the child has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        written(&self.stderr)
    }

    /// What the child has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        written(&self.stdout)
    }

    /// Waits at most `limit` for the child to exit; on time-out kills it
    /// and says so.
    pub fn finish(&mut self, limit: std::time::Duration) -> Result<Output, String> {
        use std::io::{Read, Seek};
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("did not exit within {limit:?}; killed"));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let read = |file: &mut std::fs::File| {
            let mut bytes = Vec::new();
            file.rewind().unwrap();
            file.read_to_end(&mut bytes).unwrap();
            bytes
        };
        Ok(Output {
            status,
            stdout: read(&mut self.stdout),
            stderr: read(&mut self.stderr),
        })
    }
}

/// The text in `file`, read by position.
fn written(file: &std::fs::File) -> String {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; file.metadata().map_or(0, |m| m.len() as usize)];
    let n = file.read_at(&mut bytes, 0).unwrap_or(0);
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end (stdin closed), killed if it takes more than a
/// minute.
pub fn run_bounded(cmd: Command) -> Output {
    assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("the command starts")
}

/// Delivers `src` as storescp does (`--xcrdir`/`--xcrfile`), running
/// `program` (our binary, possibly behind a wrapper) with `extra` options.
pub fn deliver_with(
    mut program: Command,
    src: &Path,
    datadir: &Path,
    logdir: &Path,
    extra: &[&str],
) -> Output {
    program
        .arg("--xcrdir")
        .arg(src.parent().unwrap())
        .arg("--xcrfile")
        .arg(src.file_name().unwrap())
        .arg("--datadir")
        .arg(datadir)
        .arg("--logdir")
        .arg(logdir)
        .args(extra);
    run_bounded(program)
}

/// [`deliver_with`] our binary itself.
pub fn deliver(src: &Path, datadir: &Path, logdir: &Path, extra: &[&str]) -> Output {
    deliver_with(rx_process(), src, datadir, logdir, extra)
}

/// Whether `path` names one of our temporary files (`.rx-repack-*.tmp`).
pub fn is_temp_name(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with(".rx-repack-") && n.ends_with(".tmp"))
}

/// The files under `root` (none if it does not exist), split into final
/// files, as (relative path, bytes), and temporary files.
pub fn split_temps(root: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<PathBuf>) {
    if !root.exists() {
        return (Vec::new(), Vec::new());
    }
    let (temps, finals): (Vec<_>, Vec<_>) =
        tree(root).into_iter().partition(|(p, _)| is_temp_name(p));
    (finals, temps.into_iter().map(|(p, _)| p).collect())
}

/// Final files under `datadir` that are not byte-identical to one of
/// `inputs`: half-written or foreign files at a final name.
pub fn unknown_files(datadir: &Path, inputs: &[&[u8]]) -> Vec<String> {
    split_temps(datadir)
        .0
        .into_iter()
        .filter(|(_, bytes)| !inputs.contains(&bytes.as_slice()))
        .map(|(p, bytes)| {
            format!(
                "{} ({} bytes) at a final name is none of the inputs",
                p.display(),
                bytes.len()
            )
        })
        .collect()
}

/// The locks of our work dir: the patient records', rx-listen's series
/// states', its sinks' and its associations'.
fn is_lock(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    matches!(&*name, "patientData.lock" | "series.lock")
        || (name.ends_with(".lock")
            && (path.starts_with(".rx-repack/outbox")
                || path.starts_with(".rx-repack/associations")))
}

/// What is wrong in a log dir: a file in the directories pypx lists that
/// is not a non-empty, parseable `.json` (temporary files included), or a
/// file in our work dir `.rx-repack/` other than the locks, temporary
/// files, and rx-listen's whole JSON states and events (a damaged record
/// kept aside means one was half-written).
pub fn log_problems(logdir: &Path) -> Vec<String> {
    if !logdir.exists() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (path, bytes) in tree(logdir) {
        let shown = path.display();
        if path.starts_with(".rx-repack") {
            if is_temp_name(&path) || is_lock(&path) {
                continue;
            }
            // rx-listen's series states and events wait whole, as JSON.
            let state_or_event =
                path.starts_with(".rx-repack/series") || path.starts_with(".rx-repack/outbox");
            if !state_or_event || path.extension().is_none_or(|e| e != "json") {
                problems.push(format!("unexpected file in the log work dir: {shown}"));
            } else if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                problems.push(format!("half a state or an event: {shown}: {e}"));
            }
        } else if is_temp_name(&path) || path.extension().is_none_or(|e| e != "json") {
            problems.push(format!("not a record, in a listed directory: {shown}"));
        } else if bytes.is_empty() {
            problems.push(format!("empty record: {shown}"));
        } else if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            problems.push(format!("record does not parse: {shown}: {e}"));
        }
    }
    problems
}

/// What is wrong with the output of a call that had to be refused because
/// of `cause`: it must exit 1 with exactly one line on stderr, an error
/// naming `src` and giving the cause.
pub fn refusal_problems(out: &Output, src: &Path, cause: &str) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(1) {
        problems.push(format!("exit status {} (expected 1)", out.status));
    }
    let lines: Vec<&str> = stderr.lines().collect();
    let named = format!("rx-repack: error: {}: ", src.display());
    match lines.as_slice() {
        [line] if line.starts_with(&named) && line.contains(cause) => {}
        _ => problems.push(format!(
            "stderr is not one error line naming {} with {cause:?}: {stderr:?}",
            src.display()
        )),
    }
    problems
}

/// What is wrong with the source after a refused call: it must still be
/// at `src`, byte-identical to `original`.
pub fn source_problems(src: &Path, original: &[u8]) -> Vec<String> {
    match std::fs::read(src) {
        Ok(bytes) if bytes == original => Vec::new(),
        Ok(_) => vec![format!("source {} changed", src.display())],
        Err(e) => vec![format!("source {} gone: {e}", src.display())],
    }
}

/// A mount, unmounted when dropped (before the temporary dir holding it).
pub struct Mount {
    pub dir: PathBuf,
}

impl Mount {
    pub fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        mount(&["-t", "tmpfs", "-o", options, "tmpfs"], dir);
        Mount {
            dir: dir.to_path_buf(),
        }
    }

    /// Mounts `dir` on itself, then makes that mount read-only.
    pub fn read_only_bind(dir: &Path) -> Mount {
        mount(&["--bind", &dir.display().to_string()], dir);
        let guard = Mount {
            dir: dir.to_path_buf(),
        };
        mount(&["-o", "remount,bind,ro"], dir);
        guard
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

pub fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount").args(args).arg(dir).output();
    match out {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "cannot mount ({args:?} {}): {other:?}. These tests need the \
             privilege to mount (root, CAP_SYS_ADMIN); run them as root.",
            dir.display()
        ),
    }
}
