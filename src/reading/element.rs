//! Element headers (tag, VR, length) as the bytes encode them.

use dicom_core::{Tag, VR};

use super::HeaderError;
use super::source::Bytes;
use super::transfer_syntax::Encoding;

/// The length of a value that ends with a delimiter.
pub const UNDEFINED: u32 = u32::MAX;

/// Item, item delimiter and sequence delimiter tags: (FFFE,xxxx).
pub const ITEM: Tag = Tag(0xFFFE, 0xE000);
pub const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
pub const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);

/// What an element header says of its VR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Vr {
    /// Implicit VR, and items and delimiters, which have none.
    None,
    Explicit(VR),
    /// Two bytes that are no VR of the standard (two spaces, say). DCMTK
    /// and pydicom read on with a 2-byte length, as for most VRs.
    Nonstandard([u8; 2]),
}

/// One element's header.
#[derive(Debug, Clone)]
pub struct ElementHeader {
    pub tag: Tag,
    pub vr: Vr,
    pub length: u32,
    /// Where the value starts.
    pub value_at: u64,
}

impl ElementHeader {
    /// Where the value ends, if its length is defined.
    pub fn end(&self) -> Option<u64> {
        (self.length != UNDEFINED).then(|| self.value_at + u64::from(self.length))
    }

    pub fn is_delimiter_or_item(&self) -> bool {
        self.tag.group() == 0xFFFE
    }
}

/// The element header at `pos`, or `None` at the end of the data.
pub fn read_element_header(
    bytes: &mut dyn Bytes,
    pos: u64,
    encoding: Encoding,
) -> Result<Option<ElementHeader>, HeaderError> {
    let mut raw = [0u8; 12];
    let available = bytes.read_at(pos, &mut raw).map_err(HeaderError::from_io)?;
    if available == 0 {
        return Ok(None);
    }
    let cut = || {
        HeaderError::Corrupt(format!(
            "the data ends inside the element header at byte {pos}"
        ))
    };
    if available < 8 {
        return Err(cut());
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
    let header = |vr, length, value_at| {
        Some(ElementHeader {
            tag,
            vr,
            length,
            value_at,
        })
    };
    if tag.group() == 0xFFFE || !encoding.explicit_vr {
        return Ok(header(Vr::None, u32_at(4), pos + 8));
    }
    let code = [raw[4], raw[5]];
    let vr = match VR::from_binary(code) {
        Some(vr) => Vr::Explicit(vr),
        None => Vr::Nonstandard(code),
    };
    match vr {
        Vr::Explicit(vr) if has_long_length(vr) => {
            if available < 12 {
                return Err(cut());
            }
            Ok(header(Vr::Explicit(vr), u32_at(8), pos + 12))
        }
        vr => Ok(header(vr, u32::from(u16_at(6)), pos + 8)),
    }
}

/// Whether explicit VR gives `vr` two reserved bytes and a 4-byte length
/// (the others have a 2-byte length).
pub fn has_long_length(vr: VR) -> bool {
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
pub fn fits(bytes: &mut dyn Bytes, header: &ElementHeader) -> Result<(), HeaderError> {
    if header.length == UNDEFINED {
        return Ok(());
    }
    if bytes
        .holds(header.value_at, u64::from(header.length))
        .map_err(HeaderError::from_io)?
    {
        Ok(())
    } else {
        Err(HeaderError::Corrupt(format!(
            "element {} declares {} bytes, more than the data holds",
            header.tag, header.length
        )))
    }
}
