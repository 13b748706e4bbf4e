//! Odd, broken and hostile files, run through the real binary once per file
//! as storescp runs it. Each file must either be placed (exit 0, the copy
//! byte-identical to the source, inside the data dir, every name at most
//! 255 bytes; with --cleanup the source gone) or refused cleanly (non-zero
//! exit, one line on stderr naming the file, no panic, the source and the
//! data dir untouched). Nothing may appear outside the data dir, and no two
//! different files may end at the same path. The binary runs with 1 GiB of
//! address space, so a file that makes it allocate wildly fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use walkdir::WalkDir;

/// Retired, but PACS still send it.
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

const UID_ROOT: &str = "1.2.826.0.1.3680043.8.498.4242";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.4242.3";

/// The destination's components, relative to the data dir.
const ROOT: usize = 0;
const STUDY: usize = 1;
const SERIES: usize = 2;
const IMAGE: usize = 3;

/// Names of the base instance under the default templates.
const BASE_ROOT: &str = "PID1-Doe_John-19700101";
const BASE_STUDY: &str = "Head_CT-ACC1-20240131";
const BASE_SERIES_START: &str = "00003-Axial_5mm-";

/// Templates that put single values into whole path components, so hostile
/// values are not softened by the `-` joining the default ones.
const BARE_TEMPLATES: [&str; 8] = [
    "--rootDirTemplate",
    "%PatientID",
    "--studyDirTemplate",
    "%StudyDescription",
    "--seriesDirTemplate",
    "%SeriesDescription",
    "--imageTemplate",
    "%SOPInstanceUID",
];

// ---------------------------------------------------------------------------
// Making DICOM files

/// A small, valid CT instance with every element the default templates use;
/// `n` makes its SOPInstanceUID and InstanceNumber.
fn instance(n: u32) -> InMemDicomObject {
    let text = [
        (
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::CT_IMAGE_STORAGE.to_string(),
        ),
        (tags::SOP_INSTANCE_UID, VR::UI, sop_uid(n)),
        (tags::STUDY_DATE, VR::DA, "20240131".into()),
        (tags::MODALITY, VR::CS, "CT".into()),
        (tags::ACCESSION_NUMBER, VR::SH, "ACC1".into()),
        (tags::STUDY_DESCRIPTION, VR::LO, "Head CT".into()),
        (tags::SERIES_DESCRIPTION, VR::LO, "Axial 5mm".into()),
        (tags::PATIENT_NAME, VR::PN, "Doe^John".into()),
        (tags::PATIENT_ID, VR::LO, "PID1".into()),
        (tags::PATIENT_BIRTH_DATE, VR::DA, "19700101".into()),
        (tags::STUDY_INSTANCE_UID, VR::UI, format!("{UID_ROOT}.2")),
        (tags::SERIES_INSTANCE_UID, VR::UI, SERIES_UID.into()),
        (tags::SERIES_NUMBER, VR::IS, "3".into()),
        (tags::INSTANCE_NUMBER, VR::IS, n.to_string()),
        (
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2".into(),
        ),
    ];
    let image = [
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::ROWS, 4),
        (tags::COLUMNS, 4),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 12),
        (tags::HIGH_BIT, 11),
        (tags::PIXEL_REPRESENTATION, 0),
    ];
    let mut obj = InMemDicomObject::new_empty();
    for (tag, vr, value) in text {
        obj.put(DataElement::new(tag, vr, value));
    }
    for (tag, value) in image {
        obj.put(DataElement::new(
            tag,
            VR::US,
            PrimitiveValue::from(value as u16),
        ));
    }
    let pixels: Vec<u16> = (0..16).map(|i| i * 256 + n as u16).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    obj
}

fn sop_uid(n: u32) -> String {
    format!("{UID_ROOT}.3.{n}")
}

/// The default image name of `instance(n)`.
fn image_name(n: u32) -> String {
    format!("{n:04}-{}.dcm", sop_uid(n))
}

