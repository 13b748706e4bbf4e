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
use meta_group::{DataSetStart, read_meta_group};
use source::FileBytes;
use transfer_syntax::Encoding;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
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

impl ReadError {
    /// Whether the file's content is at fault (not DICOM, or broken), as
    /// opposed to the system that could not open or read it.
    pub fn is_bad_content(&self) -> bool {
        matches!(
            self,
            ReadError::Empty | ReadError::NotDicom(_) | ReadError::Corrupt(_)
        )
    }

    /// A failed read: the data's fault when it is invalid, else the system's.
    fn from_io(error: io::Error) -> ReadError {
        if error.kind() == io::ErrorKind::InvalidData {
            ReadError::Corrupt(error.to_string())
        } else {
            ReadError::Read(error)
        }
    }
}

/// The data set of one instance, up to (not including) its pixel data.
pub struct Header {
    dataset: InMemDicomObject,
    big_endian: bool,
}

/// Everything from (7FE0,0008) Float Pixel Data on is image data;
/// reading up to there reads the whole header.
const WHOLE_HEADER: Tag = tags::FLOAT_PIXEL_DATA;

/// Which top-level elements of a header to decode.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// All of them (for the records written once per series).
    Whole,
    /// Only these (and SpecificCharacterSet, which says how to decode
    /// them): dicom-rs then parses a handful of elements, not hundreds.
    /// (A deflated data set is read in full up to the last of them.)
    Only(&'a [Tag]),
}

/// Reads the whole header of the DICOM file at `path`.
pub fn read_whole_header(path: &Path) -> Result<Header, ReadError> {
    read_path(path, Wanted::Whole)
}

/// Reads only the top-level elements `tags` of the DICOM file at `path`.
pub fn read_elements(path: &Path, tags: &[Tag]) -> Result<Header, ReadError> {
    read_path(path, Wanted::Only(tags))
}

fn read_path(path: &Path, wanted: Wanted) -> Result<Header, ReadError> {
    let file = File::open(path).map_err(ReadError::Open)?;
    let metadata = file.metadata().map_err(ReadError::Open)?;
    read_header(&file, &metadata, wanted)
}

/// Reads the `wanted` elements of the header of `file`, which is open at
/// its start and has `metadata`. The structure of the whole header is
/// checked whatever is wanted, so a file cut short in its private groups
/// is refused before it is placed, not only when a record needs the rest.
pub fn read_header(file: &File, metadata: &Metadata, wanted: Wanted) -> Result<Header, ReadError> {
    if metadata.is_dir() {
        return Err(ReadError::IsDirectory);
    }
    // One read brings in the whole header of most files: the structure
    // check and dicom-rs both work from it.
    let head = source::read_head(file).map_err(ReadError::Read)?;
    if head.is_empty() {
        return Err(ReadError::Empty);
    }
    let mut keep = Vec::new();
    // Where dicom-rs stops.
    let until = match wanted {
        Wanted::Whole => WHOLE_HEADER,
        Wanted::Only(tags) => {
            keep.extend(tags);
            keep.push(tags::SPECIFIC_CHARACTER_SET);
            let last = keep.iter().max().copied().unwrap_or(Tag(0, 0));
            after(last).min(WHOLE_HEADER)
        }
    };
    let keep = matches!(wanted, Wanted::Only(_)).then_some(keep.as_slice());
    let size = metadata.len();
    let start = match Framing::of(&head)? {
        Framing::BareDataSet(transfer_syntax) => DataSetStart {
            offset: 0,
            transfer_syntax: transfer_syntax.to_string(),
        },
        framing => {
            let offset = framing.meta_group_offset().unwrap_or(0);
            read_meta_group(&mut FileBytes::new(file, &head, size), offset)?
        }
    };
    let encoding = Encoding::of(&start.transfer_syntax);
    let kept = structure::check_structure(file, size, &head, start.offset, encoding, keep)?;
    let mut dataset = decode::decode(file, &head, &start, kept.as_deref(), until)?;
    charset::apply_code_extensions(&mut dataset);
    Ok(Header {
        dataset,
        big_endian: encoding.big_endian,
    })
}

impl Header {
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.dataset
    }

    /// Whether binary values were stored big-endian (needed to render
    /// OB/OW-like values as the bytes pydicom shows).
    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// The SOPInstanceUID, if the file has a usable one (not blank): the
    /// identity of the instance.
    pub fn instance_uid(&self) -> Option<String> {
        non_blank(self.text(tags::SOP_INSTANCE_UID))
    }

    /// The element's value as pydicom shows it, or `None` if the file
    /// lacks the element.
    pub fn text(&self, tag: Tag) -> Option<String> {
        self.dataset
            .get(tag)
            .map(|element| pytext::element_text(element, self.big_endian))
    }
}

/// The tag right after `tag`, to read up to and including `tag`.
fn after(tag: Tag) -> Tag {
    match tag.element() {
        0xFFFF => Tag(tag.group() + 1, 0),
        element => Tag(tag.group(), element + 1),
    }
}

/// A value that is not just spaces, or `None`.
pub fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}
