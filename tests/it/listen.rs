//! rx-listen with real peers on loopback: DCMTK's storescu, dcmsend and
//! echoscu, pynetdicom, and our raw SCU for what the others will not send.
//! What it files must be what rx-repack files from the same instances,
//! each data set byte for byte as sent.

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

/// pynetdicom (from px-repack's venv, see get_oracle.sh) sending every file
/// of `dir` in one association, as the files are: it proposes explicit VR
/// little endian, theirs, only (pynetdicom proposes implicit VR first
/// otherwise, and re-encodes what it sends to match).
fn pynetdicom(port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg("-c")
        .arg(
            r#"
import sys, pathlib
from pynetdicom import AE, StoragePresentationContexts
from pydicom.uid import ExplicitVRLittleEndian
port, folder = int(sys.argv[1]), pathlib.Path(sys.argv[2])
ae = AE(ae_title="PYNETDICOM")
for context in StoragePresentationContexts:
    ae.add_requested_context(context.abstract_syntax, ExplicitVRLittleEndian)
assoc = ae.associate("127.0.0.1", port, ae_title="RXLISTEN")
assert assoc.is_established, "no association"
for path in sorted(folder.iterdir()):
    status = assoc.send_c_store(path)
    assert status and status.Status == 0, f"{path}: {status}"
assoc.release()
"#,
        )
        .arg(port.to_string())
        .arg(dir);
    cmd
}

/// The SOPInstanceUIDs of the NDJSON lines rx-listen printed, in order.
fn received_order(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            assert!(record["error"].is_null(), "{line}");
            let src = record["src"].as_str().unwrap();
            src.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

/// The stat fields of an image record that differ between two copies,
/// and size: a received file has our meta group, not the sender's.
const VOLATILE: [&str; 10] = [
    "atime", "ctime", "mtime", "ino", "dev", "blocks", "blksize", "uid", "gid", "size",
];

/// A record with the data dir's path replaced and, in image records, the
/// fields that differ between two copies dropped.
fn comparable(record: &[u8], datadir: &Path) -> Value {
    let text = String::from_utf8_lossy(record).replace(&datadir.display().to_string(), "DATA");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    if let Some(series) = value.as_object_mut().and_then(|v| v.values_mut().next())
        && let Some(images) = series.get_mut("imageObj").and_then(Value::as_object_mut)
    {
        for stat in images.values_mut() {
            for field in VOLATILE {
                stat.as_object_mut().unwrap().remove(field);
            }
        }
    }
    value
}

/// What rx-listen filed must be what rx-repack files from `sources` taken
/// in `order` (of SOPInstanceUIDs: the series record holds the first
/// instance's elements): the same relative paths, each data set the
/// source's byte for byte, the same records.
fn assert_filed_as_rx_repack(listener: &Listener, sources: &[PathBuf], order: &[String]) {
    let by_uid: BTreeMap<String, &PathBuf> = sources
        .iter()
        .map(|path| (instance_uid(path), path))
        .collect();
    assert_eq!(order.len(), sources.len(), "instances received");
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let list = tmp.path().join("list");
    let paths: Vec<String> = order
        .iter()
        .map(|uid| by_uid[uid].display().to_string())
        .collect();
    std::fs::write(&list, paths.join("\n")).unwrap();
    rx().args(["-j", "1", "-v", "0", "--files-from"])
        .arg(&list)
        .arg("--datadir")
        .arg(&data)
        .arg("--logdir")
        .arg(&log)
        .assert()
        .success();
    let ours = tree(&listener.data());
    let theirs = tree(&data);
    let names =
        |tree: &[(PathBuf, Vec<u8>)]| tree.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "the trees differ");
    for ((path, received), (_, source)) in ours.iter().zip(&theirs) {
        assert!(
            data_set(received) == data_set(source),
            "{}: the data set is not the one sent",
            path.display()
        );
    }
    // Each image record's size is its file's.
    for (path, record) in json_files(&listener.log()) {
        if let Some(images) = record
            .as_object()
            .and_then(|r| r.values().next())
            .and_then(|s| s.get("imageObj"))
        {
            for stat in images.as_object().unwrap().values() {
                let file = Path::new(stat["FSlocation"].as_str().unwrap());
                let size = std::fs::metadata(file).unwrap().len();
                assert_eq!(stat["size"], size, "{}", path.display());
            }
        }
    }
    let ours = tree(&listener.log());
    let theirs = tree(&log);
    assert_eq!(names(&ours), names(&theirs), "the log dirs differ");
    for ((path, received), (_, expected)) in ours.iter().zip(&theirs) {
        if path.starts_with(".rx-repack") {
            continue;
        }
        assert_eq!(
            comparable(received, &listener.data()),
            comparable(expected, &data),
            "{} differs",
            path.display()
        );
    }
}