/// Builder-style edits of a data set.
trait Edit: Sized {
    fn set(self, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> Self;
    /// Sets a text element to exactly these bytes (no character set
    /// conversion by the writer).
    fn raw(self, tag: Tag, vr: VR, bytes: &[u8]) -> Self;
    fn without(self, tag: Tag) -> Self;
}

impl Edit for InMemDicomObject {
    fn set(mut self, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> Self {
        self.put(DataElement::new(tag, vr, value.into()));
        self
    }

    fn raw(self, tag: Tag, vr: VR, bytes: &[u8]) -> Self {
        let mut bytes = bytes.to_vec();
        if bytes.len() % 2 == 1 {
            bytes.push(if vr == VR::UI { 0 } else { b' ' });
        }
        self.set(tag, vr, PrimitiveValue::U8(bytes.into()))
    }

    fn without(mut self, tag: Tag) -> Self {
        self.remove_element(tag);
        self
    }
}

/// How a data set is framed in its file.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// 128-byte preamble, `DICM`, file meta group: the standard form.
    Standard,
    /// `DICM` and the file meta group, no preamble.
    NoPreamble,
    /// The data set alone, no `DICM` and no file meta group.
    Bare,
}

/// The bytes of a file holding `obj` in transfer syntax `ts`. The file meta
/// group repeats `obj`'s SOPInstanceUID if that is a valid UID, else it is
/// empty (dicom-rs refuses files with other characters there; see
/// [`hostile_cases`]).
fn encode(obj: &InMemDicomObject, ts: &str, frame: Frame) -> Vec<u8> {
    encode_with_meta_uid(obj, ts, frame, &valid_sop_uid(obj))
}

fn valid_sop_uid(obj: &InMemDicomObject) -> String {
    let uid = obj
        .get(tags::SOP_INSTANCE_UID)
        .and_then(|element| element.value().primitive())
        .map(|value| String::from_utf8_lossy(&value.to_bytes()).into_owned())
        .unwrap_or_default();
    let uid = uid.trim_end_matches(['\0', ' ']);
    if uid.chars().all(|c| c == '.' || c.is_ascii_digit()) {
        uid.to_string()
    } else {
        String::new()
    }
}

/// [`encode`] with MediaStorageSOPInstanceUID `meta_uid`.
fn encode_with_meta_uid(obj: &InMemDicomObject, ts: &str, frame: Frame, meta_uid: &str) -> Vec<u8> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(meta_uid)
        .build()
        .expect("the file meta group builds");
    let file = obj.clone().with_exact_meta(meta);
    let fail = |e: dicom_object::WriteError| panic!("dicom-rs cannot write {ts} {frame:?}: {e}");
    let mut bytes = Vec::new();
    match frame {
        Frame::Standard => file.write_all(&mut bytes).unwrap_or_else(fail),
        Frame::NoPreamble => {
            bytes.extend_from_slice(b"DICM");
            file.write_meta(&mut bytes).unwrap_or_else(fail);
            file.write_dataset(&mut bytes).unwrap_or_else(fail);
        }
        Frame::Bare => file.write_dataset(&mut bytes).unwrap_or_else(fail),
    }
    bytes
}

/// The standard file of `obj` in explicit VR little endian.
fn standard(obj: &InMemDicomObject) -> Vec<u8> {
    encode(obj, uids::EXPLICIT_VR_LITTLE_ENDIAN, Frame::Standard)
}

/// `obj` with JPEG-like encapsulated pixel data (no real codec needed: only
/// the framing matters).
fn encapsulated(obj: InMemDicomObject) -> InMemDicomObject {
    let fragment = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
    ];
    let mut obj = obj.set(tags::BITS_ALLOCATED, VR::US, 8u16);
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(Vec::<u32>::new(), vec![fragment]),
    ));
    obj
}

/// Deterministic noise (xorshift), so a failure can be replayed.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// `bytes` cut in the middle of the first occurrence of `marker`.
fn cut_inside(bytes: &[u8], marker: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker is in the file");
    bytes[..at + marker.len() / 2].to_vec()
}

// ---------------------------------------------------------------------------
// Cases and what must come of them

/// One input file (or thing in its place) and what must come of it.
struct Case {
    name: String,
    input: Input,
    expect: Expect,
    /// How often storescp hands the same file over.
    deliveries: usize,
}

enum Input {
    File(Vec<u8>),
    Directory,
    Absent,
}

enum Expect {
    Placed(Vec<Check>),
    Refused,
    /// Either outcome is right, as long as it is clean.
    Either,
}

/// Something the placed file's destination or NDJSON record must show.
enum Check {
    /// Component `.0` of the destination (relative to the data dir).
    Name(usize, Want),
    /// The NDJSON record's PatientID (None: absent).
    PatientId(Option<String>),
}

enum Want {
    Is(String),
    StartsWith(String),
    Len(usize),
}

impl Want {
    fn accepts(&self, name: &str) -> bool {
        match self {
            Want::Is(want) => name == want,
            Want::StartsWith(want) => name.starts_with(want.as_str()),
            Want::Len(want) => name.len() == *want,
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Is(want) => write!(f, "{want:?}"),
            Want::StartsWith(want) => write!(f, "something starting with {want:?}"),
            Want::Len(want) => write!(f, "a name of {want} bytes"),
        }
    }
}

impl Case {
    fn placed(name: &str, bytes: Vec<u8>) -> Case {
        Case {
            name: name.into(),
            input: Input::File(bytes),
            expect: Expect::Placed(Vec::new()),
            deliveries: 1,
        }
    }

    fn refused(name: &str, input: Input) -> Case {
        Case {
            name: name.into(),
            input,
            expect: Expect::Refused,
            deliveries: 1,
        }
    }

    fn either(name: &str, bytes: Vec<u8>) -> Case {
        Case {
            expect: Expect::Either,
            ..Case::placed(name, bytes)
        }
    }

    fn check(mut self, check: Check) -> Case {
        match &mut self.expect {
            Expect::Placed(checks) => checks.push(check),
            _ => panic!("{}: only placed files have a known destination", self.name),
        }
        self
    }

    fn is(self, level: usize, name: &str) -> Case {
        self.check(Check::Name(level, Want::Is(name.into())))
    }

    fn starts(self, level: usize, prefix: &str) -> Case {
        self.check(Check::Name(level, Want::StartsWith(prefix.into())))
    }

