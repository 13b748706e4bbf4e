//! rx-listen's series completion events, with real senders on loopback
//! (storescu, dcmsend, and our raw SCU where a sender must stay in the
//! middle of a series or vanish), real hooks run by it, and kill -9: each
//! series is announced once per count it reaches on disk, to every sink,
//! whatever ends its associations and whichever replica sees it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::listener::{
    AE_TITLE, Listener, PATIENCE, data_set, dcmsend, listen_path, send, storescu,
};
use crate::raw_scu;

/// The settle time the tests run with (a fraction keeps them short).
const SETTLE: &str = "0.2";

/// Long enough past [`SETTLE`] for a second event, were one due.
const PAST_SETTLE: Duration = Duration::from_millis(800);

/// rx-listen's `options` (its sinks, say) after the tests' settle time.
fn with_events<'a>(options: &[&'a str]) -> Vec<&'a str> {
    ["--series-settle", SETTLE]
        .into_iter()
        .chain(options.iter().copied())
        .collect()
}

/// How many events were given up on for the hook in `log`.
fn given_up(log: &Path) -> usize {
    std::fs::read_dir(log.join(".rx-repack/outbox/exec/failed")).map_or(0, |d| d.count())
}

/// The JSON lines of `path` (none if it does not exist).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {line:?}: {e}", path.display()))
        })
        .collect()
}

/// Waits until `ready` holds, failing after [`PATIENCE`] with `what`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The series of the log dir still open (not yet complete).
fn open_series(log: &Path) -> usize {
    std::fs::read_dir(log.join(".rx-repack/series/open")).map_or(0, |d| d.count())
}

/// A hook template appending each event it is run for (`$RX_EVENT`) to
/// `out` as one line.
fn recording_hook(out: &Path) -> String {
    format!(
        "/bin/sh -c 'printf \"%s\\n\" \"$RX_EVENT\" >> \"$0\"' {}",
        out.display()
    )
}

/// Each series' counts, in the order of `events`.
fn counts_by_series(events: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for event in events {
        counts
            .entry(event["series_instance_uid"].as_str().unwrap().to_string())
            .or_default()
            .push(event["instances"].as_u64().unwrap());
    }
    counts
}

/// `instances` as (SOPInstanceUID, data set) for the raw SCU.
fn raw_instances(instances: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    instances
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            (instance_uid(path), data_set(&bytes).to_vec())
        })
        .collect()
}

