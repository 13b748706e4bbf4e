//! Files DCMTK's dcmdump and pydicom both read, in forms that dicom-rs's
//! writer cannot make, built byte by byte: each must be placed and
//! recorded, the once-per-series record included, with bounded memory and
//! records whatever a value's length. (The public samples of the same
//! kinds are in the conformance corpus; these are our own, and each is
//! checked against dcmdump here too.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const UNDEFINED: u32 = u32::MAX;

/// How elements are written.
#[derive(Clone, Copy)]
enum Enc {
    ExplicitLe,
    ExplicitBe,
    Implicit,
}

impl Enc {
    fn u16(self, n: u16) -> [u8; 2] {
        match self {
            Enc::ExplicitBe => n.to_be_bytes(),
            _ => n.to_le_bytes(),
        }
    }

    fn u32(self, n: u32) -> [u8; 4] {
        match self {
            Enc::ExplicitBe => n.to_be_bytes(),
            _ => n.to_le_bytes(),
        }
    }

    /// An element: `vr` is ignored in implicit VR.
    fn element(self, group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut value = value.to_vec();
        if value.len() % 2 == 1 {
            value.push(if vr == b"UI" { 0 } else { b' ' });
        }
        let mut out = self.tag(group, element);
        self.length(&mut out, vr, value.len() as u32);
        out.extend(value);
        out
    }

    /// A sequence of undefined length holding `items` (each a data set's
    /// bytes), written with `vr` (SQ, or UN whose content is always
    /// implicit VR little endian), its items in `content`.
    fn sequence(
        self,
        group: u16,
        element: u16,
        vr: &[u8; 2],
        items: &[Vec<u8>],
        content: Enc,
    ) -> Vec<u8> {
        let mut out = self.tag(group, element);
        self.length(&mut out, vr, UNDEFINED);
        for item in items {
            out.extend(content.tag(0xFFFE, 0xE000));
            out.extend(content.u32(UNDEFINED));
            out.extend(item);
            out.extend(content.tag(0xFFFE, 0xE00D));
            out.extend(content.u32(0));
        }
        out.extend(content.tag(0xFFFE, 0xE0DD));
        out.extend(content.u32(0));
        out
    }

    fn tag(self, group: u16, element: u16) -> Vec<u8> {
        [self.u16(group), self.u16(element)].concat()
    }

    fn length(self, out: &mut Vec<u8>, vr: &[u8; 2], length: u32) {
        match self {
            Enc::Implicit => out.extend(self.u32(length)),
            _ if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT" | b"UC" | b"UR") => {
                out.extend(vr);
                out.extend([0, 0]);
                out.extend(self.u32(length));
            }
            _ => {
                out.extend(vr);
                out.extend(self.u16(length as u16));
            }
        }
    }

    /// The identifying elements the default layout and records use.
    fn identity(self, n: u32) -> Vec<u8> {
        [
            self.element(
                0x0008,
                0x0018,
                b"UI",
                format!("1.2.826.0.1.3680043.8.498.77.{n}").as_bytes(),
            ),
            self.element(0x0008, 0x0020, b"DA", b"20240131"),
            self.element(0x0008, 0x0060, b"CS", b"MR"),
            self.element(0x0008, 0x1030, b"LO", b"Head"),
            self.element(0x0008, 0x103E, b"LO", b"Axial"),
            self.element(0x0010, 0x0010, b"PN", b"Doe^Jane"),
            self.element(0x0010, 0x0020, b"LO", b"PID77"),
            self.element(0x0020, 0x000D, b"UI", b"1.2.826.0.1.3680043.8.498.77"),
            self.element(
                0x0020,
                0x000E,
                b"UI",
                format!("1.2.826.0.1.3680043.8.498.77.0.{n}").as_bytes(),
            ),
            self.element(0x0020, 0x0011, b"IS", b"7"),
            self.element(0x0020, 0x0013, b"IS", n.to_string().as_bytes()),
        ]
        .concat()
    }
}

