//! Reading a DICOM file's header: every element before the pixel data,
//! never the pixel data itself, so memory does not grow with image size.
//!
//! The steps: the first bytes tell the [framing](framing); the
//! [file meta group](meta_group) names the [transfer syntax](transfer_syntax);
//! a [walk over the element headers](structure) checks every length and
//! every nesting against what the file holds and finds the wanted
//! elements; dicom-rs then [decodes](decode) just those. The decoded
//! values are shown as pydicom shows them ([`pytext`]), in the character
//! set the file names ([`charset`]); [`keywords`] maps keywords to tags.

mod captured;
mod charset;
mod decode;
mod element;
mod framing;
pub mod keywords;
mod meta_group;
pub mod pytext;
mod source;
mod structure;
mod transfer_syntax;

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use framing::Framing;
use meta_group::read_meta_group;
use source::{Bytes, FileBytes};
use structure::Keep;
use transfer_syntax::Encoding;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("cannot open: {0}")]
    Open(io::Error),
    /// The system failed to read the file (not the file's fault).
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error("is a directory, not a file")]
    IsDirectory,
    #[error("not a DICOM file: the file is empty")]
    Empty,
    #[error("not a DICOM file: {0}")]
    NotDicom(String),
    #[error("corrupt or cut short: {0}")]
    Corrupt(String),
}

impl HeaderError {
    /// Whether the file's content is at fault (not DICOM, or broken), as
    /// opposed to the system that could not open or read it.
    pub fn is_bad_content(&self) -> bool {
        matches!(
            self,
            HeaderError::Empty | HeaderError::NotDicom(_) | HeaderError::Corrupt(_)
        )
    }

    /// A failed read: the data's fault when it is invalid, else the system's.
    fn from_io(error: io::Error) -> HeaderError {
        if error.kind() == io::ErrorKind::InvalidData {
            HeaderError::Corrupt(error.to_string())
        } else {
            HeaderError::Read(error)
        }
    }
}

/// The data set of one instance as far as a read wanted it (never its
/// pixel data), and notes on how it was read.
pub struct Header {
    dataset: InMemDicomObject,
    /// How the data set is encoded in the file.
    encoding: Encoding,
    /// The file meta group's SourceApplicationEntityTitle.
    source_ae_title: Option<String>,
    notes: Vec<String>,
}

/// Which top-level elements of a header to decode.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// Every one that has a keyword (for the records written once per
    /// series), the pixel data excepted; also those after the image data.
    Whole,
    /// Only these (and SpecificCharacterSet, which says how to decode
    /// them): dicom-rs then parses a handful of elements, not hundreds.
    Only(&'a [Tag]),
}

/// Reads the whole header of the DICOM file at `path`.
pub fn read_whole_header(path: &Path) -> Result<Header, HeaderError> {
    read_path(path, Wanted::Whole)
}

/// Reads only the top-level elements `tags` of the DICOM file at `path`.
pub fn read_elements(path: &Path, tags: &[Tag]) -> Result<Header, HeaderError> {
    read_path(path, Wanted::Only(tags))
}

fn read_path(path: &Path, wanted: Wanted) -> Result<Header, HeaderError> {
    let file = File::open(path).map_err(HeaderError::Open)?;
    let metadata = file.metadata().map_err(HeaderError::Open)?;
    read_header(&file, &metadata, wanted)
}

/// Reads the `wanted` elements of the header of `file`, which is open at
/// its start and has `metadata`. The structure of the whole header is
/// checked whatever is wanted, so a file cut short in its private groups
/// is refused before it is placed, not only when a record needs the rest.
/// A file the walk vouches for does not fail later: what dicom-rs cannot
/// decode is left out, with a note.
pub fn read_header(
    file: &File,
    metadata: &Metadata,
    wanted: Wanted,
) -> Result<Header, HeaderError> {
    if metadata.is_dir() {
        return Err(HeaderError::IsDirectory);
    }
    // One read brings in the whole header of most files.
    let head = source::read_head(file).map_err(HeaderError::Read)?;
    if head.is_empty() {
        return Err(HeaderError::Empty);
    }
    let size = metadata.len();
    let mut notes = Vec::new();
    let (offset, encoding, source_ae_title) = match Framing::of(&head)? {
        Framing::BareDataSet(encoding) => (0, encoding, None),
        framing => {
            let offset = framing.meta_group_offset().unwrap_or(0);
            let bytes = &mut FileBytes::new(file, &head, size);
            let start = read_meta_group(bytes, offset)?;
            if start.offset == offset && size <= offset {
                return Err(HeaderError::NotDicom(
                    "nothing follows the DICM marker".into(),
                ));
            }
            let encoding = data_set_encoding(
                bytes,
                start.offset,
                start.transfer_syntax.as_deref(),
                &mut notes,
            )?;
            (start.offset, encoding, start.source_ae_title)
        }
    };
    let mut keep = Vec::new();
    let keep = match wanted {
        Wanted::Whole => Keep::Keywords,
        Wanted::Only(tags) => {
            keep.extend(tags);
            keep.push(tags::SPECIFIC_CHARACTER_SET);
            Keep::Tags(&keep)
        }
    };
    let mut capture = structure::check_structure(file, size, &head, offset, encoding, keep)?;
    let (mut dataset, left_out) = decode::decode(&capture, encoding.big_endian);
    notes.append(&mut capture.notes);
    notes.extend(left_out);
    charset::apply_code_extensions(&mut dataset);
    Ok(Header {
        dataset,
        encoding,
        source_ae_title,
        notes,
    })
}