#[test]
fn series_at_once_and_one_split_over_two_associations_complete_once_each() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 3, 6);
    let (a, b, split) = (
        of_series(&files, 0),
        of_series(&files, 1),
        of_series(&files, 2),
    );
    let (ndjson, hooked) = (
        tmp.path().join("events.ndjson"),
        tmp.path().join("hook.ndjson"),
    );
    let mut listener = Listener::start(&with_events(&[
        "--events-ndjson",
        ndjson.to_str().unwrap(),
        "--exec-on-series",
        &recording_hook(&hooked),
    ]));
    let port = listener.port;
    // The split series: half over an association that stays open while
    // storescu sends the other half and releases.
    let mut held = raw_scu::associate(port, AE_TITLE);
    for (id, (uid, data)) in (1..).zip(raw_instances(&split[..3])) {
        assert_eq!(
            raw_scu::store(&mut held, id, &uid, &data),
            0,
            "{}",
            listener.running.stderr_so_far()
        );
    }
    let dirs = [
        folder_of(tmp.path(), "a", &a),
        folder_of(tmp.path(), "b", &b),
        folder_of(tmp.path(), "split", &split[3..]),
    ];
    // Two senders of DCMTK's: storescu for the whole series, dcmsend for
    // the split one's second half.
    std::thread::scope(|scope| {
        scope.spawn(|| send(storescu(port, &dirs[0], &[])));
        scope.spawn(|| send(storescu(port, &dirs[1], &[])));
        scope.spawn(|| send(dcmsend(port, &dirs[2])));
    });
    wait_until("the two whole series", || lines(&ndjson).len() >= 2);
    std::thread::sleep(PAST_SETTLE);
    let split_uid = "1.2.3.0.2";
    assert!(
        !counts_by_series(&lines(&ndjson)).contains_key(split_uid),
        "the split series was announced while one of its associations was open: {:?}",
        lines(&ndjson)
    );
    raw_scu::release(held);
    wait_until("the split series", || lines(&ndjson).len() >= 3);
    wait_until("every hook", || lines(&hooked).len() >= 3);
    std::thread::sleep(PAST_SETTLE);
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);

    for (sink, events) in [("ndjson", lines(&ndjson)), ("exec", lines(&hooked))] {
        let expected: BTreeMap<String, Vec<u64>> = ["1.2.3.0.0", "1.2.3.0.1", split_uid]
            .into_iter()
            .map(|uid| (uid.to_string(), vec![6]))
            .collect();
        assert_eq!(
            counts_by_series(&events),
            expected,
            "{sink}: {events:?}\n{stderr}"
        );
        let split_event = events
            .iter()
            .find(|e| e["series_instance_uid"] == split_uid)
            .unwrap();
        let ends: Vec<&str> = split_event["associations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ended"].as_str().unwrap())
            .collect();
        assert_eq!(ends, ["released", "released"], "{sink}: {split_event}");
        for event in &events {
            let dir = Path::new(event["series_dir"].as_str().unwrap());
            let on_disk = std::fs::read_dir(dir).unwrap().count();
            assert_eq!(on_disk, 6, "{sink}: {event}");
            assert_eq!(
                dir,
                listener
                    .data()
                    .join(event["series_dir_relative"].as_str().unwrap())
            );
            assert_eq!(event["patient_id"], "1449c1d");
            assert_eq!(event["study_instance_uid"], "1.2.3.0");
        }
    }
    assert_eq!(
        lines(&ndjson),
        lines(&hooked),
        "both sinks got the same events"
    );
    assert!(
        stderr.contains("outbox exec: 0 waiting, 0 given up; ndjson: 0 waiting, 0 given up"),
        "{stderr}"
    );
}

#[test]
fn one_series_over_two_replicas_completes_once() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 8);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let ndjson = tmp.path().join("events.ndjson");
    let extra = with_events(&["--events-ndjson", ndjson.to_str().unwrap()]);
    let mut replicas: Vec<Listener> = (0..2)
        .map(|_| Listener::start_in(Command::new(listen_path()), &data, &log, &extra))
        .collect();
    let mut held = raw_scu::associate(replicas[0].port, AE_TITLE);
    for (id, (uid, data)) in (1..).zip(raw_instances(&files[..4])) {
        assert_eq!(raw_scu::store(&mut held, id, &uid, &data), 0);
    }
    send(dcmsend(
        replicas[1].port,
        &folder_of(tmp.path(), "rest", &files[4..]),
    ));
    std::thread::sleep(PAST_SETTLE);
    assert!(
        lines(&ndjson).is_empty(),
        "announced with an association open on the other replica"
    );
    raw_scu::release(held);
    wait_until("the event", || !lines(&ndjson).is_empty());
    std::thread::sleep(PAST_SETTLE);
    for replica in &mut replicas {
        replica.stop();
    }
    let events = lines(&ndjson);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["instances"], 8);
    assert_eq!(events[0]["associations"].as_array().unwrap().len(), 2);
}

