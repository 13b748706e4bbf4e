//! Decoding a checked data set with dicom-rs: either all of it up to a
//! stop tag, or only the byte ranges of chosen elements.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use dicom_core::Tag;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use super::ReadError;
use super::meta_group::DataSetStart;
use super::transfer_syntax::Encoding;

/// Decodes the data set of `file` (starting with `head`) that `start`
/// locates, up to `until`. With `kept`, only those byte ranges of the
/// file are decoded.
pub fn decode(
    file: &File,
    head: &[u8],
    start: &DataSetStart,
    kept: Option<&[Range<u64>]>,
    until: Tag,
) -> Result<InMemDicomObject, ReadError> {
    // Every framing is read the same way: a meta group of our own making
    // in front of the data set, which continues from the head into the
    // file (or, when only some elements are wanted, just those elements).
    let meta = Cursor::new(synthetic_meta(&start.transfer_syntax)?);
    let failure = Cell::new(None);
    let gathered;
    let (data_set, rest_of_file) = match kept {
        Some(ranges) => {
            let stop = stop_element(until, Encoding::of(&start.transfer_syntax));
            gathered = gather(file, head, ranges, &stop).map_err(ReadError::Read)?;
            (gathered.as_slice(), None)
        }
        None => match head.get(start.offset as usize..) {
            Some(rest) => (rest, Some(head.len() as u64)),
            None => (&[][..], Some(start.offset)),
        },
    };
    let rest_of_file = FileFrom {
        file,
        pos: rest_of_file,
        failure: &failure,
    };
    let object = OpenFileOptions::new()
        .read_until(until)
        .read_preamble(ReadPreamble::Never)
        .from_reader(meta.chain(data_set).chain(rest_of_file))
        .map_err(|e| match failure.take() {
            // dicom-rs wraps the file's own read errors as parse errors.
            Some(io_error) => ReadError::Read(io_error),
            None => ReadError::Corrupt(one_line(&e)),
        })?;
    Ok(object.into_inner())
}

/// Reads `file` from `pos` on (nothing when `None`), by position, and
/// keeps a read error aside, so that a failing disk is not reported as a
/// corrupt file.
struct FileFrom<'a> {
    file: &'a File,
    pos: Option<u64>,
    failure: &'a Cell<Option<io::Error>>,
}

impl Read for FileFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pos) = &mut self.pos else {
            return Ok(0);
        };
        let n = self.file.read_at(buf, *pos).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                let kept = io::Error::new(e.kind(), e.to_string());
                self.failure.set(Some(kept));
            }
        })?;
        *pos += n as u64;
        Ok(n)
    }
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
fn gather(file: &File, head: &[u8], ranges: &[Range<u64>], stop: &[u8]) -> io::Result<Vec<u8>> {
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

/// A file meta group announcing `transfer_syntax`, to put in front of the
/// data set so that dicom-rs reads every framing alike.
fn synthetic_meta(transfer_syntax: &str) -> Result<Vec<u8>, ReadError> {
    let invalid = |e: &dyn std::error::Error| {
        ReadError::Corrupt(format!(
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