    fn len(self, level: usize, len: usize) -> Case {
        self.check(Check::Name(level, Want::Len(len)))
    }

    fn patient_id(self, id: Option<&str>) -> Case {
        self.check(Check::PatientId(id.map(String::from)))
    }

    /// The default layout of the base instance.
    fn base_layout(self, n: u32) -> Case {
        self.is(ROOT, BASE_ROOT)
            .is(STUDY, BASE_STUDY)
            .starts(SERIES, BASE_SERIES_START)
            .is(IMAGE, &image_name(n))
            .patient_id(Some("PID1"))
    }

    fn delivered_twice(mut self) -> Case {
        self.deliveries = 2;
        self
    }
}

/// Every transfer syntax a PACS sends, and every framing of a file.
fn syntax_cases() -> Vec<Case> {
    use uids::{EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT};
    let forms = [
        ("implicit-le.dcm", IMPLICIT, Frame::Standard),
        ("explicit-le.dcm", EXPLICIT, Frame::Standard),
        ("explicit-be.dcm", EXPLICIT_VR_BIG_ENDIAN, Frame::Standard),
        (
            "deflated.dcm",
            uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
            Frame::Standard,
        ),
        ("no-preamble.dcm", EXPLICIT, Frame::NoPreamble),
        ("no-preamble-implicit.dcm", IMPLICIT, Frame::NoPreamble),
        ("bare-implicit-le.dcm", IMPLICIT, Frame::Bare),
        ("bare-explicit-le.dcm", EXPLICIT, Frame::Bare),
        ("bare-explicit-be.dcm", EXPLICIT_VR_BIG_ENDIAN, Frame::Bare),
    ];
    let mut cases: Vec<Case> = (101..)
        .zip(forms)
        .map(|(n, (name, ts, frame))| {
            Case::placed(name, encode(&instance(n), ts, frame)).base_layout(n)
        })
        .collect();
    let jpeg = encapsulated(instance(120));
    cases.push(
        Case::placed(
            "jpeg-baseline.dcm",
            encode(&jpeg, uids::JPEG_BASELINE8_BIT, Frame::Standard),
        )
        .base_layout(120),
    );
    cases.push(
        Case::placed("redelivered.dcm", standard(&instance(121)))
            .base_layout(121)
            .delivered_twice(),
    );
    cases
}

/// A non-ASCII PatientName and PatientID in character set `charset`, given
/// as the bytes the file holds; `decoded_id` is PatientID as pydicom reads it.
fn charset_case(
    name: &str,
    n: u32,
    charset: &str,
    patient_name: &[u8],
    patient_id: &[u8],
    decoded_id: &str,
) -> Case {
    let obj = instance(n)
        .set(tags::SPECIFIC_CHARACTER_SET, VR::CS, charset)
        .raw(tags::PATIENT_NAME, VR::PN, patient_name)
        .raw(tags::PATIENT_ID, VR::LO, patient_id);
    Case::placed(name, standard(&obj))
        .patient_id(Some(decoded_id))
        .is(STUDY, BASE_STUDY)
        .is(IMAGE, &image_name(n))
}

fn charset_cases() -> Vec<Case> {
    vec![
        charset_case(
            "latin1.dcm",
            201,
            "ISO_IR 100",
            b"M\xfcller^Hans",
            b"M\xfcller",
            "Müller",
        )
        .is(ROOT, "M_ller-M_ller_Hans-19700101"),
        charset_case(
            "utf8.dcm",
            202,
            "ISO_IR 192",
            "Müller^Hans".as_bytes(),
            "Łódź".as_bytes(),
            "Łódź",
        )
        .is(ROOT, "_d_-M_ller_Hans-19700101"),
        charset_case(
            "cyrillic.dcm",
            203,
            "ISO_IR 144",
            b"\xb8\xd2\xd0\xdd\xda\xde\xd2^\xb0\xdd\xd4\xe0\xd5\xd9",
            b"ID\xb8\xd2",
            "IDИв",
        )
        .is(ROOT, "ID_-_-19700101"),
        charset_case(
            "gb18030.dcm",
            204,
            "GB18030",
            b"Wang^XiaoDong=\xCD\xF5^\xD0\xA1\xB6\xAB",
            b"\xCD\xF5X",
            "王X",
        )
        .is(ROOT, "_X-Wang_XiaoDong_-19700101"),
        // Latin-1 bytes labelled UTF-8, as some systems send them: pydicom
        // replaces the bad byte by U+FFFD.
        charset_case(
            "utf8-invalid.dcm",
            206,
            "ISO_IR 192",
            b"M\xfcller^Hans",
            b"M\xfcller",
            "M\u{FFFD}ller",
        )
        .is(ROOT, "M_ller-M_ller_Hans-19700101"),
        // pydicom falls back to the default (latin-1), as dicom-rs does.
        charset_case(
            "unknown-charset.dcm",
            207,
            "ISO_IR 999",
            b"M\xfcller^Hans",
            b"M\xfcller",
            "Müller",
        )
        .is(ROOT, "M_ller-M_ller_Hans-19700101"),
        // The usual Japanese form: first value empty (ASCII), code
        // extensions switched by escape sequences.
        charset_case(
            "iso2022-jp.dcm",
            205,
            "\\ISO 2022 IR 87",
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B",
            b"J\x1b$B;3ED\x1b(B",
            "J山田",
        )
        .is(ROOT, "J_-Yamada_Tarou_-19700101"),
    ]
}