#[test]
fn an_aborted_sender_then_a_resend_gives_the_partial_then_the_full_count() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 6);
    let ndjson = tmp.path().join("events.ndjson");
    let mut listener =
        Listener::start(&with_events(&["--events-ndjson", ndjson.to_str().unwrap()]));
    let mut cut = raw_scu::associate(listener.port, AE_TITLE);
    for (id, (uid, data)) in (1..).zip(raw_instances(&files[..2])) {
        assert_eq!(raw_scu::store(&mut cut, id, &uid, &data), 0);
    }
    // A-ABORT, as a sender giving up mid-series sends it.
    use std::io::Write;
    cut.write_all(&raw_scu::pdu(0x07, &[0, 0, 0, 0])).unwrap();
    drop(cut);
    wait_until("the partial series' event", || !lines(&ndjson).is_empty());
    let dir = folder_of(tmp.path(), "all", &files);
    send(storescu(listener.port, &dir, &[]));
    wait_until("the whole series' event", || lines(&ndjson).len() >= 2);
    // The same instances again (by dcmsend): the count on disk does not
    // change, so nothing more is announced once the series settles.
    send(dcmsend(listener.port, &dir));
    wait_until("the series to settle", || open_series(&listener.log()) == 0);
    std::thread::sleep(PAST_SETTLE);
    listener.stop();
    let events = lines(&ndjson);
    assert_eq!(counts_by_series(&events)["1.2.3.0.0"], [2, 6], "{events:?}");
    assert_eq!(events[0]["associations"][0]["ended"], "aborted by the peer");
    assert_ne!(events[0]["event_id"], events[1]["event_id"]);
}