#[test]
fn storescu_dcmsend_and_pynetdicom_deliver_what_rx_repack_files() {
    let sources = sag_anon_files();
    let senders: [(&str, &dyn Fn(u16) -> Command); 3] = [
        ("storescu", &|port| storescu(port, &sag_anon(), &[])),
        ("dcmsend", &|port| dcmsend(port, &sag_anon())),
        ("pynetdicom", &|port| pynetdicom(port, &sag_anon())),
    ];
    for (name, sender) in senders {
        let mut listener = Listener::start(&[]);
        send(sender(listener.port));
        let out = listener.stop();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("192 instances (0 failed)") && stderr.contains("released"),
            "{name}: {stderr}"
        );
        assert_filed_as_rx_repack(&listener, &sources, &received_order(&stdout));
        // The meta group says where the instance came from.
        let placed = files_under(&listener.data());
        let meta = rx_repack::reading::read_whole_header(&placed[0]).unwrap();
        assert!(meta.instance_uid().is_some(), "{name}");
        let bytes = std::fs::read(&placed[0]).unwrap();
        let sender_ae = name.to_ascii_uppercase();
        assert!(
            bytes
                .windows(sender_ae.len())
                .any(|w| w == sender_ae.as_bytes()),
            "{name}: SourceApplicationEntityTitle not in the meta group"
        );
    }
}

#[test]
fn every_encoding_arrives_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let example = &sag_anon_files()[0];
    // dcmconv/dcmcjpeg option, storescu's proposal for it.
    let forms = [
        ("implicit", "dcmconv", "+ti", "-xi"),
        ("big-endian", "dcmconv", "+tb", "-xb"),
        ("deflated", "dcmconv", "+td", "-xd"),
        ("jpeg-lossless", "dcmcjpeg", "+e1", "-xs"),
    ];
    for (name, tool, option, proposal) in forms {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("instance.dcm");
        let converted = Command::new(tool)
            .arg(option)
            .arg(example)
            .arg(&file)
            .status()
            .unwrap_or_else(|e| panic!("{tool} (DCMTK) runs: {e}"));
        assert!(converted.success(), "{tool} {option}");
        let mut listener = Listener::start(&[]);
        send(storescu(listener.port, &dir, &[proposal]));
        let out = listener.stop();
        let placed = files_under(&listener.data());
        assert_eq!(
            placed.len(),
            1,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sent = std::fs::read(&file).unwrap();
        let received = std::fs::read(&placed[0]).unwrap();
        assert!(
            data_set(&received) == data_set(&sent),
            "{name}: not bit for bit"
        );
        assert_eq!(json_files(&listener.log()).len(), 6, "{name}: records");
    }
}

#[test]
fn an_echo_a_refused_context_and_a_bad_instance_leave_it_serving() {
    let mut listener = Listener::start(&[]);
    let echo = Command::new("echoscu")
        .args(["-aec", AE_TITLE, "127.0.0.1"])
        .arg(listener.port.to_string())
        .output()
        .expect("echoscu (DCMTK) runs");
    assert!(echo.status.success(), "{echo:?}");

    // Modality Worklist FIND: not served; the association is accepted with
    // that context rejected, and released.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", listener.port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    use std::io::Write;
    stream
        .write_all(&raw_scu::associate_rq(AE_TITLE, "1.2.840.10008.5.1.4.31"))
        .unwrap();
    let (kind, body) = raw_scu::read_pdu(&mut stream);
    assert_eq!(kind, 0x02, "the association is accepted");
    assert!(
        !raw_scu::context_accepted(&body),
        "the worklist context is accepted"
    );
    raw_scu::release(stream);

    // Garbage, then a good instance, on one association.
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let good = data_set(&example).to_vec();
    let garbage = b"This is not a DICOM data set.\n".repeat(40);
    let uid = "1.2.826.0.1.3680043.8.498.55";
    let statuses = raw_scu::send(
        listener.port,
        AE_TITLE,
        &[(uid.into(), garbage), (format!("{uid}.1"), good)],
    );
    assert_eq!(statuses, [0xC000, 0x0000], "statuses");
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 echo"), "{stderr}");
    assert!(stderr.contains("2 instances (1 failed)"), "{stderr}");
    assert_eq!(files_under(&listener.data()).len(), 1);
}

