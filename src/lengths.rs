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
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use flate2::read::DeflateDecoder;

const UNDEFINED: u32 = u32::MAX;
/// Where image data starts: (7FE0,0008) Float Pixel Data.
const PIXEL_DATA_START: Tag = Tag(0x7FE0, 0x0008);
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQUENCE_END: u16 = 0xE0DD;
/// Deeper nesting than any real instance has (a handful of levels).
const MAX_DEPTH: usize = 64;
/// More header than any real deflated instance has before its pixel data.
/// A few hundred KiB of deflated zeros inflate to gigabytes, which dicom-rs
/// would then hold in memory (fuzz finding F1b).
const MAX_INFLATED_HEADER: u64 = 64 << 20;
const DEFLATED: [&str; 3] = [
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.95",
    "1.2.840.10008.1.2.4.205",
];

/// How the data set after the file meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
    pub deflated: bool,
}

impl Encoding {
    pub fn of(transfer_syntax: &str) -> Encoding {
        let ts = transfer_syntax.trim_end_matches(['\0', ' ']);
        Encoding {
            explicit_vr: ts != "1.2.840.10008.1.2",
            big_endian: ts == "1.2.840.10008.1.2.2",
            deflated: DEFLATED.contains(&ts),
        }
    }
}

/// A container the walk is inside of, and where it ends if known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Sequence(Option<u64>),
    Item(Option<u64>),
    /// Encapsulated pixel data: its items are fragments, not data sets.
    Fragments,
}

/// Where a file's data set starts, and how it is encoded, as its file meta
/// group says.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSetStart {
    pub offset: u64,
    pub transfer_syntax: String,
    /// Where the kept elements are, when the check was asked to keep some.
    pub kept: Option<Kept>,
}

/// The byte ranges in the file of the top-level elements a check was
/// asked to keep, in file order.
pub type Kept = Vec<Range<u64>>;

/// Checks the file meta group starting at `offset`, then the data set in
/// the transfer syntax it names. Returns where the data set starts.
///
/// The meta group is read here rather than by dicom-rs, which refuses
/// meta groups with unusual UIDs (a letter in the SOP instance UID) that
/// pydicom, px-repack and DCMTK accept.
pub fn check_file(
    file: &File,
    size: u64,
    head: &[u8],
    offset: u64,
    keep: Option<&[Tag]>,
) -> Result<DataSetStart, String> {
    let mut bytes = FileBytes::new(file, head, size);
    // The meta group is explicit VR little endian, whatever follows it.
    let meta = Encoding::of("1.2.840.10008.1.2.1");
    let mut pos = offset;
    let mut transfer_syntax = String::new();
    while group_at(&mut bytes, pos) == Some(0x0002) {
        let Some(header) = read_header(&mut bytes, pos, meta)? else {
            break;
        };
        fits(&mut bytes, &header)?;
        if header.tag == Tag(0x0002, 0x0010) && header.length < 256 {
            let mut uid = vec![0u8; header.length as usize];
            bytes
                .read_at(header.value_at, &mut uid)
                .map_err(|e| e.to_string())?;
            transfer_syntax = String::from_utf8_lossy(&uid)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        pos = header.value_at + u64::from(header.length);
    }
    if transfer_syntax.is_empty() {
        return Err("the file meta group names no transfer syntax".into());
    }
    if !transfer_syntax
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(format!("invalid transfer syntax {transfer_syntax:?}"));
    }
    let encoding = Encoding::of(&transfer_syntax);
    let kept = check_data_set(file, size, head, pos, encoding, keep)?;
    Ok(DataSetStart {
        offset: pos,
        transfer_syntax,
        kept,
    })
}

/// Checks a data set that starts at `offset` in the file. With `keep`,
/// also returns where the top-level elements with those tags are (not for
/// a deflated data set, whose bytes are not the file's).
pub fn check_data_set(
    file: &File,
    size: u64,
    head: &[u8],
    offset: u64,
    encoding: Encoding,
    keep: Option<&[Tag]>,
) -> Result<Option<Kept>, String> {
    if encoding.deflated {
        let mut file = file.try_clone().map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        walk(&mut InflatedBytes::new(file), 0, encoding, &[])?;
        return Ok(None);
    }
    let bytes = &mut FileBytes::new(file, head, size);
    let kept = walk(bytes, offset, encoding, keep.unwrap_or_default())?;
    Ok(keep.map(|_| kept))
}

/// Bytes the walk reads, by position.
trait Bytes {
    /// Reads as much of `buf` as there is at `pos`; returns how much.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Whether there are at least `len` bytes from `pos` on.
    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool>;
}