fn missing_cases() -> Vec<Case> {
    // Two different instances without SOPInstanceUID and with the same
    // InstanceNumber: the same name but for a content hash.
    let no_sop = |comment: &str| {
        instance(303)
            .without(tags::SOP_INSTANCE_UID)
            .set(tags::IMAGE_COMMENTS, VR::LT, comment)
    };
    let sop_class_only = InMemDicomObject::from_element_iter([DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::CT_IMAGE_STORAGE,
    )]);
    vec![
        Case::placed(
            "no-patient-id.dcm",
            standard(&instance(301).without(tags::PATIENT_ID)),
        )
        .is(ROOT, "PatientID-Doe_John-19700101")
        .patient_id(None),
        Case::placed(
            "no-series-number.dcm",
            standard(&instance(302).without(tags::SERIES_NUMBER)),
        )
        .starts(SERIES, "SeriesNumber-Axial_5mm-"),
        Case::placed("no-sop-a.dcm", standard(&no_sop("first")))
            .starts(IMAGE, "0303-SOPInstanceUID-")
            .delivered_twice(),
        Case::placed("no-sop-b.dcm", standard(&no_sop("second")))
            .starts(IMAGE, "0303-SOPInstanceUID-")
            .delivered_twice(),
        Case::placed("sop-class-only.dcm", standard(&sop_class_only))
            .is(ROOT, "PatientID-PatientName-PatientBirthDate")
            .is(STUDY, "StudyDescription-AccessionNumber-StudyDate")
            .starts(SERIES, "SeriesNumber-SeriesDescription-")
            .starts(IMAGE, "InstanceNumber-SOPInstanceUID-"),
    ]
}

/// `instance(n)` with one element holding exactly `value`.
fn with_value(n: u32, tag: Tag, vr: VR, value: &[u8]) -> InMemDicomObject {
    instance(n).raw(tag, vr, value)
}

fn hostile_cases() -> Vec<Case> {
    let long = |c: char, len: usize| c.to_string().repeat(len);
    let long_uid = format!("{UID_ROOT}.{}", "9".repeat(64 - UID_ROOT.len() - 1));
    let id = |name: &str, n: u32, value: &[u8]| {
        Case::placed(
            name,
            standard(&with_value(n, tags::PATIENT_ID, VR::LO, value)),
        )
    };
    let sop = |name: &str, obj: InMemDicomObject| {
        Case::placed(name, standard(&obj))
            .is(ROOT, BASE_ROOT)
            .starts(SERIES, BASE_SERIES_START)
    };
    let sop_uid = |n: u32, value: &[u8]| with_value(n, tags::SOP_INSTANCE_UID, VR::UI, value);
    vec![
        id("id-dotdot.dcm", 401, b"..").is(ROOT, "..-Doe_John-19700101"),
        id("id-up-up.dcm", 402, b"../../x").is(ROOT, ".._.._x-Doe_John-19700101"),
        id("id-slash.dcm", 403, b"a/b").is(ROOT, "a_b-Doe_John-19700101"),
        id("id-nul.dcm", 404, b"ab\0cd")
            .is(ROOT, "ab_cd-Doe_John-19700101")
            .patient_id(Some("ab\0cd")),
        id("id-backslash.dcm", 405, b"a\\b").is(ROOT, "_a_b_-Doe_John-19700101"),
        id("id-blank.dcm", 406, b"    ").is(ROOT, "-Doe_John-19700101"),
        id("id-utf8-undeclared.dcm", 407, "Jürgen".as_bytes()).is(ROOT, "J_rgen-Doe_John-19700101"),
        Case::placed(
            "max-length.dcm",
            standard(
                &instance(408)
                    .set(tags::PATIENT_ID, VR::LO, long('P', 64))
                    .set(tags::PATIENT_NAME, VR::PN, long('N', 64))
                    .set(tags::STUDY_DESCRIPTION, VR::LO, long('S', 64))
                    .set(tags::SERIES_DESCRIPTION, VR::LO, long('D', 64))
                    .set(tags::SOP_INSTANCE_UID, VR::UI, long_uid.as_str()),
            ),
        )
        .is(
            ROOT,
            &format!("{}-{}-19700101", long('P', 64), long('N', 64)),
        )
        .is(IMAGE, &format!("0408-{long_uid}.dcm")),
        Case::placed(
            "over-length.dcm",
            standard(
                &instance(409)
                    .set(tags::PATIENT_NAME, VR::PN, long('N', 1000))
                    .set(tags::STUDY_DESCRIPTION, VR::LO, long('S', 300))
                    .set(tags::SERIES_DESCRIPTION, VR::LO, long('D', 2000))
                    .set(
                        tags::SOP_INSTANCE_UID,
                        VR::UI,
                        format!("1.{}", long('2', 400)),
                    ),
            ),
        )
        .starts(ROOT, "PID1-NNNN")
        .len(ROOT, 255)
        .len(STUDY, 255)
        .len(SERIES, 255)
        .starts(IMAGE, "0409-1.222")
        .len(IMAGE, 255),
        Case::placed(
            "series-path.dcm",
            standard(&with_value(
                410,
                tags::SERIES_DESCRIPTION,
                VR::LO,
                b"a\nb/../../c",
            )),
        )
        .starts(SERIES, "00003-a_b_.._.._c-"),
        sop("sop-up-up.dcm", sop_uid(411, b"../../evil")).is(IMAGE, "0411-.._.._evil.dcm"),
        // Sanitises to the name of the previous one: another instance under
        // the same name, which must not replace it.
        sop("sop-lookalike.dcm", sop_uid(411, b".._.._evil")).starts(IMAGE, "0411-.._.._evil"),
        sop("sop-slash.dcm", sop_uid(412, b"/")).is(IMAGE, "0412-_.dcm"),
        // Present but empty: two different instances must not replace each
        // other either.
        sop("sop-empty-a.dcm", sop_uid(413, b"")).starts(IMAGE, "0413-"),
        sop(
            "sop-empty-b.dcm",
            sop_uid(413, b"").set(tags::IMAGE_COMMENTS, VR::LT, "another instance"),
        )
        .starts(IMAGE, "0413-"),
        // The same in the file meta group too: dicom-rs refuses such
        // a meta group; px-repack (pydicom) reads the file.
        Case::either(
            "sop-up-up-in-meta.dcm",
            encode_with_meta_uid(
                &sop_uid(414, b"../../evil"),
                uids::EXPLICIT_VR_LITTLE_ENDIAN,
                Frame::Standard,
                "../../evil",
            ),
        ),
    ]
}

