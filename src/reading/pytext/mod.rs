//! The text pydicom 2.x gives for an element's value (`"%s" % ds.Keyword`),
//! which is what px-repack puts in its templates and JSON records.
//!
//! Rules (pydicom 2.4, values as read from a file):
//! - text is trimmed as pydicom trims it: AE both sides per value; SH, LO,
//!   UC trailing spaces and NULs per value; ST, LT, UT, PN, UI, UR trailing;
//!   CS, AS, DA, DT, TM trailing on the whole value; IS, DS both sides;
//! - one value prints bare, several print as a Python list, strings quoted
//!   with Python's `repr`, numbers and names bare;
//! - empty IS, DS, numbers and binary values print `None`, empty text
//!   prints nothing;
//! - binary blobs (OB, OW, UN, ...) print as a Python `bytes` literal;
//! - floats print as Python's `repr(float)`; tags as `(0008, 103e)`;
//! - a value read as UN prints as pydicom converts it: in the VR its
//!   dictionary gives the tag (its private dictionary, for a private tag
//!   whose creator it knows; LO for a private creator);
//! - a sequence prints as `str(Sequence)`: `[`, each item's
//!   `Dataset._pretty_str()`, `]` (see [`sequence`]).
//!
//! No value's text is longer than [`MAX_VALUE_TEXT`] bytes: a longer one
//! is cut there and ends with [`cut_mark`].
//!
//! The work is shared out: [`value`] tells what pydicom holds for an
//! element (its VR, a value read as UN converted, text trimmed and
//! split); [`python`] copies Python's `repr` and `str` of strings, bytes
//! and numbers; [`text`] writes what `str` and a sequence's `repval` have
//! in common (multi-values, lists, tags, bytes); [`sequence`] writes
//! `str(Sequence)`, with pydicom's dictionaries in [`names`]; every
//! writer writes into an [`out::Out`], which keeps the cap.

mod names;
mod out;
mod python;
mod sequence;
// Generated (tools/gen_pydicom_tables.py), laid out by the script.
#[rustfmt::skip]
mod tables;
mod text;
mod value;

use dicom_core::VR;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

pub use python::{py_bytes, py_float, py_str_repr};

use out::Out;
use python::{is_str, number_texts};
use text::{tag_text, write_list, write_multi, write_py_bytes};
use value::{Context, PyValue, py_value};

/// The longest text one value gets, in bytes (1 MiB). pydicom prints a
/// value in full however long it is: a 300 MiB OB value would make a
/// record of more than a gigabyte, and a few kilobytes of deeply nested
/// sequences gigabytes of indentation. The longest texts of SAG-anon and
/// of pydicom's test files are under 50 KB; a text reaches 1 MiB with a
/// top-level binary value of 256 KiB or more (an encapsulated document,
/// spectroscopy data) or a multi-frame's per-frame sequence of some
/// hundreds of frames, whose text is then cut (a documented difference
/// with px-repack).
pub const MAX_VALUE_TEXT: usize = 1 << 20;

/// What a value's text cut at [`MAX_VALUE_TEXT`] bytes ends with.
pub fn cut_mark() -> String {
    format!(" [rx-repack: cut here, this value's text is longer than {MAX_VALUE_TEXT} bytes]")
}

/// How a file's data set is encoded, as far as pydicom's reading of its
/// values depends on it.
#[derive(Debug, Clone, Copy)]
pub struct DataSetEncoding {
    pub big_endian: bool,
    /// Whether each element carries its VR. In implicit VR, pydicom takes
    /// VRs from its dictionaries, and those it makes up itself (LO for a
    /// private creator, UN for an unknown element, US or SS for an
    /// ambiguous one) print as `VR.LO`, `VR.UN`, `VR.US` in a sequence.
    pub explicit_vr: bool,
}

/// The pydicom text form of one element's value, the file's data set
/// taken to be explicit VR. Text read as UN is decoded as ISO 8859-1 (see
/// [`element_text_in`] for the character set of the data set).
pub fn element_text(element: &InMemElement, big_endian: bool) -> String {
    let encoding = DataSetEncoding {
        big_endian,
        explicit_vr: true,
    };
    let context = Context::new(encoding);
    let mut out = Out::default();
    write_str(&mut out, element, &context);
    out.finish()
}

/// The pydicom text form of an element of `dataset` (the top level of a
/// file), encoded as `encoding` says: its SpecificCharacterSet decodes
/// text read as UN, its private creators name its private elements.
pub fn element_text_in(
    element: &InMemElement,
    dataset: &InMemDicomObject,
    encoding: DataSetEncoding,
) -> String {
    let context = Context::top(dataset, encoding);
    let mut out = Out::default();
    write_str(&mut out, element, &context);
    out.finish()
}

/// `"%s" % value`: the text of a value at the top level of a data set.
fn write_str(out: &mut Out, element: &InMemElement, context: &Context) {
    match py_value(element, context).1 {
        PyValue::None => out.push_str("None"),
        PyValue::Strings { vr, values } => {
            if let [only] = values.as_slice() {
                match vr {
                    VR::IS => out.push_str(&is_str(only)),
                    _ => out.push_str(only),
                }
            } else {
                write_multi(out, vr, &values);
            }
        }
        PyValue::Numbers(value) => write_list(out, number_texts(&value).unwrap_or_default()),
        PyValue::Tags(tags) => write_list(out, tags.iter().map(|t| tag_text(*t)).collect()),
        PyValue::Bytes(blob) => write_py_bytes(out, &blob),
        PyValue::Sequence(items) => sequence::write_sequence(out, &items, context),
        PyValue::Fragments(_) => out.push_str("<encapsulated pixel data>"),
    }
}

/// The top-level text of a value of VR `vr` (of a private tag no
/// dictionary knows), for the tests of the modules here.
#[cfg(test)]
fn primitive_text(vr: VR, value: &dicom_core::PrimitiveValue, big_endian: bool) -> String {
    let element = InMemElement::new(dicom_core::Tag(0x0009, 0x1001), vr, value.clone());
    element_text(&element, big_endian)
}
