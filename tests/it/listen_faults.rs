//! Issue 15, rx-listen meeting faults: its data dir or log dir full,
//! read-only or not writable, and rx-listen killed (SIGKILL) at random
//! moments while senders push. Whatever happens, every instance
//! acknowledged (status 0) is at its final name, complete, with its
//! records; nothing partial is at a final name; an instance that could not
//! be kept is answered A700 (out of resources); the listener keeps serving
//! and recovers once the fault is gone.
//!
//! The senders are our raw SCU, so that we know exactly which instances
//! were acknowledged. Like the other fault tests these run as root (they
//! mount, and drop CAP_DAC_OVERRIDE with setpriv to meet permission bits).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use serde_json::Value;

use crate::common::*;
use crate::faults::{
    DENIED, FULL, READ_ONLY, deny_writes, fill, image_record_dir, without_dac_override,
};
use crate::listener::{AE_TITLE, Listener, data_set, listen_path};
use crate::raw_scu;

const SUCCESS: u16 = 0x0000;
const OUT_OF_RESOURCES: u16 = 0xA700;

/// An example instance as a sender has it.
struct Instance {
    uid: String,
    data_set: Vec<u8>,
}

/// The 192 example instances, in name order.
fn instances() -> &'static [Instance] {
    static INSTANCES: OnceLock<Vec<Instance>> = OnceLock::new();
    INSTANCES.get_or_init(|| {
        sag_anon_files()
            .iter()
            .map(|path| Instance {
                uid: instance_uid(path),
                data_set: data_set(&std::fs::read(path).unwrap()).to_vec(),
            })
            .collect()
    })
}

/// Sends the example instances `which` on one association; their statuses.
fn send(port: u16, which: &[usize]) -> Vec<u16> {
    let sent: Vec<(String, Vec<u8>)> = which
        .iter()
        .map(|&i| (instances()[i].uid.clone(), instances()[i].data_set.clone()))
        .collect();
    raw_scu::send(port, AE_TITLE, &sent)
}

/// What is wrong with what `data` and `log` hold, given that the
/// instances `acked` were acknowledged: a file at a final name that is not
/// an instance sent, complete (our meta group, then its data set byte for
/// byte); a record that does not parse, or names no placed file; an
/// acknowledged instance not at its final name, or without its image
/// record. Returns the problems and the instances placed.
fn holdings(data: &Path, log: &Path, acked: &BTreeSet<usize>) -> (Vec<String>, BTreeSet<usize>) {
    let by_uid: HashMap<&str, usize> = instances()
        .iter()
        .enumerate()
        .map(|(i, instance)| (instance.uid.as_str(), i))
        .collect();
    let mut problems = Vec::new();
    let mut placed: BTreeMap<usize, PathBuf> = BTreeMap::new();
    for (path, bytes) in split_temps(data).0 {
        // The default layout names a file <InstanceNumber>-<SOPInstanceUID>.dcm.
        let name = path.file_name().unwrap().to_string_lossy();
        let instance = name
            .strip_suffix(".dcm")
            .and_then(|stem| stem.split_once('-'))
            .and_then(|(_, uid)| by_uid.get(uid));
        let shown = path.display();
        match instance {
            None => problems.push(format!("{shown}: at a final name, not an instance sent")),
            Some(&i) if placed.contains_key(&i) => {
                problems.push(format!("{shown}: instance {i} placed twice"));
            }
            Some(&i) => {
                let whole = bytes.get(128..132) == Some(b"DICM")
                    && bytes.ends_with(&instances()[i].data_set);
                if whole {
                    placed.insert(i, data.join(&path));
                } else {
                    problems.push(format!(
                        "{shown}: at a final name but not the instance sent, whole ({} bytes)",
                        bytes.len()
                    ));
                }
            }
        }
    }
    let log_problems = log_problems(log);
    let recorded: BTreeSet<PathBuf> = if log_problems.is_empty() && log.exists() {
        json_files(log)
            .iter()
            .filter(|(path, _)| path.to_string_lossy().contains("-img/"))
            .flat_map(|(_, record)| image_locations(record))
            .collect()
    } else {
        BTreeSet::new()
    };
    problems.extend(log_problems);
    for location in &recorded {
        if !placed.values().any(|path| path == location) {
            problems.push(format!(
                "an image record names {}, which is not a placed instance",
                location.display()
            ));
        }
    }
    for i in acked {
        match placed.get(i) {
            None => problems.push(format!(
                "instance {i} was acknowledged but is not at its final name"
            )),
            Some(path) if !recorded.contains(path) => problems.push(format!(
                "instance {i} was acknowledged but has no image record ({})",
                path.display()
            )),
            Some(_) => {}
        }
    }
    (problems, placed.into_keys().collect())
}