/// Hostile values filling whole components under [`BARE_TEMPLATES`]:
/// PatientID, StudyDescription, SeriesDescription, SOPInstanceUID.
fn bare_template_cases() -> Vec<Case> {
    let case = |name: &str, n: u32, [id, study, series, sop]: [&[u8]; 4]| {
        let obj = instance(n)
            .raw(tags::PATIENT_ID, VR::LO, id)
            .raw(tags::STUDY_DESCRIPTION, VR::LO, study)
            .raw(tags::SERIES_DESCRIPTION, VR::LO, series)
            .raw(tags::SOP_INSTANCE_UID, VR::UI, sop);
        Case::placed(name, standard(&obj))
    };
    vec![
        case("dots.dcm", 701, [b"..", b".", b"", b"../../evil"])
            .is(ROOT, "_..")
            .is(STUDY, "_.")
            .is(SERIES, "_")
            .is(IMAGE, ".._.._evil"),
        case("slashes.dcm", 702, [b"../../x", b"/", b"....", b"."])
            .is(ROOT, ".._.._x")
            .is(STUDY, "_")
            .is(SERIES, "_....")
            .is(IMAGE, "_."),
        case(
            "long.dcm",
            703,
            [&[b'P'; 300], b"/etc/passwd", b"\0", b".."],
        )
        .starts(ROOT, "PPPP")
        .len(ROOT, 255)
        .is(STUDY, "_etc_passwd")
        .is(SERIES, "_")
        .is(IMAGE, "_.."),
    ]
}

/// A length no file of these tests comes near (4 GiB).
const BOGUS_LENGTH: u32 = 0xFFFF_FFF0;

/// Where the 4-byte length sits in an element header.
const IMPLICIT_LENGTH_AT: usize = 4;
/// The same in explicit VR, for OB, UN, UT and the like.
const EXPLICIT_LONG_LENGTH_AT: usize = 8;

/// Little-endian `bytes` whose data set element `tag` claims [`BOGUS_LENGTH`]
/// (its 4-byte length is `length_at` bytes into the element).
fn with_bogus_length(bytes: &[u8], tag: Tag, length_at: usize) -> Vec<u8> {
    let mut header = tag.group().to_le_bytes().to_vec();
    header.extend(tag.element().to_le_bytes());
    let at = 132
        + bytes[132..]
            .windows(4)
            .position(|w| w == header)
            .expect("the element is in the file");
    let mut out = bytes.to_vec();
    out[at + length_at..at + length_at + 4].copy_from_slice(&BOGUS_LENGTH.to_le_bytes());
    out
}

/// Files that claim an element of 4 GiB a few bytes into the file.
fn bogus_length_cases() -> Vec<Case> {
    let implicit = encode(
        &instance(801),
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
        Frame::Standard,
    );
    let private = instance(802)
        .set(Tag(0x0009, 0x0010), VR::LO, "ODD FILES")
        .set(
            Tag(0x0009, 0x1001),
            VR::OB,
            PrimitiveValue::U8(vec![1, 2, 3, 4].into()),
        );
    let text = with_bogus_length(&implicit, tags::PATIENT_NAME, IMPLICIT_LENGTH_AT);
    let binary = with_bogus_length(
        &standard(&private),
        Tag(0x0009, 0x1001),
        EXPLICIT_LONG_LENGTH_AT,
    );
    vec![
        Case::refused("bogus-text-length.dcm", Input::File(text)),
        Case::refused("bogus-binary-length.dcm", Input::File(binary)),
    ]
}

