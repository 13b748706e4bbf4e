//! A check of the element lengths a file declares, against what the file
//! holds, before dicom-rs reads it. dicom-rs allocates an element's
//! declared length before reading its value, so one corrupt or hostile
//! length of 4 GiB would cost 4 GiB of memory for a file of a few bytes;
//! and it builds nested sequences by recursion, so absurd nesting could
//! exhaust a thread's stack.
//!
//! The walk reads only element headers (tag, VR, length), descending into
//! sequences and items, up to the top-level pixel data: the whole header,
//! so everything dicom-rs will read is covered.
//! A deflated data set is inflated on the fly for the walk, with a bounded
//! buffer.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::Range;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use super::ReadError;
use super::element::{ElementHeader, UNDEFINED, fits, read_element_header};
use super::source::{Bytes, FileBytes, InflatedBytes};
use super::transfer_syntax::Encoding;

/// Where image data starts: (7FE0,0008) Float Pixel Data.
const PIXEL_DATA_START: Tag = Tag(0x7FE0, 0x0008);
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQUENCE_END: u16 = 0xE0DD;
/// Deeper nesting than any real instance has (a handful of levels).
const MAX_DEPTH: usize = 64;

/// A container the walk is inside of, and where it ends if known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Sequence(Option<u64>),
    Item(Option<u64>),
    /// Encapsulated pixel data: its items are fragments, not data sets.
    Fragments,
}

/// The byte ranges in the file of the top-level elements a check was
/// asked to keep, in file order.
pub type Kept = Vec<Range<u64>>;

/// Checks the structure of the data set that starts at `offset` in `file`
/// (which has `size` bytes and starts with `head`). With `keep`, also
/// returns where the top-level elements with those tags are (not for a
/// deflated data set, whose bytes are not the file's).
pub fn check_structure(
    file: &File,
    size: u64,
    head: &[u8],
    offset: u64,
    encoding: Encoding,
    keep: Option<&[Tag]>,
) -> Result<Option<Kept>, ReadError> {
    if encoding.deflated {
        let mut file = file.try_clone().map_err(ReadError::Read)?;
        file.seek(SeekFrom::Start(offset))
            .map_err(ReadError::Read)?;
        walk_elements(&mut InflatedBytes::new(file), 0, encoding, &[])?;
        return Ok(None);
    }
    let bytes = &mut FileBytes::new(file, head, size);
    let kept = walk_elements(bytes, offset, encoding, keep.unwrap_or_default())?;
    Ok(keep.map(|_| kept))
}

/// Walks the element headers from `pos` to the top-level pixel data (or
/// the end); returns where the top-level elements tagged in `keep` are.
fn walk_elements(
    bytes: &mut dyn Bytes,
    mut pos: u64,
    encoding: Encoding,
    keep: &[Tag],
) -> Result<Kept, ReadError> {
    let mut open: Vec<Open> = Vec::new();
    let mut kept = Kept::new();
    // The top-level element the walk is in, and where it starts.
    let mut current: Option<(Tag, u64)> = None;
    loop {
        // Leave the containers of defined length that end here.
        while let Some(Open::Sequence(Some(end)) | Open::Item(Some(end))) = open.last() {
            if pos < *end {
                break;
            }
            open.pop();
        }
        if open.is_empty()
            && let Some((tag, start)) = current.take()
            && keep.contains(&tag)
        {
            kept.push(start..pos);
        }
        if open.len() > MAX_DEPTH {
            return Err(ReadError::Corrupt(format!(
                "sequences nested more than {MAX_DEPTH} deep"
            )));
        }
        let Some(header) = read_element_header(bytes, pos, encoding)? else {
            if let Some((tag, _)) = current {
                return Err(ReadError::Corrupt(format!(
                    "the data ends inside element {tag}"
                )));
            }
            return Ok(kept);
        };
        let end = header.end();
        // What runs past the end of the sequence or item holding it would
        // be read differently by dicom-rs (which trusts the inner length)
        // than by this walk.
        if let Some(limit) = innermost_end(&open)
            && end.unwrap_or(header.value_at) > limit
        {
            return Err(ReadError::Corrupt(format!(
                "element {} runs past the end of the sequence or item that holds it",
                header.tag
            )));
        }
        let start = pos;
        pos = header.value_at;
        if header.tag.group() == 0xFFFE {
            match header.tag.element() {
                _ if open.is_empty() => {
                    return Err(ReadError::Corrupt(format!(
                        "item tag {} outside any sequence",
                        header.tag
                    )));
                }
                ITEM if open.last() == Some(&Open::Fragments) => {
                    fits(bytes, &header)?;
                    pos = end.unwrap_or(pos);
                }
                // Containers are not checked to fit: the walk goes
                // through them, and the data ending inside one fails.
                ITEM => open.push(Open::Item(end)),
                ITEM_END | SEQUENCE_END => {
                    open.pop();
                }
                _ => {}
            }
            continue;
        }
        if open.is_empty() {
            if header.tag >= PIXEL_DATA_START {
                // Checking a deflated data set's image data would mean
                // inflating all of it; it is left to the decompressor.
                if !encoding.deflated {
                    image_data_is_whole(bytes, &header, encoding)?;
                }
                return Ok(kept);
            }
            current = Some((header.tag, start));
        }
        let sequence =
            header.vr == Some(VR::SQ) || (header.vr.is_none() && is_sequence(header.tag));
        match (sequence, end) {
            (true, end) => open.push(Open::Sequence(end)),
            // An undefined length on anything else is encapsulated data.
            (false, None) => open.push(Open::Fragments),
            (false, Some(end)) => {
                // The values dicom-rs will allocate: they must be there,
                // and be whole numbers of their units (dicom-rs reads whole
                // units only, and would lose its place otherwise).
                fits(bytes, &header)?;
                whole_units(&header)?;
                pos = end;
            }
        }
    }
}