/// A plain file; its start is already in memory.
struct FileBytes<'a> {
    file: &'a File,
    head: &'a [u8],
    size: u64,
    /// Bytes read past the head, from `ahead_at` on: the walk reads a few
    /// bytes per element, so past the head it reads ahead in large chunks.
    ahead: Vec<u8>,
    ahead_at: u64,
}

impl<'a> FileBytes<'a> {
    fn new(file: &'a File, head: &'a [u8], size: u64) -> Self {
        FileBytes {
            file,
            head,
            size,
            ahead: Vec::new(),
            ahead_at: 0,
        }
    }

    /// Reads ahead from `pos`: at least `len` bytes unless the file ends.
    fn read_ahead(&mut self, pos: u64, len: usize) -> io::Result<()> {
        self.ahead.resize(READ_AHEAD.max(len), 0);
        let mut done = 0;
        while done < self.ahead.len() {
            match self
                .file
                .read_at(&mut self.ahead[done..], pos + done as u64)?
            {
                0 => break,
                n => done += n,
            }
        }
        self.ahead.truncate(done);
        self.ahead_at = pos;
        Ok(())
    }
}

/// How much the walk reads at once past the head.
const READ_AHEAD: usize = 8 * 1024;

/// The `len` bytes from file position `pos` on, if `bytes` (which start at
/// file position `start`) hold them all.
fn slice_at(bytes: &[u8], start: u64, pos: u64, len: usize) -> Option<&[u8]> {
    let from = usize::try_from(pos.checked_sub(start)?).ok()?;
    bytes.get(from..from.checked_add(len)?)
}

impl Bytes for FileBytes<'_> {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        if let Some(bytes) = slice_at(self.head, 0, pos, len) {
            buf.copy_from_slice(bytes);
            return Ok(len);
        }
        if slice_at(&self.ahead, self.ahead_at, pos, len).is_none() {
            self.read_ahead(pos, len)?;
        }
        // From `pos` on, as much as the file has (all of it but at its end).
        let from = (pos - self.ahead_at) as usize;
        let n = len.min(self.ahead.len() - from);
        buf[..n].copy_from_slice(&self.ahead[from..from + n]);
        Ok(n)
    }

    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool> {
        Ok(self.size.saturating_sub(pos) >= len)
    }
}

/// A deflated data set, inflated as the walk moves forward. Only a small
/// window is kept: what the walk has passed is dropped, what it skips is
/// inflated and dropped.
struct InflatedBytes {
    decoder: DeflateDecoder<File>,
    /// Inflated bytes from `window_start` on.
    window: Vec<u8>,
    window_start: u64,
    ended: bool,
}

impl InflatedBytes {
    fn new(file: File) -> Self {
        InflatedBytes {
            decoder: DeflateDecoder::new(file),
            window: Vec::new(),
            window_start: 0,
            ended: false,
        }
    }

