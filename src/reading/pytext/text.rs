//! The text of values as `str` and `repval` (in a sequence) share it: a
//! `MultiValue` (text quoted, numbers and names bare), a list of numbers
//! or tags (one bare, several as a Python list), a tag (`(0008, 103e)`),
//! a binary value as a `bytes` literal.

use std::borrow::Cow;

use dicom_core::{Tag, VR};

use super::out::Out;
use super::python::{is_str, quote_for, write_bytes_repr, write_py_str};
use super::value::Blob;

/// A `MultiValue`'s text (its `str` and `repr` alike): members that are
/// Python strings quoted, the others (numbers, names) bare.
pub(super) fn write_multi(out: &mut Out, vr: VR, values: &[Cow<str>]) {
    out.push('[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match vr {
            // A blank IS or DS stays a string.
            VR::IS | VR::DS if value.is_empty() => out.push_str("''"),
            VR::IS => out.push_str(&is_str(value)),
            VR::DS | VR::PN => out.push_str(value),
            _ => write_py_str(out, value),
        }
        if out.full() {
            return;
        }
    }
    out.push(']');
}

/// One value bare, several as a Python list.
pub(super) fn write_list(out: &mut Out, items: Vec<String>) {
    match items.as_slice() {
        [] => {}
        [only] => out.push_str(only),
        _ => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(item);
                if out.full() {
                    return;
                }
            }
            out.push(']');
        }
    }
}

/// pydicom's text of a tag, `(0008, 103e)`.
pub(super) fn tag_text(tag: Tag) -> String {
    format!("({:04x}, {:04x})", tag.group(), tag.element())
}

/// Writes Python's `repr(bytes)` of a binary value.
pub(super) fn write_py_bytes(out: &mut Out, blob: &Blob) {
    write_bytes_repr(out, blob.bytes(), quote_for(blob.bytes()));
}

#[cfg(test)]
mod tests {
    use dicom_core::value::{PrimitiveValue, Value};
    use dicom_object::InMemDicomObject;
    use dicom_object::mem::InMemElement;

    use crate::reading::pytext::{MAX_VALUE_TEXT, cut_mark, element_text, primitive_text};

    use super::*;

    #[test]
    fn lists_follow_multiplicity() {
        let one = PrimitiveValue::from("ORIGINAL");
        assert_eq!(primitive_text(VR::CS, &one, false), "ORIGINAL");
        let many = PrimitiveValue::Strs(["ORIGINAL".into(), "PRIMARY ".into()].into());
        assert_eq!(
            primitive_text(VR::CS, &many, false),
            "['ORIGINAL', 'PRIMARY']"
        );
        let ds = PrimitiveValue::Strs([" 0.5".into(), "1.000 ".into()].into());
        assert_eq!(primitive_text(VR::DS, &ds, false), "[0.5, 1.000]");
        let us = PrimitiveValue::U16(vec![0, 256, 256, 0].into());
        assert_eq!(primitive_text(VR::US, &us, false), "[0, 256, 256, 0]");
        assert_eq!(
            primitive_text(VR::US, &PrimitiveValue::Empty, false),
            "None"
        );
        assert_eq!(primitive_text(VR::LO, &PrimitiveValue::Empty, false), "");
    }

    #[test]
    fn names_drop_empty_trailing_groups_and_tags_print_in_lower_case() {
        let name = PrimitiveValue::Strs(vec!["Wang^XiaoDong=王^小東=".into()].into());
        assert_eq!(
            primitive_text(VR::PN, &name, false),
            "Wang^XiaoDong=王^小東"
        );
        let tag = PrimitiveValue::Tags(vec![Tag(0x3004, 0x000C)].into());
        assert_eq!(primitive_text(VR::AT, &tag, false), "(3004, 000c)");
    }

    #[test]
    fn a_value_s_text_stops_at_the_cap() {
        let big = PrimitiveValue::U8(vec![0u8; MAX_VALUE_TEXT].into());
        let text = primitive_text(VR::OB, &big, false);
        assert_eq!(text.len(), MAX_VALUE_TEXT + cut_mark().len());
        assert!(text.starts_with("b'\\x00\\x00"));
        assert!(text.ends_with(&cut_mark()));

        // Sequences nested a thousand deep: indentation alone would make
        // some 1.5 MB; the text stops at the cap, and so does the work.
        let mut item = InMemDicomObject::new_empty();
        for _ in 0..1000 {
            let sequence =
                dicom_core::value::DataSetSequence::new(vec![item], dicom_core::Length::UNDEFINED);
            item = InMemDicomObject::from_element_iter([InMemElement::new(
                Tag(0x0040, 0xA730),
                VR::SQ,
                Value::Sequence(sequence),
            )]);
        }
        let top = item.get(Tag(0x0040, 0xA730)).unwrap();
        let text = element_text(top, false);
        assert_eq!(text.len(), MAX_VALUE_TEXT + cut_mark().len());
    }
}
