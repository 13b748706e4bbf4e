//! What the structure walk keeps of the elements a read wants, for
//! dicom-rs to decode: bounded copies, whatever the file declares.

use dicom_core::{Tag, VR};

use super::transfer_syntax::Encoding;

/// Most bytes of one value that are kept (a multiple of every value size,
/// and small enough for a 2-byte length): a longer value is cut, so that
/// neither memory nor a record grows with what a sender chose.
pub const VALUE_LIMIT: u32 = 0xFFF8;

/// Most bytes of one sequence that are kept (a larger one is left out).
pub const SEQUENCE_LIMIT: u64 = 1 << 20;

/// Most bytes one read keeps in all.
pub const BUDGET: u64 = 4 << 20;

/// Most elements the kept sequences of one read may hold in all: decoded,
/// each costs a few hundred bytes of memory, whatever its size in the file.
pub const NESTED_ELEMENT_LIMIT: usize = 20_000;

/// One kept top-level element.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    /// A value, with the VR to decode it as, in the byte order of the
    /// data set; at most [`VALUE_LIMIT`] bytes of it.
    Value { tag: Tag, vr: VR, value: Vec<u8> },
    /// A sequence: the bytes after its header, in `encoding` (which, for a
    /// UN of undefined length, is implicit VR little endian whatever the
    /// data set's). `length` is as declared (or undefined).
    Sequence {
        tag: Tag,
        length: u32,
        content: Vec<u8>,
        encoding: Encoding,
    },
}

impl Captured {
    pub fn tag(&self) -> Tag {
        match self {
            Captured::Value { tag, .. } | Captured::Sequence { tag, .. } => *tag,
        }
    }
}

/// The kept elements of a data set, in file order, and what a user should
/// hear about how they were read.
#[derive(Debug, Default)]
pub struct Capture {
    pub elements: Vec<Captured>,
    /// Values cut, elements left out, nonstandard VRs, each one line.
    pub notes: Vec<String>,
}