    /// Moves the window to start at `pos` (forward only) and fills it to at
    /// least `len` bytes unless the stream ends first.
    fn fill(&mut self, pos: u64, len: usize) -> io::Result<()> {
        if pos < self.window_start {
            return Err(io::Error::other("the walk went backwards"));
        }
        if pos.saturating_add(len as u64) > MAX_INFLATED_HEADER {
            return Err(io::Error::other(format!(
                "the deflated header inflates to more than {} MiB",
                MAX_INFLATED_HEADER >> 20
            )));
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let skip = (pos - self.window_start).min(self.window.len() as u64) as usize;
            self.window.drain(..skip);
            self.window_start += skip as u64;
            if (self.window_start == pos && self.window.len() >= len) || self.ended {
                return Ok(());
            }
            match self.decoder.read(&mut chunk)? {
                0 => self.ended = true,
                n => self.window.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

impl Bytes for InflatedBytes {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.fill(pos, buf.len())?;
        if self.window_start != pos {
            return Ok(0);
        }
        let n = buf.len().min(self.window.len());
        buf[..n].copy_from_slice(&self.window[..n]);
        Ok(n)
    }

    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool> {
        // Inflate (and drop) up to the last byte the element claims.
        match len.checked_sub(1) {
            None => Ok(true),
            Some(last) => Ok(self.read_at(pos + last, &mut [0u8])? == 1),
        }
    }
}

/// The little-endian group number at `pos`, if there is one.
fn group_at(bytes: &mut dyn Bytes, pos: u64) -> Option<u16> {
    let mut raw = [0u8; 2];
    match bytes.read_at(pos, &mut raw) {
        Ok(2) => Some(u16::from_le_bytes(raw)),
        _ => None,
    }
}

struct Header {
    tag: Tag,
    vr: Option<VR>,
    length: u32,
    value_at: u64,
}

/// The element header at `pos`, or `None` at the end of the data (a
/// cut-off header is dicom-rs's to report).
fn read_header(
    bytes: &mut dyn Bytes,
    pos: u64,
    encoding: Encoding,
) -> Result<Option<Header>, String> {
    let mut raw = [0u8; 12];
    let available = bytes.read_at(pos, &mut raw).map_err(|e| e.to_string())?;
    if available < 8 {
        return Ok(None);
    }
    let u16_at = |i: usize| {
        let b = [raw[i], raw[i + 1]];
        if encoding.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |i: usize| {
        let b = [raw[i], raw[i + 1], raw[i + 2], raw[i + 3]];
        if encoding.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let tag = Tag(u16_at(0), u16_at(2));
    if tag.group() == 0xFFFE || !encoding.explicit_vr {
        return Ok(Some(Header {
            tag,
            vr: None,
            length: u32_at(4),
            value_at: pos + 8,
        }));
    }
    let vr = std::str::from_utf8(&raw[4..6])
        .ok()
        .and_then(|s| s.parse::<VR>().ok())
        .ok_or_else(|| format!("element {tag} has no valid VR"))?;
    let long_length = matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    );
    if !long_length {
        return Ok(Some(Header {
            tag,
            vr: Some(vr),
            length: u32::from(u16_at(6)),
            value_at: pos + 8,
        }));
    }
    Ok((available == 12).then(|| Header {
        tag,
        vr: Some(vr),
        length: u32_at(8),
        value_at: pos + 12,
    }))
}

/// Fails when a value's defined length runs past the end of the data.
fn fits(bytes: &mut dyn Bytes, header: &Header) -> Result<(), String> {
    if header.length == UNDEFINED {
        return Ok(());
    }
    match bytes.holds(header.value_at, u64::from(header.length)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "element {} declares {} bytes, more than the data holds",
            header.tag, header.length
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Walks the element headers from `pos` to the top-level pixel data (or
/// the end); returns where the top-level elements tagged in `keep` are.
fn walk(
    bytes: &mut dyn Bytes,
    mut pos: u64,
    encoding: Encoding,
    keep: &[Tag],
) -> Result<Kept, String> {
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
            return Err(format!("sequences nested more than {MAX_DEPTH} deep"));
        }
        let Some(header) = read_header(bytes, pos, encoding)? else {
            if let Some((tag, _)) = current {
                return Err(format!("the data ends inside element {tag}"));
            }
            return Ok(kept);
        };
        let end = (header.length != UNDEFINED).then(|| header.value_at + u64::from(header.length));
        // What runs past the end of the sequence or item holding it would
        // be read differently by dicom-rs (which trusts the inner length)
        // than by this walk.
        if let Some(limit) = innermost_end(&open)
            && end.unwrap_or(header.value_at) > limit
        {
            return Err(format!(
                "element {} runs past the end of the sequence or item that holds it",
                header.tag
            ));
        }
        let start = pos;
        pos = header.value_at;
        if header.tag.group() == 0xFFFE {
            match header.tag.element() {
                _ if open.is_empty() => {
                    return Err(format!("item tag {} outside any sequence", header.tag));
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
    header: &Header,
    encoding: Encoding,
) -> Result<(), String> {
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
        let Some(item) = read_header(bytes, pos, items)? else {
            return Err(format!("the data ends inside element {}", header.tag));
        };
        match (item.tag.group(), item.tag.element()) {
            (0xFFFE, SEQUENCE_END) => return Ok(()),
            (0xFFFE, ITEM) if item.length != UNDEFINED => {
                fits(bytes, &item)?;
                pos = item.value_at + u64::from(item.length);
            }
            _ => {
                return Err(format!(
                    "element {} holds {} where a fragment should be",
                    header.tag, item.tag
                ));
            }
        }
    }
}

/// Fails when a binary value's length is not a multiple of its unit size.
fn whole_units(header: &Header) -> Result<(), String> {
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
        return Err(format!(
            "element {} has {} bytes, not a whole number of {unit}-byte values",
            header.tag, header.length
        ));
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
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn check(bytes: &[u8], encoding: Encoding) -> Result<(), String> {
        let file = file_with(bytes);
        check_data_set(
            &file,
            bytes.len() as u64,
            &bytes[..bytes.len() / 2],
            0,
            encoding,
            None,
        )
        .map(drop)
    }

    fn explicit_le() -> Encoding {
        Encoding::of("1.2.840.10008.1.2.1")
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
        let error = check(&deflated, Encoding::of("1.2.840.10008.1.2.1.99")).unwrap_err();
        assert!(error.contains("inflates to more than 64 MiB"), "{error}");
    }

    #[test]
    fn deflated_data_sets_are_checked_too() {
        let deflated = Encoding::of("1.2.840.10008.1.2.1.99");
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
        check_data_set(&file, size, &bytes[..4], 0, explicit_le(), Some(keep))
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
