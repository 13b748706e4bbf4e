//! The structure walk: every element header of the data set (tag, VR,
//! length) checked against what the file holds, and against the
//! containers around it, before anything is decoded; and bounded copies
//! of the elements a read wants ([`Capture`]).
//!
//! dicom-rs allocates an element's declared length before reading its
//! value, and builds nested sequences by recursion, so it only ever sees
//! what this walk kept: a corrupt or hostile length cannot cost memory,
//! and absurd nesting cannot exhaust a stack.
//!
//! The walk follows the encodings a data set can switch between: a UN
//! value of undefined length is a sequence in implicit VR little endian
//! (PS3.5 6.2.2), whatever the data set's transfer syntax; in implicit VR
//! an element of undefined length is a sequence even when no dictionary
//! knows its tag. A deflated data set is walked as it inflates, with a
//! bounded window.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;

use super::HeaderError;
use super::captured::{
    BUDGET, Capture, Captured, NESTED_ELEMENT_LIMIT, SEQUENCE_LIMIT, VALUE_LIMIT,
};
use super::element::{
    ElementHeader, ITEM, ITEM_END, SEQUENCE_END, UNDEFINED, Vr, fits, read_element_header,
};
use super::keywords::{keyword_of, vr_of};
use super::source::{Bytes, FileBytes, InflatedBytes, read_exact};
use super::transfer_syntax::Encoding;

/// Where image data starts: (7FE0,0008) Float Pixel Data.
const IMAGE_DATA: Tag = Tag(0x7FE0, 0x0008);
/// Deeper nesting than any real instance has (a handful of levels).
const MAX_DEPTH: usize = 64;

/// Which top-level elements a walk keeps.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    Tags(&'a [Tag]),
    /// Every element pydicom names by a keyword (and SpecificCharacterSet),
    /// the pixel data excepted.
    Keywords,
}

impl Keep<'_> {
    fn wants(&self, tag: Tag) -> bool {
        match self {
            Keep::Tags(tags) => tags.contains(&tag),
            Keep::Keywords => {
                tag != tags::PIXEL_DATA
                    && (tag == tags::SPECIFIC_CHARACTER_SET || keyword_of(tag).is_some())
            }
        }
    }
}

/// Walks the data set that starts at `offset` in `file` (which has `size`
/// bytes and starts with `head`) and keeps what `keep` asks for.
pub fn check_structure(
    file: &File,
    size: u64,
    head: &[u8],
    offset: u64,
    encoding: Encoding,
    keep: Keep,
) -> Result<Capture, HeaderError> {
    if encoding.deflated {
        // Nothing after the meta group: an empty data set, as DCMTK and
        // pydicom read it (an empty input is no deflate stream to flate2).
        if offset >= size {
            return Ok(Capture::default());
        }
        let mut file = file.try_clone().map_err(HeaderError::Read)?;
        file.seek(SeekFrom::Start(offset))
            .map_err(HeaderError::Read)?;
        let mut bytes = InflatedBytes::new(file);
        let mut walk = Walk::new(&mut bytes, encoding, keep);
        walk.top_level(0)?;
        return Ok(walk.capture);
    }
    let mut bytes = FileBytes::new(file, head, size);
    let mut walk = Walk::new(&mut bytes, encoding, keep);
    walk.top_level(offset)?;
    Ok(walk.capture)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Sequence,
    Item,
    /// Encapsulated data: its items are fragments, not data sets.
    Fragments,
}

/// A container the walk is inside of.
#[derive(Debug, Clone, Copy)]
struct Open {
    kind: Kind,
    /// Where it ends, if its length is defined.
    end: Option<u64>,
    /// How what it holds is encoded.
    encoding: Encoding,
}

/// What comes after an element header.
enum Next {
    /// A sequence whose items are encoded as given.
    Sequence(Encoding),
    Fragments,
    /// A value of defined length, perhaps a sequence in implicit VR that
    /// no dictionary told apart (its first bytes are an item tag).
    Value {
        looks_like_items: bool,
    },
}

