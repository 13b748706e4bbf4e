//! rx-listen in oxidicom's place in ChRIS: its tree under CUBE's storage
//! root, its refusals, with real senders on loopback.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::listener::{Listener, listen_path, send, storescu};
use crate::raw_scu;
use crate::services::{CeleryWorker, Nats, Orthanc, RabbitMq, Redis, Subscriber, wait_for};

/// The calling AE title of oxidicom's own integration test (its
/// `tests/expected_files.txt` lists the paths it files SAG-anon at).
const PACS: &str = "OXITESTORTHANC";

/// oxidicom's series dir of SAG-anon sent by [`PACS`] (from its
/// `tests/expected_files.txt`).
const SAG_ANON_SERIES: &str = "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06";

/// An element's value as DCMTK's dcmdump reads it.
fn dcmdump_value(path: &Path, keyword: &str) -> String {
    let out = Command::new("dcmdump")
        .args(["-q", "+P", keyword])
        .arg(path)
        .output()
        .expect("dcmdump (Debian: dcmtk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('[').expect("a value in brackets") + 1;
    let end = text[start..].find(']').unwrap() + start;
    text[start..end].to_string()
}

/// The files under `root`, relative to it.
fn relative_files(root: &Path) -> BTreeSet<PathBuf> {
    files_under(root)
        .into_iter()
        .map(|path| path.strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

#[test]
fn the_chris_layout_files_each_instance_at_oxidicoms_path() {
    let mut listener = Listener::start(&["--layout", "chris"]);
    send(storescu(listener.port, &sag_anon(), &["-aet", PACS]));
    listener.stop();
    // Each file's SOPInstanceUID and InstanceNumber, by one dcmdump.
    let dumped = Command::new("dcmdump")
        .args(["-q", "+P", "SOPInstanceUID", "+P", "InstanceNumber"])
        .args(sag_anon_files())
        .output()
        .expect("dcmdump (Debian: dcmtk)");
    let text = String::from_utf8_lossy(&dumped.stdout);
    let values: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once('[')?.1.split_once(']'))
        .map(|(value, _)| value)
        .collect();
    let expected: BTreeSet<PathBuf> = values
        .chunks(2)
        .map(|pair| {
            let number: u32 = pair[1].parse().unwrap();
            Path::new(SAG_ANON_SERIES).join(format!("{number:04}-{}.dcm", pair[0]))
        })
        .collect();
    assert_eq!(expected.len(), 192);
    assert_eq!(relative_files(&listener.data()), expected);
}

#[test]
fn rx_repack_files_storescps_files_in_the_chris_layout_by_their_sender() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = &sag_anon_files()[0];
    rx().args(["--layout", "chris", "--datadir"])
        .arg(&data)
        .arg(file)
        .assert()
        .success();
    // storescp keeps the calling AE title in the file meta group.
    let sender = dcmdump_value(file, "SourceApplicationEntityTitle");
    let placed = relative_files(&data);
    let dir = format!("SERVICES/PACS/{sender}/1449c1d-anonymized-20090701/");
    assert!(
        placed.iter().all(|p| p.starts_with(&dir)),
        "{placed:?} not under {dir}"
    );
}

/// SAG-anon's first instance in `dir`, edited by dcmodify with `edit`.
fn edited_instance(dir: &Path, edit: &str) -> PathBuf {
    copy_files(&sag_anon_files()[..1], dir);
    let file = files_under(dir).remove(0);
    let status = Command::new("dcmodify")
        .arg("-nb")
        .args(edit.split(' '))
        .arg(&file)
        .status()
        .expect("dcmodify (Debian: dcmtk)");
    assert!(status.success());
    file
}

/// Sends `file` as [`PACS`]; storescu must be told it was not kept, as
/// the data's fault.
fn send_refused(port: u16, file: &Path) {
    let out = storescu(port, file, &["-v", "-aet", PACS])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Received Store Response (Error: CannotUnderstand)"),
        "{} was not refused: {said}",
        file.display()
    );
}

#[test]
fn an_instance_the_chris_layout_cannot_take_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut listener = Listener::start(&["--layout", "chris"]);
    for (case, edit) in [
        ("no-date", "-ea StudyDate"),
        ("bad-date", "-m StudyDate=2024"),
        ("no-patient", "-ea PatientID"),
    ] {
        let file = edited_instance(&tmp.path().join(case), edit);
        send_refused(listener.port, &file);
    }
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for why in [
        "lacks StudyDate",
        "StudyDate is \"2024\"",
        "lacks PatientID",
    ] {
        assert!(stderr.contains(why), "no line saying {why}: {stderr}");
    }
    assert_eq!(relative_files(&listener.data()), BTreeSet::new());
}

