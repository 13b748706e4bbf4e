//! Reading a DICOM file's header: every element before the pixel data,
//! never the pixel data itself, so memory does not grow with image size.

use std::fs::{File, Metadata};
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::charset;
use crate::lengths::{self, DataSetStart, Encoding};

/// Why a file could not be read as DICOM.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("is a directory, not a file")]
    IsDirectory,
    #[error("not a DICOM file: the file is empty")]
    Empty,
    #[error("not a DICOM file: {0}")]
    NotDicom(String),
}

/// The data set of one instance, up to (not including) its pixel data.
pub struct Header {
    dataset: InMemDicomObject,
    big_endian: bool,
}

/// How the first bytes of a file say it is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// 128-byte preamble, `DICM`, file meta group, data set (the standard form).
    Preamble,
    /// `DICM` and the file meta group without the preamble.
    NoPreamble,
    /// A bare data set, as old modalities and some archives write it;
    /// the transfer syntax is guessed from the first element.
    BareDataSet(&'static str),
}

/// How much of a file is read at once to begin with.
const HEAD_BYTES: usize = 16 * 1024;

/// Retired, but PACS still send it; dicom-rs reads it.
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// Everything from (7FE0,0008) Float Pixel Data on is image data;
/// reading up to there reads the whole header.
const WHOLE_HEADER: Tag = tags::FLOAT_PIXEL_DATA;

/// Which top-level elements of a header to read.
#[derive(Debug, Clone, Copy)]
pub enum Elements<'a> {
    /// All of them (for the records written once per series).
    Whole,
    /// Only these (and SpecificCharacterSet, which says how to decode
    /// them): dicom-rs then parses a handful of elements, not hundreds.
    /// (A deflated data set is read in full up to the last of them.)
    Only(&'a [Tag]),
}

/// Reads the whole header of the DICOM file at `path`.
pub fn read_header(path: &Path) -> Result<Header, ReadError> {
    read_path(path, Elements::Whole)
}

/// Reads only the top-level elements `tags` of the DICOM file at `path`
/// (see [`Elements::Only`]).
pub fn read_elements(path: &Path, tags: &[Tag]) -> Result<Header, ReadError> {
    read_path(path, Elements::Only(tags))
}

fn read_path(path: &Path, elements: Elements) -> Result<Header, ReadError> {
    let file = File::open(path).map_err(ReadError::Open)?;
    let metadata = file.metadata().map_err(ReadError::Open)?;
    read_header_of(&file, &metadata, elements)
}

/// Reads `elements` of the header of `file`, which is open at its start
/// and has `metadata`.
pub fn read_header_of(
    file: &File,
    metadata: &Metadata,
    elements: Elements,
) -> Result<Header, ReadError> {
    let mut file = file;
    if metadata.is_dir() {
        return Err(ReadError::IsDirectory);
    }
    // One read brings in the whole header of most files: the length
    // check and dicom-rs both work from it.
    let mut head = vec![0u8; HEAD_BYTES];
    let mut filled = 0;
    while filled < HEAD_BYTES {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Open(e)),
        }
    }
    head.truncate(filled);
    if head.is_empty() {
        return Err(ReadError::Empty);
    }
    let mut wanted = Vec::new();
    // Where dicom-rs stops; the length check always covers the whole
    // header, so a file cut short in its private groups is refused before
    // it is placed, not only when a record needs the rest.
    let (until, keep) = match elements {
        Elements::Whole => (WHOLE_HEADER, None),
        Elements::Only(tags) => {
            wanted.extend(tags);
            wanted.push(tags::SPECIFIC_CHARACTER_SET);
            let last = wanted.iter().max().copied().unwrap_or(Tag(0, 0));
            (after(last).min(WHOLE_HEADER), Some(wanted.as_slice()))
        }
    };
    let size = metadata.len();
    let start = match sniff(&head)? {
        Layout::Preamble => lengths::check_file(file, size, &head, 132, keep),
        Layout::NoPreamble => lengths::check_file(file, size, &head, 4, keep),
        Layout::BareDataSet(ts) => {
            let encoding = Encoding::of(ts);
            lengths::check_data_set(file, size, &head, 0, encoding, keep).map(|kept| DataSetStart {
                offset: 0,
                transfer_syntax: ts.to_string(),
                kept,
            })
        }
    }
    .map_err(|e| ReadError::NotDicom(format!("corrupt or cut short: {e}")))?;
    // Every layout is read the same way: a meta group of our own making
    // in front of the data set, which continues from the head into the
    // file (or, when only some elements are wanted, just those elements).
    let meta = Cursor::new(synthetic_meta(&start.transfer_syntax)?);
    let kept;
    let data_set = match (&start.kept, head.get(start.offset as usize..)) {
        (Some(ranges), _) => {
            let encoding = Encoding::of(&start.transfer_syntax);
            let stop = stop_element(until, encoding);
            kept = gather(file, &head, ranges, &stop).map_err(ReadError::Open)?;
            Cursor::new(kept.as_slice())
        }
        (None, Some(rest)) => Cursor::new(rest),
        (None, None) => {
            file.seek(SeekFrom::Start(start.offset))
                .map_err(ReadError::Open)?;
            Cursor::new(&[][..])
        }
    };
    let rest_of_file: &mut dyn Read = if start.kept.is_some() {
        &mut std::io::empty()
    } else {
        &mut file
    };
    let object = OpenFileOptions::new()
        .read_until(until)
        .read_preamble(ReadPreamble::Never)
        .from_reader(meta.chain(data_set).chain(rest_of_file))
        .map_err(|e| ReadError::NotDicom(one_line(&e)))?;
    let big_endian = object.meta().transfer_syntax() == EXPLICIT_VR_BIG_ENDIAN;
    let mut dataset = object.into_inner();
    charset::apply_code_extensions(&mut dataset);
    Ok(Header {
        dataset,
        big_endian,
    })
}