/// A top-level element being walked through.
struct Current {
    header: ElementHeader,
    /// The sequence being kept, if it is, and the encoding of its content.
    kept: Option<Encoding>,
    /// Item lengths to write into the kept copy: (where in the file the
    /// length is, the length), for items cut at their sequence's end.
    cut_items: Vec<(u64, u32)>,
    /// The elements in it so far.
    elements: usize,
}

struct Walk<'b> {
    bytes: &'b mut dyn Bytes,
    encoding: Encoding,
    keep: Keep<'b>,
    capture: Capture,
    /// Bytes still to be kept before the [`BUDGET`] is spent.
    budget: u64,
    /// Elements in the sequences kept so far.
    nested_elements: usize,
}

impl<'b> Walk<'b> {
    fn new(bytes: &'b mut dyn Bytes, encoding: Encoding, keep: Keep<'b>) -> Self {
        Walk {
            bytes,
            encoding,
            keep,
            capture: Capture::default(),
            budget: BUDGET,
            nested_elements: 0,
        }
    }

    /// Walks the top level from `pos` to the end (of a deflated data set,
    /// to the image data).
    fn top_level(&mut self, mut pos: u64) -> Result<(), HeaderError> {
        loop {
            let Some(header) = read_element_header(self.bytes, pos, self.encoding)? else {
                return Ok(());
            };
            if header.is_delimiter_or_item() {
                return Err(corrupt(format!(
                    "item tag {} outside any sequence",
                    header.tag
                )));
            }
            if header.tag >= IMAGE_DATA {
                // Checking a deflated data set's image data would mean
                // inflating all of it; it is left to the decompressor.
                if self.encoding.deflated {
                    return Ok(());
                }
                // After the image data (trailing padding, signatures),
                // pydicom reads on leniently: what cannot be read ends it.
                // Every read goes there, so that all see the same values.
                return self.trailing(header);
            }
            pos = self.element(header)?;
        }
    }

    /// The first image data element (`first`), which must be whole (a
    /// file cut short in its pixel data is refused), then the top-level
    /// elements after it until the data ends or stops making sense.
    fn trailing(&mut self, first: ElementHeader) -> Result<(), HeaderError> {
        let mut pos = self.element(first)?;
        loop {
            let header = match read_element_header(self.bytes, pos, self.encoding) {
                Ok(Some(header)) if !header.is_delimiter_or_item() => header,
                Err(HeaderError::Read(e)) => return Err(HeaderError::Read(e)),
                _ => return Ok(()),
            };
            pos = match self.element(header) {
                Ok(pos) => pos,
                Err(HeaderError::Read(e)) => return Err(HeaderError::Read(e)),
                Err(_) => return Ok(()),
            };
        }
    }

    /// Walks the top-level element `header` (everything it holds, to its
    /// end) and keeps it if wanted; returns where it ends.
    fn element(&mut self, header: ElementHeader) -> Result<u64, HeaderError> {
        let encoding = self.encoding;
        if let Vr::Nonstandard(code) = header.vr {
            self.note_nonstandard(&header, code);
        }
        let wanted = self.keep.wants(header.tag);
        match self.next(&header, encoding)? {
            Next::Value { looks_like_items } => {
                let declared_end = header.value_at + u64::from(header.length);
                // What is kept is read before the rest is checked: past a
                // deflated value, its start is gone.
                if wanted {
                    self.bytes.keep_from(Some(header.value_at));
                }
                let walked = match looks_like_items {
                    true => self.looks_like_sequence(&header, encoding, 0)?,
                    false => None,
                };
                if wanted && walked.is_none() {
                    self.keep_value(&header)?;
                }
                // A sequence ends where its walk ended: at its length, or at
                // a sequence delimiter before it (DCMTK and pydicom read on
                // from there, as the walk does for an explicit SQ).
                let end = match walked {
                    Some(end) => end,
                    None => {
                        fits(self.bytes, &header)?;
                        declared_end
                    }
                };
                if wanted && walked.is_some() {
                    if end == declared_end {
                        self.keep_sequence(&header, encoding, end, &[])?;
                    } else {
                        self.capture.notes.push(format!(
                            "element {} left out of the records: its sequence delimiter comes before its length ends",
                            header.tag
                        ));
                    }
                }
                self.bytes.keep_from(None);
                Ok(end)
            }
            next => {
                let content = match next {
                    Next::Sequence(content) => content,
                    _ => encoding,
                };
                let kept = (wanted && matches!(next, Next::Sequence(_))).then_some(content);
                if kept.is_some() {
                    self.bytes.keep_from(Some(header.value_at));
                }
                let open = Open {
                    kind: if matches!(next, Next::Fragments) {
                        Kind::Fragments
                    } else {
                        Kind::Sequence
                    },
                    end: header.end(),
                    encoding: content,
                };
                let start = header.value_at;
                let mut current = Current {
                    header,
                    kept,
                    cut_items: Vec::new(),
                    elements: 0,
                };
                let end = self.inside(vec![open], start, 0, &mut current)?;
                if let Some(content) = current.kept {
                    self.keep_sequence(&current.header, content, end, &current.cut_items)?;
                    self.nested_elements += current.elements;
                }
                self.bytes.keep_from(None);
                Ok(end)
            }
        }
    }

