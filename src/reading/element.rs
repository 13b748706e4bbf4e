//! Element headers (tag, VR, length) as the bytes encode them.

use dicom_core::{Tag, VR};

use super::ReadError;
use super::source::Bytes;
use super::transfer_syntax::Encoding;

/// The length of a value that ends with a delimiter.
pub const UNDEFINED: u32 = u32::MAX;

/// One element's header.
pub struct ElementHeader {
    pub tag: Tag,
    /// `None` in implicit VR, and for items and delimiters.
    pub vr: Option<VR>,
    pub length: u32,
    /// Where the value starts.
    pub value_at: u64,
}

impl ElementHeader {
    /// Where the value ends, if its length is defined.
    pub fn end(&self) -> Option<u64> {
        (self.length != UNDEFINED).then(|| self.value_at + u64::from(self.length))
    }
}

/// The element header at `pos`, or `None` at the end of the data (a
/// cut-off header is dicom-rs's to report).
pub fn read_element_header(
    bytes: &mut dyn Bytes,
    pos: u64,
    encoding: Encoding,
) -> Result<Option<ElementHeader>, ReadError> {
    let mut raw = [0u8; 12];
    let available = bytes.read_at(pos, &mut raw).map_err(ReadError::from_io)?;
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
        return Ok(Some(ElementHeader {
            tag,
            vr: None,
            length: u32_at(4),
            value_at: pos + 8,
        }));
    }
    let vr = std::str::from_utf8(&raw[4..6])
        .ok()
        .and_then(|s| s.parse::<VR>().ok())
        .ok_or_else(|| ReadError::Corrupt(format!("element {tag} has no valid VR")))?;
    if !has_long_length(vr) {
        return Ok(Some(ElementHeader {
            tag,
            vr: Some(vr),
            length: u32::from(u16_at(6)),
            value_at: pos + 8,
        }));
    }
    Ok((available == 12).then(|| ElementHeader {
        tag,
        vr: Some(vr),
        length: u32_at(8),
        value_at: pos + 12,
    }))
}

/// Whether explicit VR gives `vr` two reserved bytes and a 4-byte length
/// (the others have a 2-byte length).
fn has_long_length(vr: VR) -> bool {
    matches!(
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
    )
}

/// Fails when a value's defined length runs past the end of the data.
pub fn fits(bytes: &mut dyn Bytes, header: &ElementHeader) -> Result<(), ReadError> {
    if header.length == UNDEFINED {
        return Ok(());
    }
    if bytes
        .holds(header.value_at, u64::from(header.length))
        .map_err(ReadError::from_io)?
    {
        Ok(())
    } else {
        Err(ReadError::Corrupt(format!(
            "element {} declares {} bytes, more than the data holds",
            header.tag, header.length
        )))
    }
}