/// The FSlocation of each image an `-img` record describes.
fn image_locations(record: &Value) -> Vec<PathBuf> {
    record
        .as_object()
        .and_then(|r| r.values().next())
        .and_then(|series| series["imageObj"].as_object())
        .map(|images| {
            images
                .values()
                .filter_map(|stat| stat["FSlocation"].as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default()
}

// Full, read-only and unwritable directories.

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Its file system is full.
    Full,
    /// Its file system is mounted read-only.
    ReadOnly,
    /// Its permission bits forbid writing (rx-listen runs without
    /// CAP_DAC_OVERRIDE).
    Unwritable,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Which {
    Data,
    Log,
}

/// How a fault is undone.
enum Mend {
    Remove(PathBuf),
    Unmount(Mount),
    Chmod(PathBuf),
}

/// Runs rx-listen while the data dir or the log dir (`which`) suffers
/// `fault`, from the start or once a first instance is kept
/// (`after_first`): two instances sent on one association must both be
/// answered A700 with the cause in the log, and leave nothing partial;
/// once the fault is mended, a new association on the same listener
/// sends them again and they are kept. Returns what went wrong.
fn fault_scenario(which: Which, fault: Fault, after_first: bool) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let (mut data, mut log) = (tmp.path().join("data"), tmp.path().join("log"));
    // The mount goes before the scratch dir (dropped in reverse order).
    let small = matches!(fault, Fault::Full).then(|| {
        // Room for one instance (232 KiB) in the data dir, and for the
        // records of one series in the log dir.
        let size = if which == Which::Data {
            "size=1m"
        } else {
            "size=256k"
        };
        let mount = Mount::tmpfs(&tmp.path().join("fs"), size);
        match which {
            Which::Data => data = mount.dir.join("data"),
            Which::Log => log = mount.dir.join("log"),
        }
        mount
    });
    let (program, cause) = match fault {
        Fault::Full => (Command::new(listen_path()), FULL),
        Fault::ReadOnly => (Command::new(listen_path()), READ_ONLY),
        Fault::Unwritable => {
            let mut setpriv = without_dac_override();
            setpriv.arg(listen_path());
            (setpriv, DENIED)
        }
    };
    let case = format!(
        "{which:?} dir {fault:?}{}",
        if after_first {
            ", after a first instance"
        } else {
            ""
        }
    );
    let mut problems = Vec::new();
    let mut acked = BTreeSet::new();
    // No free-space floor: these faults are the file system's own.
    let mut listener = Listener::start_in(program, &data, &log, &["--min-free", "0"]);
    if after_first {
        assert_eq!(send(listener.port, &[0]), [SUCCESS], "{case}: the first");
        acked.insert(0);
    }

    let target = match which {
        Which::Data => &data,
        Which::Log => &log,
    };
    std::fs::create_dir_all(target).unwrap();
    let mend = match fault {
        Fault::Full => {
            let filler = small.as_ref().unwrap().dir.join("filler");
            fill(&filler);
            if which == Which::Data {
                // Room for the start of an instance: the write fails in
                // the middle of the data set.
                let file = File::options().write(true).open(&filler).unwrap();
                let len = file.metadata().unwrap().len();
                file.set_len(len.saturating_sub(64 << 10)).unwrap();
            }
            Mend::Remove(filler)
        }
        Fault::ReadOnly => Mend::Unmount(Mount::read_only_bind(target)),
        Fault::Unwritable => {
            // The records of a series already recorded go into its own
            // directories: the image records' is the one that must fail.
            let dir = if which == Which::Log && after_first {
                image_record_dir(&log)
            } else {
                target.clone()
            };
            deny_writes(&dir);
            Mend::Chmod(dir)
        }
    };
    let statuses = send(listener.port, &[1, 2]);
    if statuses != [OUT_OF_RESOURCES, OUT_OF_RESOURCES] {
        problems.push(format!("statuses {statuses:04x?}, expected A700 twice"));
    }
    let (found, _) = holdings(&data, &log, &acked);
    problems.extend(found.into_iter().map(|p| format!("during the fault: {p}")));

    match mend {
        Mend::Remove(filler) => std::fs::remove_file(filler).unwrap(),
        Mend::Unmount(mount) => drop(mount),
        Mend::Chmod(dir) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let statuses = send(listener.port, &[1, 2]);
    if statuses == [SUCCESS, SUCCESS] {
        acked.extend([1, 2]);
    } else {
        problems.push(format!(
            "once mended, statuses {statuses:04x?}, expected 0 twice"
        ));
    }
    let (mut found, placed) = holdings(&data, &log, &acked);
    if found.is_empty() {
        found.extend(records_problems(&log, Some(acked.len())));
    }
    problems.extend(found.into_iter().map(|p| format!("once mended: {p}")));
    if placed != acked {
        problems.push(format!(
            "once mended, placed {placed:?}, acknowledged {acked:?}"
        ));
    }

    let out = listener.stop();
    let errors: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["error"].as_str().map(str::to_string)
        })
        .collect();
    if errors.len() != 2 || !errors.iter().all(|e| e.contains(cause)) {
        problems.push(format!(
            "the failures logged are not two naming {cause:?}: {errors:?}"
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("{case}: {p}"))
        .collect()
}

/// rx-listen with its data dir on a tmpfs of `size` of its own, under
/// `--min-free`, serving its health on a port of its own.
struct FloorScene {
    // Dropped in this order: the listener, then the mount, then the rest.
    listener: Listener,
    small: Mount,
    data: PathBuf,
    log: PathBuf,
    metrics: u16,
    _tmp: tempfile::TempDir,
}

impl FloorScene {
    fn start(size: &str, min_free: &str) -> FloorScene {
        let tmp = tempfile::tempdir().unwrap();
        let small = Mount::tmpfs(&tmp.path().join("fs"), &format!("size={size}"));
        let (data, log) = (small.dir.join("data"), tmp.path().join("log"));
        let metrics = crate::services::free_port();
        let address = format!("127.0.0.1:{metrics}");
        let options = ["--min-free", min_free, "--metrics", &address];
        let listener = Listener::start_in(Command::new(listen_path()), &data, &log, &options);
        FloorScene {
            listener,
            small,
            data,
            log,
            metrics,
            _tmp: tmp,
        }
    }

    /// `/readyz`: its status code and what it said.
    fn ready(&self) -> (u16, String) {
        crate::services::http_get(self.metrics, "/readyz")
    }
}

/// Issue 24: below `--min-free`, a C-STORE is answered A700 before its
/// data set is written, the association goes on, one line tells the
/// crossing each way, and storing resumes by itself once there is room.
#[test]
fn below_the_free_space_floor_stores_are_refused_until_there_is_room() {
    let mut scene = FloorScene::start("4m", "1MiB");
    let (data, log, port) = (scene.data.clone(), scene.log.clone(), scene.listener.port);
    assert_eq!(send(port, &[0]), [SUCCESS], "with room");
    assert_eq!(scene.ready().0, 200);

    // Half a MiB left: under the floor, though an instance would fit.
    let filler = scene.small.dir.join("filler");
    fill(&filler);
    let file = File::options().write(true).open(&filler).unwrap();
    file.set_len(file.metadata().unwrap().len() - (512 << 10))
        .unwrap();
    drop(file);
    let statuses = send(port, &[1, 2]);
    assert_eq!(statuses, [OUT_OF_RESOURCES; 2], "below the floor");
    let (code, why) = scene.ready();
    assert_eq!(code, 503, "{why}");
    assert!(why.contains("below --min-free"), "{why}");
    let acked = BTreeSet::from([0]);
    let (problems, placed) = holdings(&data, &log, &acked);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(placed, acked, "an instance refused was kept");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(scene.ready().0, 200, "room again");
    assert_eq!(send(port, &[1, 2]), [SUCCESS; 2], "room again");
    let (problems, placed) = holdings(&data, &log, &BTreeSet::from([0, 1, 2]));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(placed, BTreeSet::from([0, 1, 2]));

    let out = scene.listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("storing stopped"), 1, "{stderr}");
    assert_eq!(count("storing resumed"), 1, "{stderr}");
    let refused: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["error"].as_str().map(str::to_string)
        })
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|e| e.contains("below --min-free 1.0 MiB")),
        "{refused:?}"
    );
}

