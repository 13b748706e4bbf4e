//! The file meta group (group 0002): where the data set starts and which
//! transfer syntax it is in.
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
}

/// Reads the file meta group that starts at `offset`. A missing or
/// garbled transfer syntax is not an error: DCMTK and pydicom then tell
/// the encoding from the data set itself, and so does the caller.
pub fn read_meta_group(bytes: &mut dyn Bytes, offset: u64) -> Result<DataSetStart, HeaderError> {
    let mut pos = offset;
    let mut transfer_syntax = String::new();
    while group_at(bytes, pos)? == Some(0x0002) {
        let Some(header) = read_element_header(bytes, pos, Encoding::meta_group())? else {
            break;
        };
        fits(bytes, &header)?;
        if header.tag == tags::TRANSFER_SYNTAX_UID && header.length < 256 {
            let mut uid = vec![0u8; header.length as usize];
            bytes
                .read_at(header.value_at, &mut uid)
                .map_err(HeaderError::from_io)?;
            transfer_syntax = String::from_utf8_lossy(&uid)
                .trim_end_matches(['\0', ' '])
                .to_string();
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