/// Where the innermost open sequence or item of defined length ends.
fn innermost_end(open: &[Open]) -> Option<u64> {
    open.iter().rev().find_map(|container| match container {
        Open::Sequence(end) | Open::Item(end) => *end,
        Open::Fragments => None,
    })
}

/// Fails when the image data that ends the data set (`header` is its
/// first element) is cut short, so that a file truncated in its pixel data
/// is refused rather than placed as if whole. Native data is checked by
/// its length alone; encapsulated data by its fragments' headers (one read
/// per fragment) and its sequence delimiter. Stricter than the walk's
/// `Open::Fragments`, which also stands for UN values of undefined length
/// (sequences in disguise, whose items hold elements): here nothing but
/// fragments and the delimiter may follow.
fn image_data_is_whole(
    bytes: &mut dyn Bytes,
    header: &ElementHeader,
    encoding: Encoding,
) -> Result<(), ReadError> {
    if header.length != UNDEFINED {
        return fits(bytes, header);
    }
    // Read as tag and length only (as items are in every transfer syntax),
    // so that whatever stands where a fragment should is named in the
    // error, not refused for an unknown VR.
    let items = Encoding {
        explicit_vr: false,
        ..encoding
    };
    let mut pos = header.value_at;
    loop {
        let Some(item) = read_element_header(bytes, pos, items)? else {
            return Err(ReadError::Corrupt(format!(
                "the data ends inside element {}",
                header.tag
            )));
        };
        match (item.tag.group(), item.tag.element()) {
            (0xFFFE, SEQUENCE_END) => return Ok(()),
            (0xFFFE, ITEM) if item.length != UNDEFINED => {
                fits(bytes, &item)?;
                pos = item.value_at + u64::from(item.length);
            }
            _ => {
                return Err(ReadError::Corrupt(format!(
                    "element {} holds {} where a fragment should be",
                    header.tag, item.tag
                )));
            }
        }
    }
}

/// Fails when a binary value's length is not a multiple of its unit size.
fn whole_units(header: &ElementHeader) -> Result<(), ReadError> {
    let vr = header.vr.or_else(|| {
        if header.tag.element() == 0 {
            return Some(VR::UL); // group length
        }
        match StandardDataDictionary.by_tag(header.tag)?.vr() {
            VirtualVr::Exact(vr) => Some(vr),
            VirtualVr::Xs => Some(VR::US),
            _ => None,
        }
    });
    let unit = match vr {
        Some(VR::US | VR::SS | VR::OW) => 2,
        Some(VR::UL | VR::SL | VR::FL | VR::AT | VR::OF | VR::OL) => 4,
        Some(VR::FD | VR::SV | VR::UV | VR::OD | VR::OV) => 8,
        _ => 1,
    };
    if !header.length.is_multiple_of(unit) {
        return Err(ReadError::Corrupt(format!(
            "element {} has {} bytes, not a whole number of {unit}-byte values",
            header.tag, header.length
        )));
    }
    Ok(())
}