/// Issue 24: four senders push while the data dir's file system fills
/// past the floor (a filler takes it to just above; their instances take
/// it below). Each instance is either acknowledged and kept whole
/// with its records, or answered A700; /readyz fails, then passes once
/// the filler is gone, and the refused instances are kept when sent
/// again to the same listener.
#[test]
fn four_senders_while_the_disk_fills_to_the_floor_lose_nothing_acknowledged() {
    let mut scene = FloorScene::start("64m", "8MiB");
    let (data, log, port) = (scene.data.clone(), scene.log.clone(), scene.listener.port);
    let free = || {
        let stat = rustix::fs::statvfs(&scene.small.dir).unwrap();
        stat.f_bavail * stat.f_frsize
    };
    let filler = scene.small.dir.join("filler");
    let senders: Vec<Vec<usize>> = (0..4).map(|s| (s * 40..s * 40 + 40).collect()).collect();
    // Down to 3 MiB above the floor: the pushes (37 MB) cross it.
    let mut file = File::create(&filler).unwrap();
    while free() > 11 << 20 {
        use std::io::Write;
        file.write_all(&vec![1u8; 256 << 10]).unwrap();
    }
    drop(file);
    let statuses: Vec<Vec<u16>> = std::thread::scope(|scope| {
        let pushes: Vec<_> = senders
            .iter()
            .map(|which| scope.spawn(|| send(port, which)))
            .collect();
        pushes.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let mut acked = BTreeSet::new();
    let mut refused = Vec::new();
    for (which, statuses) in senders.iter().zip(&statuses) {
        for (&i, &status) in which.iter().zip(statuses) {
            match status {
                SUCCESS => drop(acked.insert(i)),
                OUT_OF_RESOURCES => refused.push(i),
                other => panic!("instance {i} answered {other:#06x}"),
            }
        }
    }
    assert!(
        !refused.is_empty(),
        "the floor refused nothing: {statuses:04x?}"
    );
    let (problems, placed) = holdings(&data, &log, &acked);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(placed, acked, "placed but not acknowledged, or the reverse");
    // The associations' files made ahead are gone with them, which may
    // lift the disk back over the floor: 2 MiB more takes it below.
    {
        use std::io::Write;
        let mut file = File::options().append(true).open(&filler).unwrap();
        file.write_all(&vec![1u8; 2 << 20]).unwrap();
    }
    let (code, why) = scene.ready();
    assert_eq!(code, 503, "{why}");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(scene.ready().0, 200);
    assert_eq!(send(port, &refused), vec![SUCCESS; refused.len()]);
    let everything: BTreeSet<usize> = senders.iter().flatten().copied().collect();
    let (problems, placed) = holdings(&data, &log, &everything);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(placed, everything);
    scene.listener.stop();
}

/// Every fault of `which` dir, from the start and after a first instance.
fn assert_every_fault_fails_the_instance_and_recovers(which: Which) {
    let mut problems = Vec::new();
    for fault in [Fault::Full, Fault::ReadOnly, Fault::Unwritable] {
        for after_first in [false, true] {
            problems.extend(fault_scenario(which, fault, after_first));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_full_read_only_or_unwritable_data_dir_fails_the_instance_and_recovers() {
    assert_every_fault_fails_the_instance_and_recovers(Which::Data);
}

#[test]
fn a_full_read_only_or_unwritable_log_dir_fails_the_instance_and_recovers() {
    assert_every_fault_fails_the_instance_and_recovers(Which::Log);
}

// kill -9.

/// Senders pushing at once, each on its own association.
const SENDERS: usize = 4;

/// Sender `s` of [`SENDERS`] sends the instances `i` with `i % SENDERS ==
/// s`, on one association, until the listener goes away; each
/// instance acknowledged goes into `acked`. Each thread returns the
/// statuses other than success it got, and the error that stopped it.
fn push(
    port: u16,
    acked: &Arc<Mutex<BTreeSet<usize>>>,
) -> Vec<std::thread::JoinHandle<(Vec<String>, Option<std::io::Error>)>> {
    (0..SENDERS)
        .map(|s| {
            let acked = Arc::clone(acked);
            std::thread::spawn(move || {
                let mut refused = Vec::new();
                let mut stream = match raw_scu::try_associate(port, AE_TITLE) {
                    Ok(stream) => stream,
                    Err(e) => return (refused, Some(e)),
                };
                for (id, i) in (1..).zip((s..instances().len()).step_by(SENDERS)) {
                    let instance = &instances()[i];
                    match raw_scu::try_store(&mut stream, id, &instance.uid, &instance.data_set) {
                        Ok(SUCCESS) => {
                            acked.lock().unwrap().insert(i);
                        }
                        Ok(status) => refused.push(format!("instance {i}: status {status:04x}")),
                        Err(e) => return (refused, Some(e)),
                    }
                }
                (refused, raw_scu::try_release(stream).err())
            })
        })
        .collect()
}

/// How many kill trials to run: RX_LISTEN_KILL_TRIALS, or 5
/// (benches/listen_kill.sh runs more).
fn kill_trials() -> usize {
    std::env::var("RX_LISTEN_KILL_TRIALS").map_or(5, |n| n.parse().expect("a number of trials"))
}

/// A small xorshift generator: random enough for kill moments, and
/// repeatable from its seed.
struct Random(u64);

impl Random {
    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What is wrong with a complete delivery of the example series: all 192
/// instances placed, each with its image record, the series' records
/// there, and the study in the patient's StudyList.
fn complete_problems(log: &Path, placed: &BTreeSet<usize>) -> Vec<String> {
    let mut problems = Vec::new();
    if placed.len() != instances().len() {
        problems.push(format!("{} instances placed, not 192", placed.len()));
    }
    problems.extend(records_problems(log, Some(instances().len())));
    problems
}

/// What is wrong with the records of the example series in `log` (whose
/// records all parse): each record of the patient, study and series must
/// be there once, the study in the patient's StudyList, and `images`
/// image records when given.
fn records_problems(log: &Path, images: Option<usize>) -> Vec<String> {
    let mut problems = Vec::new();
    let records = json_files(log);
    // (what, the directory it is in, how its name ends, how many).
    let expected = [
        ("image records", "-img", ".json", images),
        ("series records", "seriesData", "-meta.json", Some(1)),
        ("series pack records", "seriesData", "-pack.json", Some(1)),
        ("study series records", "-series", "-meta.json", Some(1)),
        ("study records", "studyData", "-meta.json", Some(1)),
        ("patient records", "patientData", ".json", Some(1)),
    ];
    for (what, dir, suffix, n) in expected {
        let Some(n) = n else { continue };
        let found = records
            .iter()
            .filter(|(path, _)| {
                let parent = path.parent().unwrap().to_string_lossy();
                parent.ends_with(dir) && path.to_string_lossy().ends_with(suffix)
            })
            .count();
        if found != n {
            problems.push(format!("{found} {what}, expected {n}"));
        }
    }
    if let Some(images) = images
        && records.len() != images + 5
    {
        let expected = images + 5;
        problems.push(format!("{} records, expected {expected}", records.len()));
    }
    let study =
        rx_repack::reading::read_elements(&sag_anon_files()[0], &[tags::STUDY_INSTANCE_UID])
            .unwrap()
            .text(tags::STUDY_INSTANCE_UID)
            .unwrap();
    let patient = records
        .iter()
        .find(|(p, _)| p.starts_with("patientData"))
        .and_then(|(_, record)| record.as_object()?.values().next().cloned());
    let studies = patient.as_ref().map(|p| &p["StudyList"]);
    if studies != Some(&Value::from(vec![study.clone()])) {
        problems.push(format!("StudyList {studies:?}, expected [{study}]"));
    }
    problems
}

/// rx-listen is killed (SIGKILL) at a random moment while four senders
/// push the example series; then restarted on the same dirs, and the
/// senders send the whole series again. After the kill, every instance a
/// sender saw acknowledged is at its final name, whole, with its image
/// record and the records of its patient, study and series, and nothing
/// partial is at a final name; after the resend, the series is complete.
/// The series events are on: the kill moments reach past the push, into
/// the series' completion and the delivery of its event, and after the
/// restart every event that was due is delivered (see
/// [`event_problems`]). RX_LISTEN_KILL_TRIALS sets the number of trials,
/// RX_LISTEN_KILL_SEED the seed of the kill moments.
/// The settle time of the kill trials.
const KILL_SETTLE: &str = "0.2";

/// The counts of the events due when the listener was killed: written to
/// the outbox, or announced in a series' state.
fn events_due(log: &Path) -> BTreeSet<u64> {
    let work = log.join(".rx-repack");
    let mut due = BTreeSet::new();
    let json_in = |dir: PathBuf| -> Vec<Value> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
                    .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for event in json_in(work.join("outbox/ndjson")) {
        due.extend(event["instances"].as_u64());
    }
    for state in ["open", "done"] {
        for series in json_in(work.join("series").join(state)) {
            due.extend(series["announced"].as_u64().filter(|n| *n > 0));
        }
    }
    due
}

/// What is wrong with the events of `events` once the resend has settled:
/// each count `due` at the kill, and the whole series, announced; the
/// same id for the same count only; nothing left in the outbox.
fn event_problems(events: &Path, log: &Path, due: &BTreeSet<u64>) -> Vec<String> {
    let total = instances().len() as u64;
    let read = || -> Vec<Value> {
        std::fs::read_to_string(events)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    };
    let outbox = log.join(".rx-repack/outbox/ndjson");
    let waiting = || {
        std::fs::read_dir(&outbox).map_or(0, |d| {
            d.filter(|e| e.as_ref().unwrap().path().is_file()).count()
        })
    };
    let started = Instant::now();
    while !(read().iter().any(|e| e["instances"] == total) && waiting() == 0) {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut problems = Vec::new();
    let mut ids: BTreeMap<u64, String> = BTreeMap::new();
    for event in read() {
        let count = event["instances"].as_u64().unwrap_or(0);
        let id = event["event_id"].as_str().unwrap_or("").to_string();
        if ids.values().any(|other| *other == id) && ids.get(&count) != Some(&id) {
            problems.push(format!("event id {id} for two counts"));
        }
        if ids
            .insert(count, id.clone())
            .is_some_and(|before| before != id)
        {
            problems.push(format!("two ids for the count {count}"));
        }
    }
    for count in due.iter().chain([&total]) {
        if !ids.contains_key(count) {
            problems.push(format!("no event for {count} instances (events: {ids:?})"));
        }
    }
    if waiting() > 0 {
        problems.push(format!("{} events left in the outbox", waiting()));
    }
    problems
}

#[test]
fn kill_9_while_senders_push_loses_nothing_acknowledged() {
    let trials = kill_trials();
    let seed = std::env::var("RX_LISTEN_KILL_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |seed| seed.parse().expect("a seed"),
    );
    let mut random = Random(seed);
    // Kill moments are spread over most of the time a whole series takes,
    // as the last resend measured it.
    let mut span = Duration::from_millis(500);
    let mut problems = Vec::new();
    let (mut cut, mut acked_total, mut unacked_placed) = (0, 0, 0);
    let all: BTreeSet<usize> = (0..instances().len()).collect();
    for trial in 0..trials {
        let tmp = tempfile::tempdir().unwrap();
        let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
        let fsync = ["always", "never"][trial % 2];
        let events = tmp.path().join("events.ndjson");
        let start = || {
            Listener::start_in(
                Command::new(listen_path()),
                &data,
                &log,
                &[
                    "--fsync",
                    fsync,
                    "--series-settle",
                    KILL_SETTLE,
                    "--events-ndjson",
                    events.to_str().unwrap(),
                ],
            )
        };
        let mut trial_problems = Vec::new();

        let mut listener = start();
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let senders = push(listener.port, &acked);
        // Two trials in three within the push; the third around the
        // series' completion and its event's delivery, after it.
        let delay = match trial % 3 {
            2 => span.mul_f64(0.8) + Duration::from_millis(1000).mul_f64(random.unit()),
            _ => span.mul_f64(0.8 * random.unit()),
        };
        std::thread::sleep(delay);
        listener.running.child.kill().unwrap();
        listener.running.child.wait().unwrap();
        for sender in senders {
            let (refused, _) = sender.join().unwrap();
            trial_problems.extend(refused);
        }
        let acked = acked.lock().unwrap().clone();
        let due = events_due(&log);
        let (mut found, placed) = holdings(&data, &log, &acked);
        if found.is_empty() && !acked.is_empty() {
            found.extend(records_problems(&log, None));
        }
        trial_problems.extend(found.into_iter().map(|p| format!("after the kill: {p}")));
        let temps = split_temps(&data).1.len();
        let line = format!(
            "trial {trial} (--fsync {fsync}): killed after {} ms, {} acknowledged, \
             {} placed, {temps} temporary files, events due {due:?}",
            delay.as_millis(),
            acked.len(),
            placed.len()
        );
        cut += usize::from(acked.len() < instances().len());
        acked_total += acked.len();
        unacked_placed += placed.difference(&acked).count();

        let mut listener = start();
        let started = Instant::now();
        let resent = Arc::new(Mutex::new(BTreeSet::new()));
        for sender in push(listener.port, &resent) {
            let (refused, error) = sender.join().unwrap();
            trial_problems.extend(refused);
            trial_problems.extend(error.map(|e| format!("resending: {e}")));
        }
        span = started.elapsed();
        let resent = resent.lock().unwrap().clone();
        if resent != all {
            trial_problems.push(format!("resending: {} of 192 acknowledged", resent.len()));
        }
        let (found, placed) = holdings(&data, &log, &all);
        trial_problems.extend(found.into_iter().map(|p| format!("after the resend: {p}")));
        trial_problems.extend(event_problems(&events, &log, &due));
        trial_problems.extend(
            complete_problems(&log, &placed)
                .into_iter()
                .map(|p| format!("after the resend: {p}")),
        );
        listener.stop();
        eprintln!("listen_kill: {line}");
        problems.extend(
            trial_problems
                .into_iter()
                .map(|p| format!("{line}, seed {seed}: {p}")),
        );
    }
    println!(
        "listen_kill: {trials} trials (seed {seed}), {cut} killed mid-series, \
         {acked_total} instances acknowledged before a kill, {unacked_placed} placed but \
         not acknowledged; {} problems",
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
