//! What a transfer syntax UID says about how the data set is encoded.

use dicom_core::VR;
use dicom_dictionary_std::uids;

/// Explicit VR big endian: retired (dicom-rs marks its name deprecated),
/// but PACS still send it.
#[allow(deprecated)]
pub const EXPLICIT_VR_BIG_ENDIAN: &str = uids::EXPLICIT_VR_BIG_ENDIAN;

/// The transfer syntaxes whose whole data set is deflated (the others
/// compress only the pixel data, if anything).
const DEFLATED: [&str; 3] = [
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    uids::JPIP_REFERENCED_DEFLATE,
    uids::JPIPHTJ2K_REFERENCED_DEFLATE,
];

/// How the data set after the file meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
    pub deflated: bool,
}

impl Encoding {
    /// The encoding `transfer_syntax` names. Every UID but implicit VR
    /// little endian and explicit VR big endian is explicit VR little
    /// endian in its data set (compressed syntaxes compress only the
    /// pixel data).
    pub fn of(transfer_syntax: &str) -> Encoding {
        let ts = transfer_syntax.trim_end_matches(['\0', ' ']);
        Encoding {
            explicit_vr: ts != uids::IMPLICIT_VR_LITTLE_ENDIAN,
            big_endian: ts == EXPLICIT_VR_BIG_ENDIAN,
            deflated: DEFLATED.contains(&ts),
        }
    }

    /// The file meta group's own encoding, whatever follows it.
    pub fn meta_group() -> Encoding {
        Encoding::of(uids::EXPLICIT_VR_LITTLE_ENDIAN)
    }

    /// The encoding of a UN value of undefined length, whatever the data
    /// set's (PS3.5 6.2.2).
    pub fn implicit_little_endian() -> Encoding {
        Encoding::of(uids::IMPLICIT_VR_LITTLE_ENDIAN)
    }

    /// The encoding of a bare data set (no file meta group) whose first
    /// element header is `first`, or `None` if it does not look like DICOM
    /// at all: data sets start with a low, even group (0008 in practice).
    pub fn detect(first: &[u8]) -> Option<Encoding> {
        let encoding = Encoding::guess(first)?;
        let group = match encoding.big_endian {
            true => u16::from_be_bytes([first[0], first[1]]),
            false => u16::from_le_bytes([first[0], first[1]]),
        };
        if group == 0 || group > 0x0028 || group % 2 == 1 {
            return None;
        }
        if !encoding.explicit_vr {
            // Implicit VR: the next four bytes are a length; a sane one is
            // far smaller than 64 KiB for the first (identifying) elements.
            let len = u32::from_le_bytes([first[4], first[5], first[6], first[7]]);
            if len >= 0x1_0000 {
                return None;
            }
        }
        Some(encoding)
    }

    /// The encoding the first element header `first` shows, as DCMTK and
    /// pydicom tell it when a file's transfer syntax is missing or wrong:
    /// explicit VR if a VR stands where it would, little endian unless
    /// the group reads smaller the other way round (and the VR is
    /// explicit: there is no implicit big endian).
    pub fn guess(first: &[u8]) -> Option<Encoding> {
        if first.len() < 8 {
            return None;
        }
        let explicit_vr = VR::from_binary([first[4], first[5]]).is_some();
        let group_le = u16::from_le_bytes([first[0], first[1]]);
        let group_be = u16::from_be_bytes([first[0], first[1]]);
        Some(Encoding {
            explicit_vr,
            big_endian: explicit_vr && group_be < group_le,
            deflated: false,
        })
    }

    /// The transfer syntax of a data set in this encoding, not deflated:
    /// what dicom-rs is told of the bytes the walk kept.
    pub fn plain_syntax(self) -> &'static str {
        match (self.explicit_vr, self.big_endian) {
            (false, _) => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            (true, false) => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            (true, true) => EXPLICIT_VR_BIG_ENDIAN,
        }
    }
}