    /// Walks from `pos` through the containers `open` until they are all
    /// closed; returns where. `current` is the top-level element they are
    /// in: a sequence of it that is kept is dropped when it grows too
    /// large or holds another encoding.
    /// `depth` is how deep `open`'s first container already is.
    fn inside(
        &mut self,
        mut open: Vec<Open>,
        mut pos: u64,
        depth: usize,
        current: &mut Current,
    ) -> Result<u64, HeaderError> {
        loop {
            // Leave the containers of defined length that end here.
            while let Some(Open { end: Some(end), .. }) = open.last() {
                if pos < *end {
                    break;
                }
                open.pop();
            }
            let Some(&innermost) = open.last() else {
                return Ok(pos);
            };
            if depth + open.len() > MAX_DEPTH {
                return Err(corrupt(format!(
                    "sequences nested more than {MAX_DEPTH} deep"
                )));
            }
            if current.kept.is_some() {
                current.elements += 1;
                if pos - current.header.value_at > SEQUENCE_LIMIT {
                    let why = format!("larger than {} MiB", SEQUENCE_LIMIT >> 20);
                    self.leave_out(current, &why);
                } else if self.nested_elements + current.elements > NESTED_ELEMENT_LIMIT {
                    let why = format!(
                        "the sequences of the header hold more than {NESTED_ELEMENT_LIMIT} elements"
                    );
                    self.leave_out(current, &why);
                }
            }
            let encoding = match innermost.kind {
                // Fragments and delimiters are read as tag and length only,
                // so that whatever stands where a fragment should is named.
                Kind::Fragments => Encoding {
                    explicit_vr: false,
                    ..innermost.encoding
                },
                _ => innermost.encoding,
            };
            let Some(header) = read_element_header(self.bytes, pos, encoding)? else {
                // DCMTK takes the end of the file for the end of a top-level
                // sequence whose content has not begun, and of encapsulated
                // pixel data after nothing but an empty offset table;
                // pydicom reads those too (the pixel data it stops before).
                let content = pos - current.header.value_at;
                let quiet = depth == 0
                    && open.len() == 1
                    && match innermost.kind {
                        Kind::Sequence => content == 0,
                        Kind::Fragments => content == 0 || content == 8,
                        Kind::Item => false,
                    };
                if quiet {
                    self.capture.notes.push(format!(
                        "element {} is cut short by the end of the file before any item: read as empty",
                        current.header.tag
                    ));
                    self.leave_out(current, "the file ends inside it");
                    return Ok(pos);
                }
                return Err(corrupt(format!(
                    "the data ends inside element {}",
                    current.header.tag
                )));
            };
            // What runs past the end of the sequence or item holding it:
            // an item is cut at that end, as DCMTK and pydicom read it (a
            // directory record rewritten without its offsets keeps its old
            // length), in a kept copy too, for dicom-rs trusts the length;
            // anything else makes no sense.
            let mut header = header;
            if let Some(limit) = open.iter().rev().find_map(|o| o.end)
                && header.end().unwrap_or(header.value_at) > limit
            {
                if header.tag != ITEM || header.value_at > limit {
                    return Err(corrupt(format!(
                        "element {} runs past the end of the sequence or item that holds it",
                        header.tag
                    )));
                }
                header.length = (limit - header.value_at) as u32;
                current.cut_items.push((header.value_at - 4, header.length));
            }
            if innermost.kind == Kind::Fragments {
                match header.tag {
                    SEQUENCE_END => {
                        open.pop();
                        pos = header.value_at;
                    }
                    ITEM if header.length != UNDEFINED => {
                        fits(self.bytes, &header)?;
                        pos = header.value_at + u64::from(header.length);
                    }
                    _ => {
                        return Err(corrupt(format!(
                            "element {} holds {} where a fragment should be",
                            current.header.tag, header.tag
                        )));
                    }
                }
                continue;
            }
            pos = header.value_at;
            match (innermost.kind, header.tag) {
                (Kind::Sequence, ITEM) => open.push(Open {
                    kind: Kind::Item,
                    end: header.end(),
                    encoding: innermost.encoding,
                }),
                (_, ITEM_END | SEQUENCE_END) => {
                    open.pop();
                }
                (_, tag) if tag.group() == 0xFFFE => {
                    return Err(corrupt(format!(
                        "item tag {tag} where an element should be"
                    )));
                }
                (Kind::Sequence, tag) => {
                    return Err(corrupt(format!("element {tag} where an item should be")));
                }
                _ => {
                    if let Vr::Nonstandard(code) = header.vr {
                        self.note_nonstandard(&header, code);
                    }
                    match self.next(&header, encoding)? {
                        Next::Sequence(content) => {
                            if current.kept.is_some_and(|kept| kept != content) {
                                self.leave_out(current, "it holds a sequence in another encoding");
                            }
                            open.push(Open {
                                kind: Kind::Sequence,
                                end: header.end(),
                                encoding: content,
                            });
                        }
                        Next::Fragments => open.push(Open {
                            kind: Kind::Fragments,
                            end: None,
                            encoding,
                        }),
                        Next::Value { looks_like_items } => {
                            let walked = match looks_like_items {
                                true => {
                                    self.looks_like_sequence(&header, encoding, depth + open.len())?
                                }
                                false => None,
                            };
                            pos = match walked {
                                Some(end) => end,
                                None => {
                                    fits(self.bytes, &header)?;
                                    header.value_at + u64::from(header.length)
                                }
                            };
                        }
                    }
                }
            }
        }
    }

