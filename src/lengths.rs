//! A check of the element lengths a file declares, against what the file
//! holds, before dicom-rs reads it. dicom-rs allocates an element's
//! declared length before reading its value, so one corrupt or hostile
//! length of 4 GiB would cost 4 GiB of memory for a file of a few bytes.
//!
//! The walk reads only element headers (tag, VR, length), descending into
//! sequences and items, and stops where dicom-rs will stop (at the latest
//! at the top-level pixel data): everything dicom-rs will read is covered.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = u32::MAX;
/// Where image data starts: (7FE0,0008) Float Pixel Data.
const PIXEL_DATA_START: Tag = Tag(0x7FE0, 0x0008);
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQUENCE_END: u16 = 0xE0DD;

/// How the data set after the file meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
}

impl Encoding {
    /// The encoding of a transfer syntax, or `None` when the data set is
    /// compressed (deflate) and its lengths cannot be seen in the file.
    pub fn of(transfer_syntax: &str) -> Option<Encoding> {
        match transfer_syntax.trim_end_matches(['\0', ' ']) {
            "1.2.840.10008.1.2" => Some(Encoding {
                explicit_vr: false,
                big_endian: false,
            }),
            "1.2.840.10008.1.2.2" => Some(Encoding {
                explicit_vr: true,
                big_endian: true,
            }),
            "1.2.840.10008.1.2.1.99" | "1.2.840.10008.1.2.4.95" | "1.2.840.10008.1.2.4.205" => None,
            _ => Some(Encoding {
                explicit_vr: true,
                big_endian: false,
            }),
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
}

/// Checks the file meta group starting at `offset`, then the data set in
/// the transfer syntax it names. Returns where the data set starts.
///
/// The meta group is read here rather than by dicom-rs, which refuses
/// meta groups with unusual UIDs (a letter in the SOP instance UID) that
/// pydicom, px-repack and DCMTK accept.
pub fn check_file(
    file: &File,
    head: &[u8],
    offset: u64,
    until: Tag,
) -> Result<DataSetStart, String> {
    let walk = Walk::new(file, head)?;
    let explicit_le = Encoding {
        explicit_vr: true,
        big_endian: false,
    };
    let mut pos = offset;
    let mut transfer_syntax = String::new();
    // The meta group is explicit VR little endian, whatever follows it.
    while walk.group_at(pos) == Some(0x0002) {
        let Some(header) = walk.header(pos, explicit_le)? else {
            break;
        };
        walk.fits(&header)?;
        if header.tag == Tag(0x0002, 0x0010) && header.length < 256 {
            let mut uid = vec![0u8; header.length as usize];
            walk.read_exact(&mut uid, header.value_at)?;
            transfer_syntax = String::from_utf8_lossy(&uid)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        pos = header.value_at + u64::from(header.length);
    }
    if transfer_syntax.is_empty() {
        return Err("the file meta group names no transfer syntax".into());
    }
    if let Some(encoding) = Encoding::of(&transfer_syntax) {
        walk.data_set(pos, encoding, until)?;
    }
    Ok(DataSetStart {
        offset: pos,
        transfer_syntax,
    })
}

/// Checks a data set that starts at `offset` with no file meta group.
pub fn check_data_set(
    file: &File,
    head: &[u8],
    offset: u64,
    encoding: Encoding,
    until: Tag,
) -> Result<(), String> {
    Walk::new(file, head)?.data_set(offset, encoding, until)
}

struct Header {
    tag: Tag,
    vr: Option<VR>,
    length: u32,
    value_at: u64,
}

struct Walk<'a> {
    file: &'a File,
    /// The start of the file, already read: most headers lie within it.
    head: &'a [u8],
    size: u64,
}

impl<'a> Walk<'a> {
    fn new(file: &'a File, head: &'a [u8]) -> Result<Self, String> {
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        Ok(Walk { file, head, size })
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let start = usize::try_from(at).unwrap_or(usize::MAX);
        match self.head.get(start..start.saturating_add(buf.len())) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => self.file.read_exact_at(buf, at),
        }
    }

    fn read_exact(&self, buf: &mut [u8], at: u64) -> Result<(), String> {
        self.read_at(buf, at).map_err(|e| e.to_string())
    }

    /// The (little-endian) group number at `pos`, if the file is that long.
    fn group_at(&self, pos: u64) -> Option<u16> {
        let mut bytes = [0u8; 2];
        self.read_at(&mut bytes, pos).ok()?;
        Some(u16::from_le_bytes(bytes))
    }

    /// The element header at `pos`, or `None` at the end of the file (a
    /// cut-off header is dicom-rs's to report).
    fn header(&self, pos: u64, encoding: Encoding) -> Result<Option<Header>, String> {
        let mut bytes = [0u8; 12];
        let available = self.size.saturating_sub(pos).min(12) as usize;
        if available < 8 {
            return Ok(None);
        }
        match self.read_at(&mut bytes[..available], pos) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        let u16_at = |i: usize| {
            let b = [bytes[i], bytes[i + 1]];
            if encoding.big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| {
            let b = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
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
        let vr = std::str::from_utf8(&bytes[4..6])
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
        Ok(Some(if long_length {
            if available < 12 {
                return Ok(None);
            }
            Header {
                tag,
                vr: Some(vr),
                length: u32_at(8),
                value_at: pos + 12,
            }
        } else {
            Header {
                tag,
                vr: Some(vr),
                length: u32::from(u16_at(6)),
                value_at: pos + 8,
            }
        }))
    }

    /// Fails when a defined length runs past the end of the file.
    fn fits(&self, header: &Header) -> Result<(), String> {
        let remaining = self.size.saturating_sub(header.value_at);
        if header.length != UNDEFINED && u64::from(header.length) > remaining {
            return Err(format!(
                "element {} declares {} bytes but the file has {remaining} left",
                header.tag, header.length
            ));
        }
        Ok(())
    }

    fn data_set(&self, mut pos: u64, encoding: Encoding, until: Tag) -> Result<(), String> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            // Leave the containers of defined length that end here.
            while let Some(Open::Sequence(Some(end)) | Open::Item(Some(end))) = open.last() {
                if pos < *end {
                    break;
                }
                open.pop();
            }
            let Some(header) = self.header(pos, encoding)? else {
                return Ok(());
            };
            self.fits(&header)?;
            let end =
                (header.length != UNDEFINED).then(|| header.value_at + u64::from(header.length));
            pos = header.value_at;
            if header.tag.group() == 0xFFFE {
                match header.tag.element() {
                    ITEM if open.last() == Some(&Open::Fragments) => pos = end.unwrap_or(pos),
                    ITEM => open.push(Open::Item(end)),
                    ITEM_END | SEQUENCE_END => {
                        open.pop();
                    }
                    _ => {}
                }
                continue;
            }
            if open.is_empty() && header.tag >= until.min(PIXEL_DATA_START) {
                return Ok(());
            }
            let sequence =
                header.vr == Some(VR::SQ) || (header.vr.is_none() && is_sequence(header.tag));
            match (sequence, end) {
                (true, end) => open.push(Open::Sequence(end)),
                // An undefined length on anything else is encapsulated data.
                (false, None) => open.push(Open::Fragments),
                (false, Some(end)) => pos = end,
            }
        }
    }
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

    const EXPLICIT_LE: Encoding = Encoding {
        explicit_vr: true,
        big_endian: false,
    };

    #[test]
    fn sane_lengths_pass() {
        // (0010,0010) PN "Doe^John" then (0010,0020) LO "ID"
        let mut bytes = vec![0x10, 0, 0x10, 0, b'P', b'N', 8, 0];
        bytes.extend_from_slice(b"Doe^John");
        bytes.extend_from_slice(&[0x10, 0, 0x20, 0, b'L', b'O', 2, 0, b'I', b'D']);
        assert_eq!(
            check_data_set(
                &file_with(&bytes),
                &bytes[..bytes.len() / 2],
                0,
                EXPLICIT_LE,
                PIXEL_DATA_START
            ),
            Ok(())
        );
    }

    #[test]
    fn a_length_past_the_end_is_refused() {
        let mut bytes = vec![0x10, 0, 0x10, 0, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        bytes.extend_from_slice(b"short");
        let error = check_data_set(
            &file_with(&bytes),
            &bytes[..bytes.len() / 2],
            0,
            EXPLICIT_LE,
            PIXEL_DATA_START,
        )
        .unwrap_err();
        assert!(error.contains("4294967280"), "{error}");
    }

    #[test]
    fn lengths_inside_sequences_are_checked() {
        // (0008,1140) SQ undefined, item undefined, (0008,1150) UI len 0xFFF0 (too long)
        let mut bytes = vec![
            0x08, 0, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0x08, 0, 0x50, 0x11, b'U', b'I', 0xF0, 0xFF, b'1', b'2']);
        assert!(
            check_data_set(
                &file_with(&bytes),
                &bytes[..bytes.len() / 2],
                0,
                EXPLICIT_LE,
                PIXEL_DATA_START
            )
            .is_err()
        );
    }

    #[test]
    fn the_walk_stops_at_top_level_pixel_data() {
        // (7FE0,0010) OB of undefined length followed by garbage
        let mut bytes = vec![
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        bytes.extend_from_slice(&[0xAB; 40]);
        assert_eq!(
            check_data_set(
                &file_with(&bytes),
                &bytes[..bytes.len() / 2],
                0,
                EXPLICIT_LE,
                PIXEL_DATA_START
            ),
            Ok(())
        );
    }
}