fn broken_cases() -> Vec<Case> {
    let valid = standard(&instance(501));
    let bare = encode(&instance(502), uids::IMPLICIT_VR_LITTLE_ENDIAN, Frame::Bare);
    // Cut after the elements a per-file call decodes (group 0020 ends
    // them): refused all the same, before anything is placed.
    let commented = instance(503).set(
        tags::IMAGE_COMMENTS,
        VR::LT,
        "a comment after the elements the layout reads",
    );
    let cut_late = cut_inside(&standard(&commented), b"a comment after");
    // Cut in the image data, as by a sender or disk that gave up: the
    // header is whole, so only the image data's own framing tells.
    let in_pixels = valid[..valid.len() - 3].to_vec();
    let jpeg = encode(
        &encapsulated(instance(504)),
        uids::JPEG_BASELINE8_BIT,
        Frame::Standard,
    );
    // The file ends with the last fragment, then the 8-byte delimiter.
    let in_fragment = jpeg[..jpeg.len() - 8 - 3].to_vec();
    let without_delimiter = jpeg[..jpeg.len() - 8].to_vec();
    let mut dicm_then_noise = vec![0; 128];
    dicm_then_noise.extend(b"DICM");
    dicm_then_noise.extend(noise(4096, 7));
    let file = |name: &str, bytes: Vec<u8>| Case::refused(name, Input::File(bytes));
    vec![
        file("empty.dcm", Vec::new()),
        file("cut-in-header.dcm", cut_inside(&valid, b"Doe^John")),
        file("cut-in-meta.dcm", valid[..150].to_vec()),
        file("cut-after-the-wanted-elements.dcm", cut_late),
        file("cut-in-pixel-data.dcm", in_pixels),
        file("cut-in-a-fragment.dcm", in_fragment),
        file("cut-before-the-fragments-end.dcm", without_delimiter),
        file("magic-only.dcm", valid[..132].to_vec()),
        file("cut-bare.dcm", cut_inside(&bare, b"Doe^John")),
        file("noise.dcm", noise(4096, 0x9E37_79B9_7F4A_7C15)),
        file("dicm-then-noise.dcm", dicm_then_noise),
        file("text.dcm", b"This is not a DICOM file.\n".repeat(40)),
        Case::refused("a-directory.dcm", Input::Directory),
        Case::refused("vanished.dcm", Input::Absent),
    ]
}

/// 5120² 16-bit pixels: 50 MiB of pixel data.
fn huge_case() -> Case {
    const SIDE: u16 = 5120;
    let pixels = vec![0x5A_u8; usize::from(SIDE) * usize::from(SIDE) * 2];
    let obj = instance(601)
        .set(tags::ROWS, VR::US, SIDE)
        .set(tags::COLUMNS, VR::US, SIDE)
        .set(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U8(pixels.into()));
    Case::placed("huge.dcm", standard(&obj)).base_layout(601)
}

// ---------------------------------------------------------------------------
// Running the binary and checking what it did

/// Address space the binary may use: ample, as it never holds pixel data in
/// memory, yet far below what a bogus element length could make it take.
const MEMORY_LIMIT_KIB: u64 = 1 << 20;

/// A scratch tree holding storescp's inbox and the data dir, the latter
/// nested so that anything escaping it still lands inside the sandbox.
struct Sandbox {
    dir: tempfile::TempDir,
    inbox: PathBuf,
    datadir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let inbox = dir.path().join("incoming");
        let datadir = dir.path().join("a/b/c/data");
        fs::create_dir_all(&inbox).unwrap();
        fs::create_dir_all(&datadir).unwrap();
        Sandbox {
            dir,
            inbox,
            datadir,
        }
    }

    fn source(&self, case: &Case) -> PathBuf {
        self.inbox.join(&case.name)
    }

    /// Puts the case's input in the inbox, as storescp does.
    fn receive(&self, case: &Case) {
        let path = self.source(case);
        match &case.input {
            Input::File(bytes) => fs::write(path, bytes).unwrap(),
            Input::Directory => fs::create_dir_all(path).unwrap(),
            Input::Absent => {}
        }
    }

    /// Runs rx-repack on the case's input, as storescp's `--exec-on-reception`
    /// does, with at most [`MEMORY_LIMIT_KIB`] of address space.
    fn repack(&self, case: &Case, cleanup: bool, extra: &[&str]) -> Output {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(crate::common::rx_path())
            .arg("--xcrdir")
            .arg(&self.inbox)
            .arg("--xcrfile")
            .arg(&case.name)
            .arg("--datadir")
            .arg(&self.datadir)
            .arg("--log-ndjson")
            .args(extra);
        if cleanup {
            cmd.arg("--cleanup");
        }
        cmd.output().expect("rx-repack runs")
    }
}

/// Name, kind, size and time of everything under `root`: what "nothing was
/// written" compares.
type Listing = BTreeMap<PathBuf, (bool, u64, Option<SystemTime>)>;

fn listing(root: &Path) -> Listing {
    walk(root)
        .into_iter()
        .map(|path| {
            let meta = fs::symlink_metadata(&path).unwrap();
            (path, (meta.is_dir(), meta.len(), meta.modified().ok()))
        })
        .collect()
}

