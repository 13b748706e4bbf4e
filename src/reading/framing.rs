//! How a file's first bytes say it is framed: the standard Part 10 form,
//! the same without its preamble, or a bare data set.

use dicom_dictionary_std::uids;

use super::ReadError;
use super::transfer_syntax::EXPLICIT_VR_BIG_ENDIAN;

/// How a file is framed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// 128-byte preamble, `DICM`, file meta group, data set (the standard form).
    Preamble,
    /// `DICM` and the file meta group without the preamble.
    NoPreamble,
    /// A bare data set, as old modalities and some archives write it,
    /// in the transfer syntax guessed from its first element.
    BareDataSet(&'static str),
}

impl Framing {
    /// Tells the framing from the first bytes of a file.
    pub fn of(start: &[u8]) -> Result<Framing, ReadError> {
        if start.len() >= 132 && &start[128..132] == b"DICM" {
            return Ok(Framing::Preamble);
        }
        if start.len() >= 4 && &start[..4] == b"DICM" {
            return Ok(Framing::NoPreamble);
        }
        bare_data_set_syntax(start)
            .map(Framing::BareDataSet)
            .ok_or_else(|| {
                ReadError::NotDicom(
                    "no DICM marker and no recognisable data set at the start".into(),
                )
            })
    }

    /// Where the file meta group starts, for the framings that have one.
    pub fn meta_group_offset(self) -> Option<u64> {
        match self {
            Framing::Preamble => Some(132),
            Framing::NoPreamble => Some(4),
            Framing::BareDataSet(_) => None,
        }
    }
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