#[test]
fn hostile_tag_values_reach_a_hook_only_as_argument_values() {
    let tmp = tempfile::tempdir().unwrap();
    let pwned = tmp.path().join("pwned");
    let hostile = format!(
        "a'b\"c; touch {0}; $(touch {0}) `touch {0}`\nnext line {1}",
        pwned.display(),
        "x".repeat(300)
    );
    let src = &sag_anon_files()[0];
    let file = tmp.path().join("in/hostile.dcm");
    write_variant(
        src,
        &file,
        &[
            (
                dicom_dictionary_std::tags::PATIENT_ID,
                dicom_core::VR::LO,
                &hostile,
            ),
            (
                dicom_dictionary_std::tags::SERIES_DESCRIPTION,
                dicom_core::VR::LO,
                &hostile,
            ),
            (
                dicom_dictionary_std::tags::SERIES_INSTANCE_UID,
                dicom_core::VR::UI,
                &hostile,
            ),
        ],
    );
    let dumped = tmp.path().join("dumped.json");
    let dump = "import json, os, sys; json.dump({'argv': sys.argv[2:], 'env': {k: v for k, v in os.environ.items() if k.startswith('RX_')}}, open(sys.argv[1], 'w'))";
    let template = format!(
        "python3 -c \"{dump}\" {} #p #s #n #a #c #r '#s;#n'",
        dumped.display()
    );
    let ndjson = tmp.path().join("events.ndjson");
    let mut listener = Listener::start(&with_events(&[
        "--exec-on-series",
        &template,
        "--events-ndjson",
        ndjson.to_str().unwrap(),
    ]));
    send(storescu(listener.port, &tmp.path().join("in"), &[]));
    wait_until("the hook", || dumped.exists() && !lines(&ndjson).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    let out = listener.stop();
    let event = &lines(&ndjson)[0];
    let seen: Value = serde_json::from_slice(&std::fs::read(&dumped).unwrap()).unwrap();
    let text = |key: &str| event[key].as_str().unwrap().to_string();
    let series_uid = text("series_instance_uid");
    assert!(
        series_uid.contains("$(touch") && series_uid.contains("a'b\"c;"),
        "{series_uid:?}"
    );
    let peer = event["associations"][0]["peer"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        seen["argv"],
        serde_json::json!([
            text("series_dir"),
            series_uid,
            "1",
            "STORESCU",
            AE_TITLE,
            peer,
            format!("{series_uid};1")
        ]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen["env"]["RX_PATIENT_ID"], text("patient_id"));
    assert!(text("patient_id").contains("; touch") && text("patient_id").contains('\n'));
    assert_eq!(seen["env"]["RX_SERIES_INSTANCE_UID"], series_uid);
    assert_eq!(seen["env"]["RX_INSTANCES"], "1");
    let in_env: Value = serde_json::from_str(seen["env"]["RX_EVENT"].as_str().unwrap()).unwrap();
    assert_eq!(&in_env, event);
    assert!(!pwned.exists(), "a tag value ran as code");
}

#[test]
fn a_failing_hook_is_retried_then_set_aside_and_can_be_put_back() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 2);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let tries = tmp.path().join("tries");
    let failing = format!(
        "/bin/sh -c 'echo try >> \"$0\"; exit 3' {}",
        tries.display()
    );
    let extra = with_events(&["--exec-on-series", &failing, "--exec-retries", "1"]);
    let mut listener = Listener::start_in(Command::new(listen_path()), &data, &log, &extra);
    send(storescu(listener.port, &tmp.path().join("made"), &[]));
    wait_until("the event to be set aside", || given_up(&log) == 1);
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::fs::read_to_string(&tries).unwrap().lines().count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("exec failed (exit status 3); trying again in")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("given up, kept as"), "{stderr}");
    assert!(
        stderr.contains("outbox exec: 0 waiting, 1 given up"),
        "{stderr}"
    );

    // The operator puts it back; a working hook then gets it, same id.
    let kept = std::fs::read_dir(log.join(".rx-repack/outbox/exec/failed"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let id = serde_json::from_slice::<Value>(&std::fs::read(&kept).unwrap()).unwrap()["event_id"]
        .clone();
    std::fs::rename(
        &kept,
        log.join(".rx-repack/outbox/exec")
            .join(kept.file_name().unwrap()),
    )
    .unwrap();
    let hooked = tmp.path().join("hook.ndjson");
    let working = recording_hook(&hooked);
    let mut again = Listener::start_in(
        Command::new(listen_path()),
        &data,
        &log,
        &["--exec-on-series", &working],
    );
    wait_until("the event put back", || !lines(&hooked).is_empty());
    again.stop();
    let events = lines(&hooked);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], id);
    assert_eq!(events[0]["instances"], files.len() as u64);
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_children_and_holds_up_no_other_sink() {
    let tmp = tempfile::tempdir().unwrap();
    make_instances(&tmp.path().join("made"), 1, 1, 2);
    let pids = tmp.path().join("pids");
    // The hook's child is the one that hangs.
    let hanging = format!(
        "/bin/sh -c 'sleep 60 & echo $! >> \"$0\"; wait' {}",
        pids.display()
    );
    let ndjson = tmp.path().join("events.ndjson");
    let mut listener = Listener::start(&with_events(&[
        "--exec-on-series",
        &hanging,
        "--exec-timeout",
        "1",
        "--exec-retries",
        "0",
        "--events-ndjson",
        ndjson.to_str().unwrap(),
    ]));
    send(storescu(listener.port, &tmp.path().join("made"), &[]));
    wait_until("the NDJSON sink, while the hook hangs", || {
        !lines(&ndjson).is_empty()
    });
    wait_until("the hanging hook to be given up", || {
        given_up(&listener.log()) == 1
    });
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("timed out after 1 s; killed").count(),
        1,
        "{stderr}"
    );
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.lines().count(), 1);
    for pid in pids.lines() {
        // Gone, or a zombie left for a PID 1 that does not reap.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.chars().next());
        assert!(
            matches!(state, None | Some('Z')),
            "the hook's child {pid} lives on ({state:?})"
        );
    }
}