/// Whether an implicit-VR element is a sequence, from the dictionary.
fn is_sequence(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|entry| matches!(entry.vr(), VirtualVr::Exact(VR::SQ)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn check(bytes: &[u8], encoding: Encoding) -> Result<(), String> {
        let file = file_with(bytes);
        check_structure(
            &file,
            bytes.len() as u64,
            &bytes[..bytes.len() / 2],
            0,
            encoding,
            None,
        )
        .map(drop)
        .map_err(|e| e.to_string())
    }

    fn explicit_le() -> Encoding {
        Encoding::of(uids::EXPLICIT_VR_LITTLE_ENDIAN)
    }

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn sane() -> Vec<u8> {
        // (0010,0010) PN "Doe^John" then (0010,0020) LO "ID"
        let mut bytes = vec![0x10, 0, 0x10, 0, b'P', b'N', 8, 0];
        bytes.extend_from_slice(b"Doe^John");
        bytes.extend_from_slice(&[0x10, 0, 0x20, 0, b'L', b'O', 2, 0, b'I', b'D']);
        bytes
    }

    fn too_long() -> Vec<u8> {
        let mut bytes = vec![0x10, 0, 0x10, 0, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        bytes.extend_from_slice(b"short");
        bytes
    }

    #[test]
    fn sane_lengths_pass() {
        assert_eq!(check(&sane(), explicit_le()), Ok(()));
    }

    #[test]
    fn a_length_past_the_end_is_refused() {
        let error = check(&too_long(), explicit_le()).unwrap_err();
        assert!(error.contains("4294967280"), "{error}");
    }

    #[test]
    fn deflate_bombs_are_refused() {
        // (0009,1010) OB of 100 MiB of zeros: about 100 KiB deflated.
        let length: u32 = 100 << 20;
        let mut bytes = vec![0x09, 0, 0x10, 0x10, b'O', b'B', 0, 0];
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.resize(bytes.len() + length as usize, 0);
        let deflated = deflate(&bytes);
        assert!(deflated.len() < 1 << 20);
        let error = check(
            &deflated,
            Encoding::of(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .unwrap_err();
        assert!(error.contains("inflates to more than 64 MiB"), "{error}");
    }

    #[test]
    fn deflated_data_sets_are_checked_too() {
        let deflated = Encoding::of(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(check(&deflate(&sane()), deflated), Ok(()));
        assert!(check(&deflate(&too_long()), deflated).is_err());
    }

    #[test]
    fn lengths_inside_sequences_are_checked() {
        // (0008,1140) SQ undefined, item undefined, (0008,1150) UI len 0xFFF0 (too long)
        let mut bytes = vec![
            0x08, 0, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0x08, 0, 0x50, 0x11, b'U', b'I', 0xF0, 0xFF, b'1', b'2']);
        assert!(check(&bytes, explicit_le()).is_err());
    }

    #[test]
    fn numbers_must_be_whole_units() {
        // (0010,0040) US of 3 bytes
        let bytes = [0x10, 0, 0x40, 0, b'U', b'S', 3, 0, 1, 0, 0x10, 0, 0];
        assert!(
            check(&bytes, explicit_le())
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn absurd_nesting_is_refused() {
        let mut bytes = Vec::new();
        for _ in 0..200 {
            bytes.extend_from_slice(&[
                0x08, 0, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(check(&bytes, explicit_le()).unwrap_err().contains("nested"));
    }

    /// (7FE0,0010) OB: `length` in the header, then `value`.
    fn pixel_data(length: u32, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0];
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    /// An encapsulated item (fragment or delimiter) with `value`.
    fn item(element: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend_from_slice(&element.to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    #[test]
    fn the_walk_stops_at_top_level_pixel_data() {
        // Pixel values that read like an element claiming 4 GiB.
        let lookalike = [0x10, 0, 0x10, 0, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        let native = pixel_data(lookalike.len() as u32, &lookalike);
        assert_eq!(check(&native, explicit_le()), Ok(()));
        // Fragments, their delimiter, then trailing bytes that are not read.
        let mut encapsulated = pixel_data(UNDEFINED, &item(ITEM, &[]));
        encapsulated.extend(item(ITEM, &lookalike));
        encapsulated.extend(item(SEQUENCE_END, &[]));
        encapsulated.extend_from_slice(&[0xAB; 40]);
        assert_eq!(check(&encapsulated, explicit_le()), Ok(()));
    }

    /// (0008,1140) SQ of `length`, then `value`.
    fn sequence(length: u32, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0];
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    #[test]
    fn items_must_sit_inside_their_sequences() {
        let items = item(ITEM, &sane());
        let whole = sequence(items.len() as u32, &items);
        assert_eq!(check(&whole, explicit_le()), Ok(()));
        // An item running past the end of its sequence.
        let mut overrun = sequence(items.len() as u32 - 2, &items);
        overrun.extend(sane());
        let error = check(&overrun, explicit_le()).unwrap_err();
        assert!(error.contains("runs past the end"), "{error}");
        // An item among the top-level elements.
        let mut stray = sane();
        stray.extend(item(ITEM, &sane()));
        let error = check(&stray, explicit_le()).unwrap_err();
        assert!(error.contains("outside any sequence"), "{error}");
        // A sequence of undefined length that the data ends inside.
        let unterminated = sequence(UNDEFINED, &items);
        let error = check(&unterminated, explicit_le()).unwrap_err();
        assert!(error.contains("ends inside element (0008,1140)"), "{error}");
        let mut terminated = unterminated.clone();
        terminated.extend(item(SEQUENCE_END, &[]));
        assert_eq!(check(&terminated, explicit_le()), Ok(()));
    }

    #[test]
    fn image_data_cut_short_is_refused() {
        let native = pixel_data(64, &[0x5A; 64]);
        let cut = &native[..native.len() - 1];
        assert!(
            check(cut, explicit_le())
                .unwrap_err()
                .contains("declares 64 bytes")
        );

        let mut encapsulated = pixel_data(UNDEFINED, &item(ITEM, &[]));
        encapsulated.extend(item(ITEM, &[0x5A; 64]));
        let fragment_end = encapsulated.len();
        encapsulated.extend(item(SEQUENCE_END, &[]));
        assert_eq!(check(&encapsulated, explicit_le()), Ok(()));
        let in_fragment = &encapsulated[..fragment_end - 1];
        assert!(
            check(in_fragment, explicit_le())
                .unwrap_err()
                .contains("declares 64 bytes")
        );
        let no_delimiter = &encapsulated[..fragment_end];
        assert!(
            check(no_delimiter, explicit_le())
                .unwrap_err()
                .contains("ends inside")
        );
        let mut garbage = encapsulated[..fragment_end].to_vec();
        garbage.extend_from_slice(&[0xAB; 40]);
        assert!(
            check(&garbage, explicit_le())
                .unwrap_err()
                .contains("fragment")
        );
    }

    fn kept(bytes: &[u8], keep: &[Tag]) -> Result<Option<Kept>, String> {
        let file = file_with(bytes);
        let size = bytes.len() as u64;
        check_structure(&file, size, &bytes[..4], 0, explicit_le(), Some(keep))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn kept_elements_are_found_whole() {
        // (0008,1140) SQ undefined length holding one item, then sane().
        let mut bytes = vec![
            0x08, 0, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0x08, 0, 0x50, 0x11, b'U', b'I', 2, 0, b'1', 0]);
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let sequence_end = bytes.len() as u64;
        bytes.extend_from_slice(&sane());
        let all = bytes.len() as u64;

        let sequence = Tag(0x0008, 0x1140);
        let (name, id) = (Tag(0x0010, 0x0010), Tag(0x0010, 0x0020));
        let id_only = Range {
            start: sequence_end + 16,
            end: all,
        };
        assert_eq!(kept(&bytes, &[id]), Ok(Some(vec![id_only])));
        assert_eq!(
            kept(&bytes, &[sequence, name]),
            Ok(Some(vec![0..sequence_end, sequence_end..sequence_end + 16]))
        );
        // Without the sequence's end, the kept sequence is cut off.
        let cut = &bytes[..sequence_end as usize - 8];
        assert!(kept(cut, &[sequence]).unwrap_err().contains("ends inside"));
        assert_eq!(kept(&bytes, &[]), Ok(Some(vec![])));
    }
}