/// Every path under `root` (not `root` itself), directories included.
fn walk(root: &Path) -> Vec<PathBuf> {
    WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .collect()
}

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// What the run printed, for messages (a backtrace cut short).
fn printed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let more = match lines.len() {
        0..=3 => String::new(),
        n => format!(" (and {} more lines)", n - 3),
    };
    format!(
        "{}, stdout {:?}, stderr {:?}{more}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        lines[..lines.len().min(3)].join("\n"),
    )
}

/// The single NDJSON record the run printed.
fn record(out: &Output) -> Result<serde_json::Value, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    ensure!(lines.len() == 1, "not one NDJSON line: {}", printed(out));
    serde_json::from_str(lines[0]).map_err(|e| format!("bad NDJSON ({e}): {}", printed(out)))
}

/// Checks one run on a file that must be placed.
fn check_placed(
    sandbox: &Sandbox,
    case: &Case,
    checks: &[Check],
    cleanup: bool,
    out: &Output,
) -> Result<(), String> {
    let Input::File(bytes) = &case.input else {
        unreachable!("only files can be placed")
    };
    ensure!(out.status.success(), "not placed: {}", printed(out));
    let record = record(out)?;
    let dst = PathBuf::from(record["dst"].as_str().ok_or("no dst in the record")?);
    let components = components_in(&sandbox.datadir, &dst)?;
    ensure!(
        fs::symlink_metadata(&dst).is_ok_and(|meta| meta.is_file()),
        "{} is not a regular file",
        dst.display()
    );
    ensure!(
        fs::read(&dst).ok().as_ref() == Some(bytes),
        "{} is not byte-identical to the source",
        dst.display()
    );
    ensure!(
        record["size"].as_u64() == Some(bytes.len() as u64),
        "size {} in the record, the file has {} bytes",
        record["size"],
        bytes.len()
    );
    let source = fs::read(sandbox.source(case)).ok();
    if cleanup {
        ensure!(source.is_none(), "--cleanup left the source in place");
    } else {
        ensure!(source.as_ref() == Some(bytes), "the source changed");
    }
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|check| match check {
            Check::Name(level, want) => (!want.accepts(&components[*level])).then(|| {
                format!(
                    "component {level} of {} is {:?}, want {want}",
                    dst.display(),
                    components[*level]
                )
            }),
            Check::PatientId(want) => {
                let got = record.get("PatientID");
                (got.and_then(|v| v.as_str()) != want.as_deref())
                    .then(|| format!("PatientID {got:?} in the record, want {want:?}"))
            }
        })
        .collect();
    ensure!(failed.is_empty(), "{}", failed.join("; "));
    Ok(())
}

/// Where the run says it placed the file.
fn reported_dst(out: &Output) -> Option<PathBuf> {
    let record = record(out).ok()?;
    record["dst"].as_str().map(PathBuf::from)
}

/// The four names (root, study, series, image) of `dst` below `datadir`,
/// each a plain name of at most 255 bytes.
fn components_in(datadir: &Path, dst: &Path) -> Result<Vec<String>, String> {
    let relative = dst
        .strip_prefix(datadir)
        .map_err(|_| format!("{} is not inside the data dir", dst.display()))?;
    let names = relative
        .components()
        .map(|component| match component {
            Component::Normal(name) if name.len() <= 255 => Ok(name.to_string_lossy().into()),
            other => Err(format!("{} has component {other:?}", dst.display())),
        })
        .collect::<Result<Vec<String>, String>>()?;
    ensure!(
        names.len() == 4,
        "{} is not root/study/series/image",
        relative.display()
    );
    Ok(names)
}