/// Several senders at once, on one patient, in several studies and
/// series, round after round: nothing is lost, every record parses, every
/// study is in the patient's StudyList.
#[test]
fn senders_at_once_lose_nothing() {
    let mut listener = Listener::start(&[]);
    send_rounds_at_once(&[listener.port]);
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("20 instances (0 failed)").count(),
        2 * STUDIES,
        "{stderr}"
    );
    assert_all_recorded(&listener.data(), &listener.log());
}

/// Two rx-listen processes on different ports sharing one data dir and
/// one log dir (replicas behind a load balancer on a shared file system),
/// the senders split between them: nothing lost, every record whole.
#[test]
fn two_listeners_sharing_their_dirs_lose_nothing() {
    let shared = tempfile::tempdir().unwrap();
    let (data, log) = (shared.path().join("data"), shared.path().join("log"));
    let mut listeners: Vec<Listener> = (0..2)
        .map(|_| Listener::start_in(Command::new(listen_path()), &data, &log, &[]))
        .collect();
    send_rounds_at_once(&listeners.iter().map(|l| l.port).collect::<Vec<_>>());
    for listener in &mut listeners {
        listener.stop();
    }
    assert_all_recorded(&data, &log);
}

/// Studies sent at once, one sender each, in [`send_rounds_at_once`].
const STUDIES: usize = 3;

/// Two rounds (the same UIDs again: re-delivery) of [`STUDIES`] storescu
/// at once, each sending one study of one patient (two series of ten
/// instances), the senders spread over `ports`.
fn send_rounds_at_once(ports: &[u16]) {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let dirs: Vec<PathBuf> = (0..STUDIES)
            .map(|study| {
                let dir = tmp.path().join(format!("round{round}-study{study}"));
                let instances = make_instances(&dir, STUDIES, 2, 10);
                // Each sender gets the instances of one study, interleaved
                // series; the UIDs are the same each round (re-delivery).
                for path in &instances {
                    let name = path.file_name().unwrap().to_string_lossy();
                    if !name.starts_with(&format!("{study}-")) {
                        std::fs::remove_file(path).unwrap();
                    }
                }
                dir
            })
            .collect();
        let senders: Vec<Running> = dirs
            .iter()
            .enumerate()
            .map(|(n, dir)| {
                let mut cmd = storescu(ports[(n + round) % ports.len()], dir, &[]);
                cmd.env("TCP_NODELAY", "1")
                    .stdin(std::process::Stdio::null());
                Running::spawn(&mut cmd)
            })
            .collect();
        for mut sender in senders {
            let out = sender.finish(PATIENCE).unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
}

/// What [`send_rounds_at_once`] sent is all placed and recorded.
fn assert_all_recorded(data: &Path, log: &Path) {
    assert_eq!(files_under(data).len(), STUDIES * 2 * 10);
    let records = json_files(log);
    let (patient, studies) = patient_studies(&records);
    assert_eq!(studies, STUDIES, "{patient}");
    assert_eq!(image_records(&records), STUDIES * 2 * 10);
}

/// On SIGTERM an association in flight finishes (within the grace
/// period): its instance, half sent when the signal came, is acknowledged
/// and placed; no new association is accepted; the exit status is 0.
#[test]
fn sigterm_lets_the_association_in_flight_finish() {
    use std::io::Write;
    let mut listener = Listener::start(&["--grace", "30"]);
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let data_set = data_set(&example).to_vec();
    let mut stream = raw_scu::associate(listener.port, AE_TITLE);
    let uid = "1.2.826.0.1.3680043.8.498.56";
    let (first, rest) = data_set.split_at(data_set.len() / 2);
    stream
        .write_all(&raw_scu::p_data(3, &raw_scu::c_store_rq(1, uid)))
        .unwrap();
    stream.write_all(&raw_scu::p_data(0, first)).unwrap();
    let pid = listener.running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The listener stops accepting at once.
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", listener.port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still accepting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(&raw_scu::p_data(2, rest)).unwrap();
    assert_eq!(raw_scu::response_status(&mut stream), 0x0000);
    raw_scu::release(stream);
    let out = listener.running.finish(PATIENCE).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(files_under(&listener.data()).len(), 1);
}

/// An association still going when the grace period ends is cut: its
/// unacknowledged instance is not placed, nothing partial is left, and
/// the exit status is 0.
#[test]
fn an_association_past_the_grace_period_is_cut_and_leaves_nothing() {
    use std::io::Write;
    let mut listener = Listener::start(&["--grace", "1"]);
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let data_set = data_set(&example).to_vec();
    let mut stream = raw_scu::associate(listener.port, AE_TITLE);
    let uid = "1.2.826.0.1.3680043.8.498.57";
    stream
        .write_all(&raw_scu::p_data(3, &raw_scu::c_store_rq(1, uid)))
        .unwrap();
    stream
        .write_all(&raw_scu::p_data(0, &data_set[..1000]))
        .unwrap();
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 instances"), "{stderr}");
    for said in [
        "stopping: 1 association(s) in flight get 1 s to finish",
        "grace period over: 1 association(s) cut",
    ] {
        assert!(stderr.contains(said), "no {said:?} in {stderr}");
    }
    let data = listener.data();
    assert!(
        !data.exists() || files_under(&data).is_empty(),
        "{:?}",
        files_under(&data)
    );
    let log = listener.log();
    assert!(!log.exists() || json_files(&log).is_empty());
}

/// A large instance streams through: rx-listen's memory stays far below
/// its size (the issue's 1 GiB run is in the README; 256 MiB here keeps
/// the test quick).
#[test]
fn a_large_instance_is_received_with_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("big.dcm");
    write_large_instance(&file, 256 << 20);
    let sent = std::fs::read(&file).unwrap();
    let mut listener = Listener::start(&[]);
    // Our raw SCU sends the data set as it is (storescu would re-encode it).
    let uid = "1.2.826.0.1.3680043.8.498.58".to_string();
    let statuses = raw_scu::send(listener.port, AE_TITLE, &[(uid, data_set(&sent).to_vec())]);
    assert_eq!(statuses, [0]);
    let peak_kib = listener.peak_rss_kib();
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(peak_kib < 64 << 10, "peak RSS {peak_kib} KiB");
    let placed = files_under(&listener.data());
    assert_eq!(placed.len(), 1, "{stderr}");
    let received = std::fs::read(&placed[0]).unwrap();
    assert!(data_set(&received) == data_set(&sent), "not bit for bit");
}