/// A Part 10 file: preamble, `DICM`, a file meta group naming
/// `transfer_syntax` (none when `None`), then `data_set`.
fn part10(transfer_syntax: Option<&str>, data_set: &[u8]) -> Vec<u8> {
    let meta_enc = Enc::ExplicitLe;
    let mut group = meta_enc.element(0x0002, 0x0001, b"OB", &[0, 1]);
    group.extend(meta_enc.element(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.4"));
    if let Some(ts) = transfer_syntax {
        group.extend(meta_enc.element(0x0002, 0x0010, b"UI", ts.as_bytes()));
    }
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    out.extend(meta_enc.element(0x0002, 0x0000, b"UL", &(group.len() as u32).to_le_bytes()));
    out.extend(group);
    out.extend(data_set);
    out
}

/// Writes `bytes` as `name` in a fresh scratch dir; checks that dcmdump
/// reads it (the rule's first half) and returns its path.
fn sample(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let dcmdump = Command::new("dcmdump")
        .arg("-q")
        .arg(&path)
        .output()
        .expect("dcmdump (Debian package dcmtk) runs");
    if !dcmdump.status.success() {
        // `-q` says nothing; without it dcmdump says why.
        let why = Command::new("dcmdump").arg(&path).output().unwrap().stderr;
        let why = String::from_utf8_lossy(&why);
        let why: Vec<&str> = why.lines().filter(|l| l.starts_with("E:")).collect();
        panic!("{name}: dcmdump does not read the sample, so it proves nothing: {why:?}");
    }
    path
}

/// Repacks `src` once, storescp-style, with a log dir; it must be placed,
/// byte for byte, with its six records. Returns the series record's DICOM
/// map and stderr.
fn placed_and_recorded(src: &Path) -> (serde_json::Map<String, Value>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    let out = rx()
        .arg("--xcrdirfile")
        .arg(src)
        .arg("--datadir")
        .arg(&data)
        .arg("--logdir")
        .arg(&log)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let placed = files_under(&data);
    assert_eq!(placed.len(), 1, "{}: {stderr}", src.display());
    assert_eq!(
        std::fs::read(&placed[0]).unwrap(),
        std::fs::read(src).unwrap()
    );
    let records = json_files(&log);
    assert_eq!(records.len(), 6, "{}: {records:?}", src.display());
    let (_, series) = records
        .iter()
        .find(|(path, _)| {
            path.parent()
                .is_some_and(|p| p.to_string_lossy().ends_with("-series"))
        })
        .expect("a study-series record");
    let dicom = series.as_object().unwrap().values().next().unwrap()["DICOM"]
        .as_object()
        .unwrap()
        .clone();
    (dicom, stderr)
}

fn value<'a>(dicom: &'a serde_json::Map<String, Value>, keyword: &str) -> &'a str {
    dicom
        .get(keyword)
        .unwrap_or_else(|| panic!("{keyword} is not in the series record: {dicom:?}"))["value"]
        .as_str()
        .unwrap()
}

#[test]
fn private_sequences_of_undefined_length_in_implicit_vr_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Enc::Implicit;
    let inner = e.sequence(
        0x0009,
        0x1011,
        b"SQ",
        &[e.element(0x0009, 0x1012, b"LO", b"deep")],
        e,
    );
    let outer = e.sequence(
        0x0009,
        0x1010,
        b"SQ",
        &[inner, e.element(0x0009, 0x1013, b"LO", b"x")],
        e,
    );
    let data_set = [
        e.element(0x0008, 0x0005, b"CS", b"ISO_IR 100"),
        e.element(0x0009, 0x0010, b"LO", b"ACME 1.0"),
        outer,
        e.identity(1),
    ]
    .concat();
    let src = sample(
        tmp.path(),
        "implicit-private.dcm",
        &part10(Some(IMPLICIT_LE), &data_set),
    );
    let (dicom, _) = placed_and_recorded(&src);
    assert_eq!(value(&dicom, "PatientName"), "Doe^Jane");
    assert_eq!(value(&dicom, "InstanceNumber"), "1");
}

#[test]
fn un_sequences_of_undefined_length_are_read_in_either_byte_order() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, ts, e) in [
        ("un-le.dcm", EXPLICIT_LE, Enc::ExplicitLe),
        ("un-be.dcm", EXPLICIT_BE, Enc::ExplicitBe),
    ] {
        // ReferencedSeriesSequence as a PACS that does not know it writes
        // it: UN, undefined length, its content implicit VR little endian.
        let item = Enc::Implicit.element(0x0020, 0x000E, b"UI", b"1.2.3.4.5");
        let un = e.sequence(0x0008, 0x1115, b"UN", &[item], Enc::Implicit);
        let data_set = [
            e.element(0x0008, 0x0005, b"CS", b"ISO_IR 100"),
            un,
            e.identity(2),
        ]
        .concat();
        let src = sample(tmp.path(), name, &part10(Some(ts), &data_set));
        let (dicom, _) = placed_and_recorded(&src);
        assert_eq!(value(&dicom, "PatientID"), "PID77", "{name}");
        let sequence = value(&dicom, "ReferencedSeriesSequence");
        assert!(sequence.contains("1.2.3.4.5"), "{name}: {sequence}");
    }
}