/// An empty element tagged `tag`. After the kept elements it stops dicom-rs
/// (reading until `tag`) as the rest of the file would have; the end of
/// the data would stop it too, but as an error, and dicom-rs captures a
/// backtrace for each (a tenth of the time a batch spends per file).
fn stop_element(tag: Tag, encoding: Encoding) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    for number in [tag.group(), tag.element()] {
        bytes.extend(match encoding.big_endian {
            true => number.to_be_bytes(),
            false => number.to_le_bytes(),
        });
    }
    match encoding.explicit_vr {
        // VR UN, two reserved bytes, a 4-byte length of 0.
        true => bytes.extend(b"UN\0\0\0\0\0\0"),
        false => bytes.extend([0; 4]),
    }
    bytes
}

/// The bytes of `ranges` of the file (from `head` where it holds them),
/// then `stop`.
fn gather(
    file: &File,
    head: &[u8],
    ranges: &[Range<u64>],
    stop: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for range in ranges {
        let (start, end) = (range.start as usize, range.end as usize);
        match head.get(start..end) {
            Some(part) => bytes.extend_from_slice(part),
            None => {
                let at = bytes.len();
                bytes.resize(at + (end - start), 0);
                file.read_exact_at(&mut bytes[at..], range.start)?;
            }
        }
    }
    bytes.extend_from_slice(stop);
    Ok(bytes)
}

impl Header {
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.dataset
    }

    /// Whether binary values were stored big-endian (needed to render
    /// OB/OW-like values as the bytes pydicom shows).
    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// The SOPInstanceUID, if the file has a usable one (not blank): the
    /// identity of the instance.
    pub fn instance_uid(&self) -> Option<String> {
        non_blank(self.text(tags::SOP_INSTANCE_UID))
    }

    /// The element's value as pydicom shows it, or `None` if the file
    /// lacks the element.
    pub fn text(&self, tag: Tag) -> Option<String> {
        self.dataset
            .get(tag)
            .map(|element| crate::pytext::element_text(element, self.big_endian))
    }
}

/// The tag right after `tag`, to read up to and including `tag`.
fn after(tag: Tag) -> Tag {
    match tag.element() {
        0xFFFF => Tag(tag.group() + 1, 0),
        element => Tag(tag.group(), element + 1),
    }
}

/// A value that is not just spaces, or `None`.
pub fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn sniff(start: &[u8]) -> Result<Layout, ReadError> {
    if start.len() >= 132 && &start[128..132] == b"DICM" {
        return Ok(Layout::Preamble);
    }
    if start.len() >= 4 && &start[..4] == b"DICM" {
        return Ok(Layout::NoPreamble);
    }
    bare_data_set_syntax(start)
        .map(Layout::BareDataSet)
        .ok_or_else(|| {
            ReadError::NotDicom("no DICM marker and no recognisable data set at the start".into())
        })
}

/// Guesses the transfer syntax of a data set written without a file meta
/// group from its first element header, or `None` if it does not look like
/// DICOM at all.
fn bare_data_set_syntax(start: &[u8]) -> Option<&'static str> {
    if start.len() < 8 {
        return None;
    }
    let group_le = u16::from_le_bytes([start[0], start[1]]);
    let group_be = u16::from_be_bytes([start[0], start[1]]);
    let explicit = is_vr(&start[4..6]);
    // Data sets start with a low group (0008 in practice); whichever byte
    // order gives the smaller group is the one the file uses.
    let (group, big_endian) = if group_le <= group_be {
        (group_le, false)
    } else {
        (group_be, true)
    };
    if group == 0 || group > 0x0028 || group % 2 == 1 {
        return None;
    }
    match (explicit, big_endian) {
        (true, false) => Some(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        (true, true) => Some(EXPLICIT_VR_BIG_ENDIAN),
        (false, false) => {
            // Implicit VR: the next four bytes are a length; a sane one is
            // far smaller than 64 KiB for the first (identifying) elements.
            let len = u32::from_le_bytes([start[4], start[5], start[6], start[7]]);
            (len < 0x1_0000).then_some(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        }
        (false, true) => None,
    }
}

fn is_vr(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<dicom_core::VR>().ok())
        .is_some()
}

/// A file meta group announcing `transfer_syntax`, to put in front of the
/// data set so that dicom-rs reads every layout alike.
fn synthetic_meta(transfer_syntax: &str) -> Result<Vec<u8>, ReadError> {
    let invalid = |e: &dyn std::error::Error| {
        ReadError::NotDicom(format!(
            "unusable transfer syntax {transfer_syntax:?}: {}",
            one_line(e)
        ))
    };
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("")
        .media_storage_sop_instance_uid("")
        .build()
        .map_err(|e| invalid(&e))?;
    let mut bytes = b"DICM".to_vec();
    meta.write(&mut bytes).map_err(|e| invalid(&e))?;
    Ok(bytes)
}

/// dicom-rs errors chain several causes; we report them on one line.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