    /// What the element `header` (in `encoding`) holds.
    fn next(&mut self, header: &ElementHeader, encoding: Encoding) -> Result<Next, HeaderError> {
        let undefined = header.length == UNDEFINED;
        Ok(match header.vr {
            Vr::Explicit(VR::SQ) => Next::Sequence(encoding),
            Vr::Explicit(VR::UN) if undefined => Next::Sequence(Encoding::implicit_little_endian()),
            Vr::Explicit(VR::OB | VR::OW) if undefined => Next::Fragments,
            Vr::None if undefined && header.tag == tags::PIXEL_DATA => Next::Fragments,
            // dicom-rs, pydicom and DCMTK read any other undefined length
            // as a sequence.
            _ if undefined => Next::Sequence(encoding),
            // Image data is never a sequence, whatever its first bytes.
            Vr::None if header.tag.group() != 0x7FE0 => Next::Value {
                looks_like_items: self.starts_with_item(header, encoding)?,
            },
            _ => Next::Value {
                looks_like_items: false,
            },
        })
    }

    /// Whether the value of `header` starts with an item tag.
    fn starts_with_item(
        &mut self,
        header: &ElementHeader,
        encoding: Encoding,
    ) -> Result<bool, HeaderError> {
        if header.length < 8 {
            return Ok(false);
        }
        let mut first = [0u8; 4];
        let got = self
            .bytes
            .read_at(header.value_at, &mut first)
            .map_err(HeaderError::from_io)?;
        let tag = |b: [u8; 2]| match encoding.big_endian {
            true => u16::from_be_bytes(b),
            false => u16::from_le_bytes(b),
        };
        let first = Tag(tag([first[0], first[1]]), tag([first[2], first[3]]));
        // An empty sequence may hold just its delimiter.
        Ok(got == 4 && (first == ITEM || first == SEQUENCE_END))
    }