#[test]
fn a_slow_hook_holds_up_no_acknowledgement() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 4, 10);
    let hooked = tmp.path().join("hook.ndjson");
    let slow = format!(
        "/bin/sh -c 'sleep 1; printf \"%s\\n\" \"$RX_EVENT\" >> \"$0\"' {}",
        hooked.display()
    );
    let ndjson = tmp.path().join("events.ndjson");
    let mut listener = Listener::start(&with_events(&[
        "--exec-on-series",
        &slow,
        "--events-ndjson",
        ndjson.to_str().unwrap(),
    ]));
    let port = listener.port;
    let dirs: Vec<PathBuf> = (0..4)
        .map(|series| {
            folder_of(
                tmp.path(),
                &format!("s{series}"),
                &of_series(&files, series),
            )
        })
        .collect();
    // The first series' hook starts while the other three are sent.
    send(storescu(port, &dirs[0], &[]));
    wait_until("the first event", || !lines(&ndjson).is_empty());
    std::thread::scope(|scope| {
        for dir in &dirs[1..] {
            scope.spawn(move || send(storescu(port, dir, &[])));
        }
    });
    wait_until("every event in the NDJSON sink", || {
        lines(&ndjson).len() == 4
    });
    let hooked_then = lines(&hooked).len();
    assert!(hooked_then < 4, "the hooks were not slow: {hooked_then}");
    wait_until("every slow hook", || lines(&hooked).len() == 4);
    listener.stop();
    assert_eq!(counts_by_series(&lines(&hooked)).len(), 4);
}

#[test]
fn kill_9_between_completion_and_delivery_delivers_after_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 3);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let started = tmp.path().join("started");
    let hanging = format!(
        "/bin/sh -c 'echo $$ > \"$0\"; exec sleep 60' {}",
        started.display()
    );
    let extra = with_events(&["--exec-on-series", &hanging]);
    let mut first = Listener::start_in(Command::new(listen_path()), &data, &log, &extra);
    send(storescu(first.port, &tmp.path().join("made"), &[]));
    wait_until("the hook to start", || {
        std::fs::read_to_string(&started).is_ok_and(|pid| pid.ends_with('\n'))
    });
    let waiting: Vec<PathBuf> = std::fs::read_dir(log.join(".rx-repack/outbox/exec"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(waiting.len(), 1);
    let id =
        serde_json::from_slice::<Value>(&std::fs::read(&waiting[0]).unwrap()).unwrap()["event_id"]
            .clone();
    first.running.child.kill().unwrap();
    first.running.child.wait().unwrap();
    let hook = std::fs::read_to_string(&started).unwrap();
    let _ = Command::new("kill").args(["-KILL", hook.trim()]).status();

    let hooked = tmp.path().join("hook.ndjson");
    let working = recording_hook(&hooked);
    let mut second = Listener::start_in(
        Command::new(listen_path()),
        &data,
        &log,
        &["--exec-on-series", &working],
    );
    wait_until("the event, after the restart", || {
        !lines(&hooked).is_empty()
    });
    second.stop();
    let events = lines(&hooked);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], id);
    assert_eq!(events[0]["instances"], files.len() as u64);
}

#[test]
fn a_replica_killed_mid_series_does_not_hold_the_series_open() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 5);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let ndjson = tmp.path().join("events.ndjson");
    let extra = with_events(&["--events-ndjson", ndjson.to_str().unwrap()]);
    let mut doomed = Listener::start_in(Command::new(listen_path()), &data, &log, &extra);
    let mut held = raw_scu::associate(doomed.port, AE_TITLE);
    for (id, (uid, data)) in (1..).zip(raw_instances(&files[..3])) {
        assert_eq!(raw_scu::store(&mut held, id, &uid, &data), 0);
    }
    doomed.running.child.kill().unwrap();
    doomed.running.child.wait().unwrap();
    drop(held);
    let mut survivor = Listener::start_in(Command::new(listen_path()), &data, &log, &extra);
    wait_until("the event of what the killed replica kept", || {
        !lines(&ndjson).is_empty()
    });
    std::thread::sleep(PAST_SETTLE);
    survivor.stop();
    let events = lines(&ndjson);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["instances"], 3);
    let ended = events[0]["associations"][0]["ended"].as_str().unwrap();
    assert!(ended.contains("rx-listen stopped"), "{ended}");
}