/// rx-listen with `--layout chris`, registering with the broker at
/// `broker`, settling in a fifth of a second, and `extra`.
fn chris_listener(broker: &str, extra: &[&str]) -> Listener {
    let mut options = vec![
        "--layout",
        "chris",
        "--celery-broker",
        broker,
        "--series-settle",
        "0.2",
    ];
    options.extend(extra);
    Listener::start(&options)
}

/// A LONK count message's count, or `None` for another message.
fn lonk_count(message: &[u8]) -> Option<u32> {
    match message {
        [0x01, count @ ..] => Some(u32::from_le_bytes(count.try_into().unwrap())),
        _ => None,
    }
}

#[test]
fn two_series_at_once_are_each_registered_once_by_a_celery_worker_with_progress_on_nats() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let worker = CeleryWorker::start(&redis.url(), "main2");
    let nats = Nats::start();
    let subscriber = Subscriber::start(&nats.url(), "oxidicom.>");
    let files = make_instances(&tmp.path().join("made"), 1, 2, 5);
    let dirs = [0, 1]
        .map(|series| folder_of(tmp.path(), &format!("{series}"), &of_series(&files, series)));
    let events = tmp.path().join("events.ndjson");
    let mut listener = chris_listener(
        &redis.url(),
        &[
            "--events-ndjson",
            events.to_str().unwrap(),
            "--nats",
            &nats.url(),
            "--progress-interval",
            "0",
        ],
    );
    let port = listener.port;
    std::thread::scope(|scope| {
        for dir in &dirs {
            scope.spawn(move || send(storescu(port, dir, &["-aet", PACS])));
        }
    });
    let subject = |series: usize| format!("oxidicom.{PACS}.1_2_3_0_{series}");
    wait_for("two registrations, told on NATS", || {
        (0..2).all(|series| subscriber.messages(&subject(series)).last() == Some(&vec![0x00]))
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut calls = worker.calls();
    calls.sort_by_key(|call| call["SeriesInstanceUID"].to_string());
    assert_eq!(calls.len(), 2, "{calls:?}\n{stderr}\n{}", worker.log());
    let announced: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for (series, call) in calls.iter().enumerate() {
        let uid = format!("1.2.3.0.{series}");
        let path = call["path"].as_str().unwrap();
        assert!(
            path.starts_with("SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/"),
            "{path}"
        );
        assert_eq!(files_under(&listener.data().join(path)).len(), 5);
        let event = announced
            .iter()
            .find(|e| e["series_instance_uid"] == uid.as_str())
            .expect("an event for each series");
        let expected = serde_json::json!({
            "PatientID": "1449c1d",
            "StudyDate": "2013-03-08",
            "StudyInstanceUID": "1.2.3.0",
            "SeriesInstanceUID": uid,
            "pacs_name": PACS,
            "path": path,
            "ndicom": 5,
            "PatientName": "anonymized",
            "PatientBirthDate": "20090701",
            "PatientAge": 1096,
            "PatientSex": dcmdump_value(&sag_anon_files()[0], "PatientSex"),
            "AccessionNumber": "98edede8b2",
            "Modality": "MR",
            "ProtocolName": dcmdump_value(&sag_anon_files()[0], "ProtocolName"),
            "StudyDescription": "MR-Brain w/o Contrast",
            "SeriesDescription": "SAG MPRAGE 220 FOV",
            "task_id": event["event_id"],
        });
        assert_eq!(call, &expected);
    }
    assert!(stderr.contains("celery: 0 waiting, 0 given up"), "{stderr}");
    // LONK: counts that only grow, to the count registered, then done.
    for series in 0..2 {
        let messages = subscriber.messages(&subject(series));
        let (done, counted) = messages.split_last().unwrap();
        assert_eq!(done, &[0x00], "{messages:?}");
        let counts: Vec<u32> = counted.iter().map(|m| lonk_count(m).unwrap()).collect();
        assert_eq!(counts.first(), Some(&1), "{counts:?}");
        assert_eq!(counts.last(), Some(&5), "{counts:?}");
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(counts.len() >= 3, "{counts:?}");
    }
    assert!(stderr.contains("LONK messages dropped: 0"), "{stderr}");
}

#[test]
fn an_instance_without_a_study_date_is_refused_told_on_nats_and_never_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let worker = CeleryWorker::start(&redis.url(), "main2");
    let nats = Nats::start();
    let subscriber = Subscriber::start(&nats.url(), "oxidicom.>");
    let mut listener = chris_listener(&redis.url(), &["--nats", &nats.url()]);
    let file = edited_instance(&tmp.path().join("undated"), "-ea StudyDate");
    send_refused(listener.port, &file);
    let series = dcmdump_value(&file, "SeriesInstanceUID").replace('.', "_");
    let subject = format!("oxidicom.{PACS}.{series}");
    wait_for("the error on NATS", || {
        !subscriber.messages(&subject).is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    listener.stop();
    let messages = subscriber.messages(&subject);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = String::from_utf8_lossy(&messages[0][1..]).into_owned();
    assert_eq!(messages[0][0], 0x02);
    assert!(text.contains("lacks StudyDate"), "{text}");
    assert!(worker.calls().is_empty(), "{:?}", worker.calls());
    assert!(files_under(&listener.data()).is_empty());
}

#[test]
fn nats_away_drops_progress_and_nothing_else() {
    let redis = Redis::start();
    let worker = CeleryWorker::start(&redis.url(), "main2");
    // Nothing listens there.
    let nowhere = format!("nats://127.0.0.1:{}", crate::services::free_port());
    let mut listener = chris_listener(&redis.url(), &["--nats", &nowhere]);
    send(storescu(listener.port, &sag_anon(), &["-aet", PACS]));
    wait_for("the registration", || !worker.calls().is_empty());
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(worker.calls()[0]["ndicom"], 192);
    assert!(
        stderr.contains("progress is dropped until it is back"),
        "{stderr}"
    );
    assert!(!stderr.contains("LONK messages dropped: 0"), "{stderr}");
}

/// The events waiting in the outbox of the celery sink of `log`.
fn celery_waiting(log: &Path) -> usize {
    std::fs::read_dir(log.join(".rx-repack/outbox/celery")).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

#[test]
fn redis_down_during_a_series_for_a_minute_gets_the_task_once_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut redis = Redis::start();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 5);
    let mut listener = chris_listener(&redis.url(), &[]);
    let mut held = raw_scu::associate(listener.port, crate::listener::AE_TITLE);
    let instances: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (instance_uid(f), std::fs::read(f).unwrap()))
        .collect();
    let data_set = |bytes: &[u8]| crate::listener::data_set(bytes).to_vec();
    for (id, (uid, bytes)) in (1..).zip(&instances[..2]) {
        assert_eq!(raw_scu::store(&mut held, id, uid, &data_set(bytes)), 0);
    }
    redis.stop();
    for (id, (uid, bytes)) in (3..).zip(&instances[2..]) {
        assert_eq!(raw_scu::store(&mut held, id, uid, &data_set(bytes)), 0);
    }
    raw_scu::release(held);
    wait_for("a failed push", || {
        listener
            .running
            .stderr_so_far()
            .contains("celery failed (cannot send the task to the broker")
    });
    // A minute down: rx-listen's retries (1, 2, 4 ... s apart) go on.
    std::thread::sleep(std::time::Duration::from_secs(60));
    redis.restart();
    // The worker starts once the broker is back (how soon Celery itself
    // reconnects is not what is tested).
    let worker = CeleryWorker::start(&redis.url(), "main2");
    wait_for("the registration", || !worker.calls().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(800));
    listener.stop();
    let calls = worker.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["ndicom"], 5);
    assert_eq!(calls[0]["SeriesInstanceUID"], "1.2.3.0.0");
}