/// Each instance's file is made ready, with room for as many bytes as the
/// last one took, before it comes: a smaller instance after a larger one
/// still arrives bit for bit, and the room it did not use is given back.
#[test]
fn room_made_ahead_for_a_smaller_instance_is_given_back() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let large = tmp.path().join("large.dcm");
    write_large_instance(&large, 4 << 20);
    let examples = sag_anon_files();
    let sent: Vec<Vec<u8>> = [&large, &examples[1], &examples[2]]
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect();
    let uid = "1.2.826.0.1.3680043.8.498.59";
    let instances: Vec<(String, Vec<u8>)> = (1..)
        .zip(&sent)
        .map(|(n, bytes)| (format!("{uid}.{n}"), data_set(bytes).to_vec()))
        .collect();
    let mut listener = Listener::start(&["--fsync", "never"]);
    let statuses = raw_scu::send(listener.port, AE_TITLE, &instances);
    let out = listener.stop();
    assert_eq!(statuses, [0; 3], "{}", String::from_utf8_lossy(&out.stderr));
    let placed = files_under(&listener.data());
    assert_eq!(placed.len(), 3);
    for path in placed {
        let received = std::fs::read(&path).unwrap();
        assert!(
            sent.iter()
                .any(|bytes| data_set(bytes) == data_set(&received)),
            "{}: not bit for bit what was sent",
            path.display()
        );
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(
            allocated < received.len() as u64 + 8192,
            "{}: {allocated} bytes allocated for {}",
            path.display(),
            received.len()
        );
    }
}

/// An MR instance of the example series with `size` bytes of pixel data.
fn write_large_instance(path: &Path, size: usize) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let mut object = dicom_object::open_file(&sag_anon_files()[0]).unwrap();
    let side = ((size / 2) as f64).sqrt() as u16;
    object.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(side),
    ));
    object.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(side),
    ));
    let pixels = vec![0x5Au8; side as usize * side as usize * 2];
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(pixels),
    ));
    object.write_to_file(path).unwrap();
}