#[test]
fn a_meta_group_without_a_transfer_syntax_is_read_from_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, e) in [
        ("no-ts-explicit.dcm", Enc::ExplicitLe),
        ("no-ts-implicit.dcm", Enc::Implicit),
    ] {
        let src = sample(tmp.path(), name, &part10(None, &e.identity(3)));
        let (dicom, stderr) = placed_and_recorded(&src);
        assert_eq!(value(&dicom, "SeriesNumber"), "7", "{name}");
        assert!(
            stderr.contains("no (valid) transfer syntax"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_nonstandard_vr_is_read_with_a_two_byte_length_and_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Enc::ExplicitLe;
    let mut data_set = e.identity(4);
    // A private element and StudyDescription (which names the study
    // directory) with two spaces for a VR.
    data_set.extend(e.element(0x0009, 0x1020, b"  ", b"odd"));
    let description = e.element(0x0008, 0x1030, b"LO", b"Head");
    let at = data_set
        .windows(description.len())
        .position(|w| w == description)
        .unwrap();
    data_set[at + 4..at + 6].copy_from_slice(b"  ");
    let src = sample(
        tmp.path(),
        "nonstandard-vr.dcm",
        &part10(Some(EXPLICIT_LE), &data_set),
    );
    let (dicom, stderr) = placed_and_recorded(&src);
    assert_eq!(value(&dicom, "StudyDescription"), "Head");
    assert!(
        stderr.contains("(0008,1030) has the nonstandard VR"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(0009,1020) has the nonstandard VR"),
        "{stderr}"
    );
}

#[test]
fn a_deflated_data_set_followed_by_trailing_bytes_is_read() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(&Enc::ExplicitLe.identity(5)).unwrap();
    let mut data_set = deflater.finish().unwrap();
    data_set.extend([0, 0, 0, 0]);
    let src = sample(
        tmp.path(),
        "deflated-trailing.dcm",
        &part10(Some(DEFLATED), &data_set),
    );
    let (dicom, _) = placed_and_recorded(&src);
    assert_eq!(value(&dicom, "InstanceNumber"), "5");
}

/// A PatientName of 40 MiB (the 300 MiB case, smaller to keep the
/// test quick; the README has the 300 MiB run): memory stays small, the
/// records do not grow with it, and the user is told the value was cut.
#[test]
fn a_huge_value_is_cut_with_bounded_memory_and_records() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Enc::Implicit;
    let name = vec![b'A'; 40 << 20];
    let data_set = [
        e.element(0x0008, 0x0018, b"UI", b"1.2.826.0.1.3680043.8.498.77.6"),
        e.element(0x0010, 0x0010, b"PN", &name),
        e.element(0x0010, 0x0020, b"LO", b"PID77"),
        e.element(0x0020, 0x000D, b"UI", b"1.2.826.0.1.3680043.8.498.77"),
        e.element(0x0020, 0x000E, b"UI", b"1.2.826.0.1.3680043.8.498.77.0.6"),
    ]
    .concat();
    drop(name);
    let src = sample(
        tmp.path(),
        "huge-name.dcm",
        &part10(Some(IMPLICIT_LE), &data_set),
    );
    drop(data_set);
    let log = tmp.path().join("log");
    let stderr = repack_under_32_mib(&src, &tmp.path().join("data"), &log);
    assert!(
        stderr.contains("element (0010,0010) cut: 65528 of its 41943040 bytes read"),
        "{stderr}"
    );
    for (path, bytes) in tree(&log) {
        assert!(
            bytes.len() < 256 << 10,
            "{} holds {} bytes",
            path.display(),
            bytes.len()
        );
    }
}

/// The worst a header can do to the record written once per series: every
/// element with a keyword, each with a large value, and sequences of tens
/// of thousands of elements. The read keeps 4 MiB at most, the sequences'
/// elements are counted, and the record is streamed out as it is printed:
/// memory stays under 32 MiB, with warnings for what was left out.
#[test]
fn a_header_built_to_exhaust_memory_does_not() {
    use dicom_core::Tag;
    use rx_repack::reading::keywords::keyword_of;
    let tmp = tempfile::tempdir().unwrap();
    let e = Enc::ExplicitLe;
    let mut data_set = e.identity(8);
    let blob: Vec<u8> = (0..=255).cycle().take(1024).collect();
    let mut keywords = 0;
    // Groups 0018 to 0026 (DCMTK refuses OB for the LUT sequences of 0028).
    for group in (0x0018..0x0028).step_by(2) {
        for element in 0..=0xFFFF_u16 {
            if keyword_of(Tag(group, element)).is_some() {
                data_set.extend(e.element(group, element, b"OB", &blob));
                keywords += 1;
            }
        }
    }
    assert!(keywords > 1000, "{keywords} keywords");
    for sequence in [0x1115, 0x1140, 0x1199, 0x1200] {
        let small: Vec<u8> = (0x1000..0x1000 + 9000)
            .flat_map(|element| e.element(0x0009, element, b"SS", &[1, 0]))
            .collect();
        data_set.extend(e.sequence(0x0008, sequence, b"SQ", &[small.clone(), small], e));
    }
    let src = sample(
        tmp.path(),
        "exhausting.dcm",
        &part10(Some(EXPLICIT_LE), &data_set),
    );
    let log = tmp.path().join("log");
    let stderr = repack_under_32_mib(&src, &tmp.path().join("data"), &log);
    assert!(stderr.contains("left out of the records"), "{stderr}");
}

/// Runs rx-repack storescp-style on `src` under GNU time, which must
/// succeed in under 32 MiB of peak RSS: its stderr.
fn repack_under_32_mib(src: &Path, data: &Path, log: &Path) -> String {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-kib=%M"])
        .arg(rx_path())
        .arg("--xcrdirfile")
        .arg(src)
        .arg("--datadir")
        .arg(data)
        .arg("--logdir")
        .arg(log)
        .output()
        .expect("GNU time (/usr/bin/time) runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-kib="))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("GNU time's peak RSS");
    assert!(peak_kib < 32 << 10, "peak RSS {peak_kib} KiB");
    stderr
}
