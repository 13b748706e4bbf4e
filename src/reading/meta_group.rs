//! The file meta group (group 0002): where the data set starts, which
//! transfer syntax it is in, and who sent it.
//!
//! Read here rather than by dicom-rs, which refuses meta groups with
//! unusual UIDs (a letter in the SOP instance UID) that pydicom,
//! px-repack and DCMTK accept.

use dicom_dictionary_std::tags;

use super::HeaderError;
use super::element::{fits, read_element_header};
use super::source::Bytes;
use super::transfer_syntax::Encoding;

/// Where a file's data set starts, and the transfer syntax the meta group
/// names, if it names one that is a UID at all.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSetStart {
    pub offset: u64,
    pub transfer_syntax: Option<String>,
    /// SourceApplicationEntityTitle, when the meta group has a usable one:
    /// the calling AE title of the association that brought the file.
    pub source_ae_title: Option<String>,
}

/// Longest value of a meta group element that is read: its UIDs and AE
/// titles are 64 bytes at most; a longer one is garbled and left unread.
const MAX_READ: u32 = 256;

/// Reads the file meta group that starts at `offset`. A missing or
/// garbled transfer syntax is not an error: DCMTK and pydicom then tell
/// the encoding from the data set itself, and so does the caller.
pub fn read_meta_group(bytes: &mut dyn Bytes, offset: u64) -> Result<DataSetStart, HeaderError> {
    let mut pos = offset;
    let mut transfer_syntax = String::new();
    let mut source_ae_title = None;
    while group_at(bytes, pos)? == Some(0x0002) {
        let Some(header) = read_element_header(bytes, pos, Encoding::meta_group())? else {
            break;
        };
        fits(bytes, &header)?;
        let wanted = [
            tags::TRANSFER_SYNTAX_UID,
            tags::SOURCE_APPLICATION_ENTITY_TITLE,
        ];
        if wanted.contains(&header.tag) && header.length < MAX_READ {
            let mut raw = vec![0u8; header.length as usize];
            bytes
                .read_at(header.value_at, &mut raw)
                .map_err(HeaderError::from_io)?;
            let text = String::from_utf8_lossy(&raw);
            if header.tag == tags::TRANSFER_SYNTAX_UID {
                transfer_syntax = text.trim_end_matches(['\0', ' ']).to_string();
            } else {
                // AE titles are padded with spaces, and their leading
                // spaces are not significant either.
                let title = text.trim_matches([' ', '\0']);
                source_ae_title = (!title.is_empty()).then(|| title.to_string());
            }
        }
        pos = header.value_at + u64::from(header.length);
    }
    let is_uid = !transfer_syntax.is_empty()
        && transfer_syntax
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    Ok(DataSetStart {
        offset: pos,
        transfer_syntax: is_uid.then_some(transfer_syntax),
        source_ae_title,
    })
}

/// The little-endian group number at `pos`, if there is one.
fn group_at(bytes: &mut dyn Bytes, pos: u64) -> Result<Option<u16>, HeaderError> {
    let mut raw = [0u8; 2];
    match bytes.read_at(pos, &mut raw).map_err(HeaderError::from_io)? {
        2 => Ok(Some(u16::from_le_bytes(raw))),
        _ => Ok(None),
    }
}