#[test]
fn kill_9_before_the_task_is_sent_sends_it_after_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut redis = Redis::start();
    let url = redis.url();
    let files = make_instances(&tmp.path().join("made"), 1, 1, 4);
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let options = [
        "--layout",
        "chris",
        "--celery-broker",
        &url,
        "--series-settle",
        "0.2",
    ];
    redis.stop();
    let mut first = Listener::start_in(Command::new(listen_path()), &data, &log, &options);
    send(storescu(
        first.port,
        &tmp.path().join("made"),
        &["-aet", PACS],
    ));
    wait_for("the completed series in the outbox", || {
        celery_waiting(&log) == 1
    });
    first.running.child.kill().unwrap();
    first.running.child.wait().unwrap();

    redis.restart();
    let worker = CeleryWorker::start(&url, "main2");
    let mut second = Listener::start_in(Command::new(listen_path()), &data, &log, &options);
    wait_for("the registration, after the restart", || {
        !worker.calls().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    second.stop();
    let calls = worker.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["ndicom"], files.len() as u64);
    assert_eq!(celery_waiting(&log), 0);
}

#[test]
fn orthanc_pushes_two_series_at_once_to_rx_listen_run_on_oxidicoms_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let worker = CeleryWorker::start(&redis.url(), "main2");
    let nats = Nats::start();
    let subscriber = Subscriber::start(&nats.url(), "test.oxidicom.>");
    let port = crate::services::free_port();
    let root = tmp.path().join("cube-storage");
    // As a ChRIS deployment configures oxidicom; only the settle time is
    // ours (on the command line).
    let mut rx_listen = Running::spawn(
        Command::new(listen_path())
            .args(["--series-settle", "0.2"])
            .env("OXIDICOM_FILES_ROOT", &root)
            .env("OXIDICOM_LISTENER_PORT", port.to_string())
            .env("OXIDICOM_SCP_AET", "OXIDICOMTEST")
            .env("OXIDICOM_CELERY_BROKER", redis.url())
            .env("OXIDICOM_QUEUE_NAME", "main2")
            .env("OXIDICOM_NATS_ADDRESS", format!("127.0.0.1:{}", nats.port))
            .env("OXIDICOM_ROOT_SUBJECT", "test.oxidicom")
            .env("OXIDICOM_PROGRESS_INTERVAL", "50ms")
            .env("OXIDICOM_LISTENER_THREADS", "2")
            .stdin(std::process::Stdio::null()),
    );
    wait_for("rx-listen", || {
        rx_listen
            .stderr_so_far()
            .contains(&format!("listening on 0.0.0.0:{port}"))
    });
    let orthanc = Orthanc::start(PACS, "OXIDICOMTEST", "OXIDICOMTEST", port);
    let other = make_instances(&tmp.path().join("made"), 1, 1, 10);
    orthanc.upload(&sag_anon_files());
    orthanc.upload(&other);
    let sag_uid = dcmdump_value(&sag_anon_files()[0], "SeriesInstanceUID");
    let reports: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let pushes: Vec<_> = [sag_uid.as_str(), "1.2.3.0.0"]
            .into_iter()
            .map(|uid| {
                let orthanc = &orthanc;
                scope.spawn(move || orthanc.push_series("OXIDICOMTEST", uid))
            })
            .collect();
        pushes
            .into_iter()
            .map(|push| push.join().unwrap())
            .collect()
    });
    for report in &reports {
        assert_eq!(report["FailedInstancesCount"], 0, "{report}");
    }
    wait_for("two registrations", || worker.calls().len() >= 2);
    let subject = |uid: &str| format!("test.oxidicom.{PACS}.{}", uid.replace('.', "_"));
    wait_for("done on NATS", || {
        [sag_uid.as_str(), "1.2.3.0.0"]
            .iter()
            .all(|uid| subscriber.messages(&subject(uid)).last() == Some(&vec![0x00]))
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let killed = Command::new("kill")
        .args(["-TERM", &rx_listen.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = rx_listen.finish(crate::listener::PATIENCE).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let placed = relative_files(&root);
    let sag: BTreeSet<&PathBuf> = placed
        .iter()
        .filter(|p| p.starts_with(SAG_ANON_SERIES))
        .collect();
    assert_eq!(sag.len(), 192, "{stderr}");
    let mut calls = worker.calls();
    calls.sort_by_key(|call| call["ndicom"].as_u64());
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (calls[0]["ndicom"].as_u64(), calls[1]["ndicom"].as_u64()),
        (Some(10), Some(192))
    );
    assert_eq!(calls[1]["path"], SAG_ANON_SERIES);
    for call in &calls {
        assert_eq!(call["pacs_name"], PACS);
        assert_eq!(call["StudyDate"], "2013-03-08");
    }
    // The log dir is on the storage root's volume.
    assert!(root.join(".rx-listen/.rx-repack/series/done").is_dir());
}

#[test]
fn a_rabbitmq_broker_gets_the_same_registration_for_a_celery_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let rabbit = RabbitMq::start();
    let mut listener = chris_listener(&rabbit.url(), &[]);
    let files = make_instances(&tmp.path().join("made"), 1, 1, 5);
    // Before any worker: no queue takes the task yet, so RabbitMQ returns
    // it, and rx-listen tries again.
    send(storescu(
        listener.port,
        &tmp.path().join("made"),
        &["-aet", PACS],
    ));
    wait_for("a returned task", || {
        listener
            .running
            .stderr_so_far()
            .contains("the broker returned it")
    });
    let worker = CeleryWorker::start(&rabbit.url(), "main2");
    wait_for("the registration", || !worker.calls().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(800));
    listener.stop();
    let calls = worker.calls();
    assert_eq!(calls.len(), 1, "{calls:?}\n{}", worker.log());
    assert_eq!(calls[0]["ndicom"], files.len() as u64);
    assert_eq!(calls[0]["pacs_name"], PACS);
    assert_eq!(calls[0]["StudyDate"], "2013-03-08");
    assert_eq!(calls[0]["PatientAge"], 1096);
    let sex = dcmdump_value(&sag_anon_files()[0], "PatientSex");
    assert_eq!(calls[0]["PatientSex"], sex.as_str());
}