/// The encoding of the data set at `offset`: what `transfer_syntax` names,
/// unless it names none (or a garbled one), or the data set's first element
/// shows otherwise; then, as DCMTK and pydicom do, what that element shows.
fn data_set_encoding(
    bytes: &mut dyn Bytes,
    offset: u64,
    transfer_syntax: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Encoding, HeaderError> {
    let mut first = [0u8; 8];
    let got = bytes
        .read_at(offset, &mut first)
        .map_err(HeaderError::from_io)?;
    let detected = Encoding::guess(&first[..got]);
    let declared = transfer_syntax.map(Encoding::of);
    Ok(match (declared, detected) {
        (Some(declared), _) if declared.deflated => declared,
        // A VR where the syntax says none, or none where it says one: the
        // first element decides, as pydicom does; the byte order stays the
        // declared one (a group that reads smaller swapped says nothing:
        // DCMTK and pydicom keep to the syntax).
        (Some(declared), Some(detected)) if declared.explicit_vr != detected.explicit_vr => {
            let encoding = Encoding {
                explicit_vr: detected.explicit_vr,
                big_endian: detected.explicit_vr && declared.big_endian,
                deflated: false,
            };
            notes.push(format!(
                "the file meta group names transfer syntax {}, but the data set is encoded as {}: read as the latter",
                transfer_syntax.unwrap_or_default(),
                encoding.plain_syntax()
            ));
            encoding
        }
        (Some(declared), _) => declared,
        (None, detected) => {
            notes.push("the file meta group names no (valid) transfer syntax: the encoding is told from the data set".into());
            match detected {
                // Explicit VR: the byte order in which the dictionary knows
                // the first tag, else little endian, as DCMTK tells it.
                Some(detected) if detected.explicit_vr => Encoding {
                    big_endian: first_tag_big_endian(&first),
                    ..detected
                },
                Some(detected) => detected,
                // An empty data set: any encoding reads it.
                None => Encoding::of(dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN),
            }
        }
    })
}

/// Whether the first element header `first` (8 bytes or more) is big
/// endian, told as DCMTK tells it: by the byte order in which the
/// dictionary knows its tag; when it knows both (a group length, say), big
/// endian only if that makes a group of 0x00FF or below out of a larger one;
/// when it knows neither, little endian.
fn first_tag_big_endian(first: &[u8; 8]) -> bool {
    let le = Tag(
        u16::from_le_bytes([first[0], first[1]]),
        u16::from_le_bytes([first[2], first[3]]),
    );
    let be = Tag(
        u16::from_be_bytes([first[0], first[1]]),
        u16::from_be_bytes([first[2], first[3]]),
    );
    match (keywords::vr_of(le).is_some(), keywords::vr_of(be).is_some()) {
        (false, true) => true,
        (true, true) => le.group() > 0xFF && be.group() <= 0xFF,
        _ => false,
    }
}

impl Header {
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.dataset
    }

    /// Whether binary values were stored big-endian (needed to render
    /// OB/OW-like values as the bytes pydicom shows).
    pub fn big_endian(&self) -> bool {
        self.encoding.big_endian
    }

    /// Whether the data set is in explicit VR (pydicom prints the VRs it
    /// makes up for implicit-VR elements differently).
    pub fn explicit_vr(&self) -> bool {
        self.encoding.explicit_vr
    }

    /// The SOPInstanceUID, if the file has a usable one (not blank): the
    /// identity of the instance.
    pub fn instance_uid(&self) -> Option<String> {
        non_blank(self.text(tags::SOP_INSTANCE_UID))
    }

    /// Values cut, elements left out, unusual encodings: one line each,
    /// for the user.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The element's value as pydicom shows it, or `None` if the file
    /// lacks the element. Of the file meta group, only the
    /// SourceApplicationEntityTitle is known.
    pub fn text(&self, tag: Tag) -> Option<String> {
        if tag == tags::SOURCE_APPLICATION_ENTITY_TITLE {
            return self.source_ae_title.clone();
        }
        self.dataset
            .get(tag)
            .map(|element| pytext::element_text(element, self.encoding.big_endian))
    }
}

/// A value that is not just spaces, or `None`.
pub fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}
