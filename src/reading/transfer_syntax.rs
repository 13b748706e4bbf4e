//! What a transfer syntax UID says about how the data set is encoded.

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
}