#[test]
fn replayed_events_of_a_tree_filed_by_rx_repack_carry_the_live_ids() {
    let tmp = tempfile::tempdir().unwrap();
    make_instances(&tmp.path().join("made"), 1, 2, 3);
    let live = tmp.path().join("live.ndjson");
    let mut listener = Listener::start(&with_events(&["--events-ndjson", live.to_str().unwrap()]));
    send(storescu(listener.port, &tmp.path().join("made"), &[]));
    wait_until("the live events", || lines(&live).len() == 2);
    listener.stop();

    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let filed = rx_process()
        .arg("--datadir")
        .arg(&data)
        .arg("--logdir")
        .arg(&log)
        .arg(tmp.path().join("made"))
        .output()
        .unwrap();
    assert!(
        filed.status.success(),
        "{}",
        String::from_utf8_lossy(&filed.stderr)
    );
    let replayed = tmp.path().join("replayed.ndjson");
    let out = run_bounded({
        let mut cmd = Command::new(listen_path());
        cmd.arg("--datadir")
            .arg(&data)
            .arg("--logdir")
            .arg(&log)
            .arg("--events-ndjson")
            .arg(&replayed)
            .arg("--replay-events");
        cmd
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("replayed 2 series"), "{stderr}");
    let ids = |events: Vec<Value>| -> BTreeMap<String, (Value, Value)> {
        events
            .into_iter()
            .map(|e| {
                let uid = e["series_instance_uid"].as_str().unwrap().to_string();
                (uid, (e["event_id"].clone(), e["instances"].clone()))
            })
            .collect()
    };
    let replayed_events = lines(&replayed);
    assert!(replayed_events.iter().all(|e| e["replayed"] == true));
    for event in &replayed_events {
        assert!(
            Path::new(event["series_dir"].as_str().unwrap())
                .starts_with(std::path::absolute(&data).unwrap())
        );
    }
    assert_eq!(ids(replayed_events), ids(lines(&live)));
}

#[test]
fn a_full_log_dir_holds_the_event_back_until_there_is_room() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 4);
    let log = tmp.path().join("log");
    let _mount = Mount::tmpfs(&log, "size=2m");
    let ndjson = tmp.path().join("events.ndjson");
    let mut listener = Listener::start_in(
        Command::new(listen_path()),
        &tmp.path().join("data"),
        &log,
        &with_events(&["--events-ndjson", ndjson.to_str().unwrap()]),
    );
    let mut held = raw_scu::associate(listener.port, AE_TITLE);
    for (id, (uid, data)) in (1..).zip(raw_instances(&files)) {
        assert_eq!(raw_scu::store(&mut held, id, &uid, &data), 0);
    }
    // Fill the log dir, then end the series.
    let filler = log.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    use std::io::Write;
    while file.write_all(&[0; 4096]).is_ok() {}
    drop(file);
    raw_scu::release(held);
    wait_until("a line about the full log dir", || {
        listener
            .running
            .stderr_so_far()
            .contains("cannot record the end of an association in the log dir")
    });
    std::thread::sleep(PAST_SETTLE);
    assert!(lines(&ndjson).is_empty());
    // Still receiving: an echo is answered.
    let echo = Command::new("echoscu")
        .args(["-aec", AE_TITLE, "127.0.0.1", &listener.port.to_string()])
        .status()
        .unwrap();
    assert!(echo.success());
    std::fs::remove_file(&filler).unwrap();
    wait_until("the event, once there is room", || {
        !lines(&ndjson).is_empty()
    });
    listener.stop();
    let event = &lines(&ndjson)[0];
    assert_eq!(event["instances"], 4);
    // Its end was kept until it could be written.
    assert_eq!(event["associations"][0]["ended"], "released");
}