    /// An implicit-VR value of defined length that starts like a sequence
    /// (`depth` deep): walked as one. If it reads soundly as one, it is
    /// one; if not, it must not be one the dictionary knows (then the file
    /// is corrupt), and is left as bytes. The dictionary is asked only
    /// then, as building it costs a per-file call more than its walk.
    /// Returns where the sequence ends, if it is one.
    fn looks_like_sequence(
        &mut self,
        header: &ElementHeader,
        encoding: Encoding,
        depth: usize,
    ) -> Result<Option<u64>, HeaderError> {
        let open = Open {
            kind: Kind::Sequence,
            end: header.end(),
            encoding,
        };
        let mut current = Current {
            header: header.clone(),
            kept: None,
            cut_items: Vec::new(),
            elements: 0,
        };
        match self.inside(vec![open], header.value_at, depth, &mut current) {
            Ok(end) => Ok(Some(end)),
            Err(HeaderError::Read(e)) => Err(HeaderError::Read(e)),
            Err(e) if vr_of(header.tag) == Some(VR::SQ) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Keeps the value of the top-level element `header`, cut to
    /// [`VALUE_LIMIT`] and to whole numbers of its values.
    fn keep_value(&mut self, header: &ElementHeader) -> Result<(), HeaderError> {
        let vr = match header.vr {
            Vr::Explicit(vr) => vr,
            // Implicit VR, or a VR the standard does not know: the VR the
            // dictionary gives the tag (UN when none).
            Vr::None | Vr::Nonstandard(_) => vr_of(header.tag)
                .filter(|vr| *vr != VR::SQ)
                .unwrap_or(VR::UN),
        };
        let unit = value_size(vr);
        let mut length = header.length.min(VALUE_LIMIT);
        length -= length % unit;
        if length < header.length {
            let why = if header.length > VALUE_LIMIT {
                "cut"
            } else {
                "cut to whole values"
            };
            self.capture.notes.push(format!(
                "element {} {why}: {length} of its {} bytes read",
                header.tag, header.length
            ));
        }
        if !self.spend(header.tag, u64::from(length)) {
            return Ok(());
        }
        let Some(value) = read_exact(self.bytes, header.value_at, length as usize)? else {
            // The check of the whole value says it best.
            fits(self.bytes, header)?;
            return Err(corrupt(format!("element {} is cut short", header.tag)));
        };
        self.capture.elements.push(Captured::Value {
            tag: header.tag,
            vr,
            value,
        });
        Ok(())
    }

    /// Keeps the sequence `header`, whose content ends at `end`, with the
    /// lengths of the items in `cut_items` written in.
    fn keep_sequence(
        &mut self,
        header: &ElementHeader,
        content: Encoding,
        end: u64,
        cut_items: &[(u64, u32)],
    ) -> Result<(), HeaderError> {
        let len = end - header.value_at;
        if len > SEQUENCE_LIMIT {
            self.capture.notes.push(format!(
                "element {} left out of the records: larger than {} MiB",
                header.tag,
                SEQUENCE_LIMIT >> 20
            ));
            return Ok(());
        }
        if !self.spend(header.tag, len) {
            return Ok(());
        }
        let Some(mut bytes) = read_exact(self.bytes, header.value_at, len as usize)? else {
            return Err(corrupt(format!("element {} is cut short", header.tag)));
        };
        for &(at, length) in cut_items {
            let at = (at - header.value_at) as usize;
            let length = match content.big_endian {
                true => length.to_be_bytes(),
                false => length.to_le_bytes(),
            };
            bytes[at..at + 4].copy_from_slice(&length);
        }
        self.capture.elements.push(Captured::Sequence {
            tag: header.tag,
            length: header.length,
            content: bytes,
            encoding: content,
        });
        Ok(())
    }

    /// Takes `len` bytes from the budget, or notes that `tag` is left out.
    fn spend(&mut self, tag: Tag, len: u64) -> bool {
        if len > self.budget {
            self.capture.notes.push(format!(
                "element {tag} left out of the records: the header holds more than {} MiB",
                BUDGET >> 20
            ));
            return false;
        }
        self.budget -= len;
        true
    }

    /// Stops keeping the sequence `current`, saying why.
    fn leave_out(&mut self, current: &mut Current, why: &str) {
        if current.kept.take().is_some() {
            self.bytes.keep_from(None);
            self.capture.notes.push(format!(
                "element {} left out of the records: {why}",
                current.header.tag
            ));
        }
    }

    fn note_nonstandard(&mut self, header: &ElementHeader, code: [u8; 2]) {
        self.capture.notes.push(format!(
            "element {} has the nonstandard VR {:?}: read with a 2-byte length, as DCMTK does",
            header.tag,
            String::from_utf8_lossy(&code)
        ));
    }
}

/// The size of one value of `vr` (1 for text and bytes).
fn value_size(vr: VR) -> u32 {
    match vr {
        VR::US | VR::SS | VR::OW => 2,
        VR::UL | VR::SL | VR::FL | VR::AT | VR::OF | VR::OL => 4,
        VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => 8,
        _ => 1,
    }
}

fn corrupt(why: String) -> HeaderError {
    HeaderError::Corrupt(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::captured::Captured;
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
            Keep::Tags(&[]),
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
    fn kept_numbers_are_cut_to_whole_values() {
        // (0010,0040) US of 3 bytes: kept as one value, with a note.
        let bytes = [0x10, 0, 0x40, 0, b'U', b'S', 3, 0, 1, 0, 0x10];
        let capture = capture(&bytes, Keep::Tags(&[Tag(0x0010, 0x0040)])).unwrap();
        assert_eq!(
            capture.elements,
            [Captured::Value {
                tag: Tag(0x0010, 0x0040),
                vr: VR::US,
                value: vec![1, 0]
            }]
        );
        assert!(
            capture.notes[0].contains("cut to whole values"),
            "{:?}",
            capture.notes
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

    /// An item (fragment or delimiter) with `value`.
    fn item(tag: Tag, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend_from_slice(&tag.element().to_le_bytes());
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
        // The whole read goes on after the image data, as pydicom does,
        // and stops quietly where the data stops making sense.
        let mut trailing = encapsulated.clone();
        let padding = Tag(0xFFFC, 0xFFFC);
        trailing.truncate(trailing.len() - 40);
        trailing.extend([0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 0]);
        trailing.extend_from_slice(&[0xAB; 5]);
        let whole = capture(&trailing, Keep::Keywords).unwrap();
        assert_eq!(
            whole.elements,
            [Captured::Value {
                tag: padding,
                vr: VR::OB,
                value: vec![0, 0]
            }]
        );
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

    fn capture(bytes: &[u8], keep: Keep) -> Result<Capture, String> {
        let file = file_with(bytes);
        let size = bytes.len() as u64;
        check_structure(&file, size, &bytes[..4], 0, explicit_le(), keep).map_err(|e| e.to_string())
    }

    fn kept_tags(bytes: &[u8], keep: &[Tag]) -> Result<Vec<Tag>, String> {
        capture(bytes, Keep::Tags(keep)).map(|c| c.elements.iter().map(Captured::tag).collect())
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
        assert_eq!(kept_tags(&bytes, &[id]), Ok(vec![id]));
        assert_eq!(
            kept_tags(&bytes, &[sequence, name]),
            Ok(vec![sequence, name])
        );
        let kept = capture(&bytes, Keep::Tags(&[sequence])).unwrap();
        match &kept.elements[..] {
            [
                Captured::Sequence {
                    length, content, ..
                },
            ] => {
                assert_eq!(*length, UNDEFINED);
                assert_eq!(content[..], bytes[12..sequence_end as usize]);
            }
            other => panic!("{other:?}"),
        }
        let _ = all;
        // Without the sequence's end, the kept sequence is cut off.
        let cut = &bytes[..sequence_end as usize - 8];
        assert!(
            kept_tags(cut, &[sequence])
                .unwrap_err()
                .contains("ends inside")
        );
        assert_eq!(kept_tags(&bytes, &[]), Ok(vec![]));
    }
}