/// Checks one run on a file that must be refused: a clean error, and
/// nothing touched.
fn check_refused(
    sandbox: &Sandbox,
    case: &Case,
    out: &Output,
    before: &Listing,
) -> Result<(), String> {
    ensure!(!out.status.success(), "accepted: {}", printed(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let source = sandbox.source(case);
    ensure!(
        stderr.lines().count() == 1 && stderr.contains(&source.display().to_string()),
        "stderr is not one line naming {}: {}",
        source.display(),
        printed(out)
    );
    let record = record(out)?;
    ensure!(
        record["dst"].is_null() && record["error"].is_string(),
        "the record is not an error: {record}"
    );
    let untouched = match &case.input {
        Input::File(bytes) => fs::read(&source).ok().as_ref() == Some(bytes),
        Input::Directory => fs::read_dir(&source).is_ok_and(|mut d| d.next().is_none()),
        Input::Absent => fs::symlink_metadata(&source).is_err(),
    };
    ensure!(untouched, "the source changed");
    ensure!(listing(&sandbox.datadir) == *before, "the data dir changed");
    Ok(())
}

/// Checks one run of the binary on `case`'s input.
fn check_run(
    sandbox: &Sandbox,
    case: &Case,
    cleanup: bool,
    out: &Output,
    before: &Listing,
) -> Result<(), String> {
    ensure!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "panicked: {}",
        printed(out)
    );
    ensure!(
        out.status.code().is_some_and(|code| code != 101),
        "crashed: {}",
        printed(out)
    );
    match &case.expect {
        Expect::Placed(checks) => check_placed(sandbox, case, checks, cleanup, out),
        Expect::Refused => check_refused(sandbox, case, out, before),
        Expect::Either if out.status.success() => check_placed(sandbox, case, &[], cleanup, out),
        Expect::Either => check_refused(sandbox, case, out, before),
    }
}

/// Delivers every case (as often as it says) into one fresh sandbox and
/// returns every problem found, the tree-wide ones included.
fn run_corpus(cases: &[Case], cleanup: bool, extra: &[&str]) -> Vec<String> {
    let sandbox = Sandbox::new();
    let mut problems = Vec::new();
    // Destination -> the case placed there.
    let mut placed: BTreeMap<PathBuf, &Case> = BTreeMap::new();
    for case in cases {
        let mut destinations = BTreeSet::new();
        for _ in 0..case.deliveries {
            sandbox.receive(case);
            let before = listing(&sandbox.datadir);
            let out = sandbox.repack(case, cleanup, extra);
            if out.status.success() {
                destinations.extend(reported_dst(&out));
            }
            if let Err(problem) = check_run(&sandbox, case, cleanup, &out, &before) {
                problems.push(format!("{}: {problem}", case.name));
            }
        }
        if destinations.len() > 1 {
            problems.push(format!(
                "{}: redelivery went elsewhere: {destinations:?}",
                case.name
            ));
        }
        for dst in destinations {
            if let Some(other) = placed.insert(dst.clone(), case) {
                problems.push(format!(
                    "{} and {} both ended at {}",
                    other.name,
                    case.name,
                    dst.display()
                ));
            }
        }
    }
    problems.extend(check_tree(&sandbox, cases, &placed));
    problems
}

/// After the whole corpus: nothing but the inputs in the inbox, nothing
/// outside the data dir, no leftovers or links in it, and every placed file
/// still the one placed there.
fn check_tree(sandbox: &Sandbox, cases: &[Case], placed: &BTreeMap<PathBuf, &Case>) -> Vec<String> {
    let expected_outside: BTreeSet<PathBuf> = sandbox
        .datadir
        .ancestors()
        .chain([sandbox.inbox.as_path()])
        .filter(|p| p.starts_with(sandbox.dir.path()))
        .map(Path::to_path_buf)
        .collect();
    let mut problems = Vec::new();
    for path in walk(sandbox.dir.path()) {
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir());
        let expected = if expected_outside.contains(&path) {
            true
        } else if let Ok(relative) = path.strip_prefix(&sandbox.datadir) {
            if is_dir {
                relative.components().count() <= SERIES + 1
            } else {
                placed.contains_key(&path)
            }
        } else if let Ok(relative) = path.strip_prefix(&sandbox.inbox) {
            cases.iter().any(|case| relative == Path::new(&case.name))
        } else {
            false
        };
        if !expected {
            problems.push(format!("stray {}", path.display()));
        }
    }
    for (dst, case) in placed {
        if let Input::File(bytes) = &case.input
            && fs::read(dst).ok().as_ref() != Some(bytes)
        {
            problems.push(format!(
                "{} no longer holds {} at the end",
                dst.display(),
                case.name
            ));
        }
    }
    problems
}

/// Runs `cases` in copy mode and with --cleanup, each into its own tree,
/// and fails with every problem found.
fn assert_corpus(cases: &[Case], extra: &[&str]) {
    assert!(!cases.is_empty());
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        let mode = if cleanup { "--cleanup" } else { "copy" };
        problems.extend(
            run_corpus(cases, cleanup, extra)
                .into_iter()
                .map(|problem| format!("[{mode}] {problem}")),
        );
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn every_transfer_syntax_and_framing_is_placed() {
    assert_corpus(&syntax_cases(), &[]);
}

#[test]
fn non_ascii_character_sets_are_decoded_and_sanitised() {
    assert_corpus(&charset_cases(), &[]);
}

#[test]
fn missing_elements_become_their_keywords() {
    assert_corpus(&missing_cases(), &[]);
}

#[test]
fn hostile_values_stay_inside_the_data_dir() {
    assert_corpus(&hostile_cases(), &[]);
}

#[test]
fn hostile_values_as_whole_path_components_stay_inside_the_data_dir() {
    assert_corpus(&bare_template_cases(), &BARE_TEMPLATES);
}

#[test]
fn broken_files_are_refused_cleanly() {
    assert_corpus(&broken_cases(), &[]);
}

#[test]
fn bogus_element_lengths_are_refused_without_huge_allocations() {
    assert_corpus(&bogus_length_cases(), &[]);
}

#[test]
fn huge_pixel_data_is_placed() {
    assert_corpus(&[huge_case()], &[]);
}

/// Everything (but the cases for other templates) into one tree, as a
/// receiving node sees it: no input may take another's place.
#[test]
fn whole_corpus_shares_one_tree() {
    let cases: Vec<Case> = [
        syntax_cases(),
        charset_cases(),
        missing_cases(),
        hostile_cases(),
        broken_cases(),
        bogus_length_cases(),
        vec![huge_case()],
    ]
    .into_iter()
    .flatten()
    .collect();
    let names: BTreeSet<&str> = cases.iter().map(|case| case.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names must be distinct");
    assert_corpus(&cases, &[]);
}