#[test]
fn event_options_that_cannot_work_are_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(listen_path());
        cmd.arg("--datadir").arg(tmp.path().join("data")).args(args);
        run_bounded(cmd)
    };
    let log = tmp.path().join("log");
    let log = log.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--exec-on-series", "true", "0"],
            "series events need --logdir",
        ),
        (
            vec!["--logdir", log, "--exec-on-series", "echo 'open", "0"],
            "a ' is not closed",
        ),
        (
            vec!["--logdir", log, "--replay-events"],
            "nowhere to replay to",
        ),
        (
            vec![
                "--logdir",
                log,
                "--events-ndjson",
                "x",
                "--series-settle=-1",
                "0",
            ],
            "--series-settle",
        ),
    ] {
        let out = run(&args);
        let ours = !says.starts_with("--");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        // Ours in one line (clap's usage errors add a hint).
        assert!(
            !ours || stderr.trim().lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

/// HAProxy in TCP mode, with health checks (a bare TCP connect, as
/// Kubernetes' and most balancers' are), in front of `ports`.
fn haproxy(tmp: &Path, ports: &[u16]) -> (Running, u16) {
    let port = crate::services::free_port();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(n, p)| format!("  server r{n} 127.0.0.1:{p} check inter 100ms fall 2 rise 1\n"))
        .collect();
    let config = tmp.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 1s\n  \
             timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n\
             frontend dicom\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n{servers}"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&config);
    let proxy = Running::spawn(&mut cmd);
    wait_until("HAProxy to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proxy, port)
}

/// Sends `instances` through `port` as a sender that tries again does:
/// after a broken association, a new one, from the first instance not
/// acknowledged. Returns the UIDs acknowledged.
fn push_until_acknowledged(port: u16, instances: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    while acknowledged.len() < instances.len() {
        assert!(
            started.elapsed() < PATIENCE,
            "could not send through HAProxy"
        );
        let Ok(mut stream) = raw_scu::try_associate(port, AE_TITLE) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        for (id, (uid, data)) in (1..).zip(&instances[acknowledged.len()..]) {
            match raw_scu::try_store(&mut stream, id, uid, data) {
                Ok(0) => acknowledged.push(uid.clone()),
                _ => break,
            }
            // A push long enough to be cut.
            std::thread::sleep(Duration::from_millis(15));
        }
        if acknowledged.len() == instances.len() {
            let _ = raw_scu::try_release(stream);
        }
    }
    acknowledged
}

#[test]
fn three_replicas_behind_haproxy_one_killed_mid_push_announce_each_series_once() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 4, 24);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let ndjson = tmp.path().join("events.ndjson");
    let extra = with_events(&["--events-ndjson", ndjson.to_str().unwrap()]);
    let start = |address: &str| {
        Listener::start_at(Command::new(listen_path()), &data, &log, &extra, address)
    };
    let mut replicas: Vec<Listener> = (0..3).map(|_| start("127.0.0.1:0")).collect();
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let (_proxy, port) = haproxy(tmp.path(), &ports);
    let series: Vec<Vec<(String, Vec<u8>)>> = (0..4)
        .map(|s| raw_instances(&of_series(&files, s)))
        .collect();
    let acknowledged: Vec<String> = std::thread::scope(|scope| {
        let senders: Vec<_> = series
            .iter()
            .map(|instances| {
                let sender = scope.spawn(move || push_until_acknowledged(port, instances));
                std::thread::sleep(Duration::from_millis(20));
                sender
            })
            .collect();
        // Mid-push: the first replica dies, and comes back on its port.
        std::thread::sleep(Duration::from_millis(150));
        replicas[0].running.child.kill().unwrap();
        replicas[0].running.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        replicas[0] = start(&format!("127.0.0.1:{}", ports[0]));
        senders
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    assert_eq!(acknowledged.len(), files.len());
    wait_until("every series' event", || {
        let counts = counts_by_series(&lines(&ndjson));
        counts.len() == 4 && counts.values().all(|c| c.last() == Some(&24))
    });
    std::thread::sleep(PAST_SETTLE);
    let mut said = String::new();
    for replica in &mut replicas {
        said.push_str(&String::from_utf8_lossy(&replica.stop().stderr));
    }

    // Every instance acknowledged is kept, and recorded.
    let placed: Vec<String> = files_under(&data).iter().map(|p| instance_uid(p)).collect();
    for uid in &acknowledged {
        assert!(
            placed.contains(uid),
            "{uid} was acknowledged but is not kept"
        );
    }
    assert_eq!(image_records(&json_files(&log)), files.len());
    assert!(log_problems(&log).is_empty(), "{:?}", log_problems(&log));
    // Each series completes once per count: no count twice, and the last
    // is the whole series.
    let events = lines(&ndjson);
    for (uid, counts) in counts_by_series(&events) {
        let mut distinct = counts.clone();
        distinct.dedup();
        assert_eq!(
            distinct, counts,
            "{uid}: a count announced twice: {events:?}"
        );
        assert_eq!(counts.last(), Some(&24), "{uid}: {counts:?}");
    }
    // The kill cut associations that had delivered instances.
    let cut = events
        .iter()
        .flat_map(|e| e["associations"].as_array().unwrap())
        .filter(|a| a["ended"].as_str().unwrap().contains("rx-listen stopped"))
        .count();
    assert!(cut > 0, "no association was cut by the kill: {events:?}");
    // Nothing left behind: every event due, the killed replica's too, is
    // delivered.
    let waiting = std::fs::read_dir(log.join(".rx-repack/outbox/ndjson"))
        .unwrap()
        .count();
    assert_eq!(waiting, 0, "{said}");
    assert!(
        said.contains("outbox ndjson: 0 waiting, 0 given up"),
        "{said}"
    );
}

#[test]
fn sinks_that_are_down_get_every_event_in_order_once_back() {
    let tmp = tempfile::tempdir().unwrap();
    let files = make_instances(&tmp.path().join("made"), 1, 2, 2);
    let down = tmp.path().join("down");
    std::fs::write(&down, b"").unwrap();
    let hooked = tmp.path().join("hook.ndjson");
    // Fails while the file `down` is there.
    let flaky = format!(
        "/bin/sh -c 'test ! -e \"$0\" && printf \"%s\\n\" \"$RX_EVENT\" >> \"$1\"' {} {}",
        down.display(),
        hooked.display()
    );
    // Its folder does not exist yet: the NDJSON file cannot be opened.
    let ndjson = tmp.path().join("later/events.ndjson");
    let mut listener = Listener::start(&with_events(&[
        "--exec-on-series",
        &flaky,
        "--events-ndjson",
        ndjson.to_str().unwrap(),
    ]));
    for series in 0..2 {
        let dir = folder_of(
            tmp.path(),
            &format!("s{series}"),
            &of_series(&files, series),
        );
        send(storescu(listener.port, &dir, &[]));
        wait_until("the series' event in the outbox", || {
            listener
                .running
                .stderr_so_far()
                .contains(&format!("series 1.2.3.0.{series} complete"))
        });
    }
    let said = listener.running.stderr_so_far();
    assert!(
        said.contains("exec failed (exit status 1); trying again"),
        "{said}"
    );
    assert!(said.contains("ndjson failed (cannot append to"), "{said}");
    std::fs::remove_file(&down).unwrap();
    std::fs::create_dir(tmp.path().join("later")).unwrap();
    wait_until("both sinks back", || {
        lines(&hooked).len() == 2 && lines(&ndjson).len() == 2
    });
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for events in [lines(&hooked), lines(&ndjson)] {
        let order: Vec<&str> = events
            .iter()
            .map(|e| e["series_instance_uid"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["1.2.3.0.0", "1.2.3.0.1"], "{stderr}");
    }
    assert!(
        stderr.contains("outbox exec: 0 waiting, 0 given up; ndjson: 0 waiting, 0 given up"),
        "{stderr}"
    );
}
