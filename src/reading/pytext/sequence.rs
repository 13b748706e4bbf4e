//! A sequence's text, as pydicom 2.4 prints it (`str(Sequence)`): `[`,
//! then each item's `Dataset._pretty_str()` with nothing between them,
//! then `]`. An item's text is one line per element, joined by newlines:
//!
//! ```text
//! (0008, 1150) Referenced SOP Class UID            UI: MR Image Storage
//! (0008, 1155) Referenced SOP Instance UID         UI: 1.3.12.2...
//! (0040, a730)  Content Sequence  2 item(s) ----
//!    (0040, a010) Relationship Type                   CS: 'CONTAINS'
//!    ---------
//! ```
//!
//! - an element: its tag (lower-case hex), its dictionary name cut or
//!   padded to 35 characters, its VR, and `repval`: "Array of N elements"
//!   for a text (LT, UC, UT) or binary value longer than 16 (characters,
//!   bytes or values) and for more than 16 values; a UID's registry name;
//!   else Python's `repr` of the value (`'5'` for an IS, `'1.0'` for a DS,
//!   quoted text and names, bare numbers, `b'...'`);
//! - a sequence within an item: a header line (tag, two spaces, its full
//!   name, two spaces, `N item(s) ---- `), then each item's lines indented
//!   three more spaces, each followed by a `---------` line at that
//!   indentation (an empty item leaves an empty line);
//! - a private element's name comes from pydicom's private dictionary
//!   under its creator, in brackets; else "Private Creator" for a creator,
//!   "Private tag data" for the rest.

use std::borrow::Cow;

use dicom_core::header::Header as _;
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;

use super::names;
use super::out::Out;
use super::python::{ds_repr, is_repr, number_texts, write_py_str};
use super::text::{tag_text, write_list, write_multi, write_py_bytes};
use super::value::{Context, Creator, PyValue, number_count, py_value};

/// pydicom's `DataElement.descripWidth`: names are cut or padded to this.
const NAME_WIDTH: usize = 35;

/// pydicom's `DataElement.maxBytesToDisplay`: longer values are summarised.
const MAX_SHOWN: usize = 16;

/// pydicom's `Dataset.indent_chars`, once per level of nesting.
const INDENT: &str = "   ";

/// `str(Sequence)` of `items`, within the data set of `context`.
pub(super) fn write_sequence(out: &mut Out, items: &[InMemDicomObject], context: &Context) {
    out.push('[');
    for item in items {
        if out.full() {
            return;
        }
        write_dataset(out, item, 0, &context.within(item));
    }
    out.push(']');
}

/// `Dataset._pretty_str(indent)` of `dataset`, whose context is `context`.
fn write_dataset(out: &mut Out, dataset: &InMemDicomObject, indent: usize, context: &Context) {
    for (i, element) in dataset.iter().enumerate() {
        if out.full() {
            return;
        }
        if i > 0 {
            out.push('\n');
        }
        write_indent(out, indent);
        out.push_str(&tag_text(element.tag()));
        let name = element_name(element.tag(), context);
        let (vr, value) = py_value(element, context);
        if let PyValue::Sequence(items) = value {
            out.push_str("  ");
            out.push_str(&name);
            out.push_str(&format!("  {} item(s) ---- ", items.len()));
            for item in items.iter() {
                out.push('\n');
                write_dataset(out, item, indent + 1, &context.within(item));
                out.push('\n');
                write_indent(out, indent + 1);
                out.push_str("---------");
                if out.full() {
                    return;
                }
            }
            continue;
        }
        out.push(' ');
        let shown: String = name.chars().take(NAME_WIDTH).collect();
        out.push_str(&format!("{shown:<NAME_WIDTH$}"));
        out.push(' ');
        if vr.member {
            out.push_str("VR.");
        }
        out.push_str(vr.name);
        out.push_str(": ");
        write_repval(out, vr.name, value);
    }
}

fn write_indent(out: &mut Out, indent: usize) {
    for _ in 0..indent {
        out.push_str(INDENT);
    }
}

/// pydicom's `DataElement.name` of the element `tag` of the data set of
/// `context`.
fn element_name(tag: Tag, context: &Context) -> Cow<'static, str> {
    if tag.group() % 2 == 1 {
        return match context.private_creator(tag) {
            Creator::Text(creator) => match names::private_entry(tag, &creator) {
                Some(entry) => Cow::Owned(format!("[{}]", entry.name)),
                None => Cow::Borrowed("Private tag data"),
            },
            Creator::Other => Cow::Borrowed("Private tag data"),
            Creator::None if tag.element() >> 8 == 0 => Cow::Borrowed("Private Creator"),
            Creator::None => Cow::Borrowed("Private tag data"),
        };
    }
    match names::standard_entry(tag) {
        Some((name, _)) => Cow::Borrowed(name),
        // Group lengths of groups without one of their own.
        None if tag.element() == 0 => Cow::Borrowed("Group Length"),
        None => Cow::Borrowed(""),
    }
}

/// pydicom's `DataElement.repval` of a value of VR `vr`.
fn write_repval(out: &mut Out, vr: &str, value: PyValue) {
    let long_value_vr = matches!(
        vr,
        "LT" | "UC"
            | "UT"
            | "OB"
            | "OD"
            | "OF"
            | "OL"
            | "OV"
            | "OW"
            | "UN"
            | "OB or OW"
            | "US or SS"
            | "US or OW"
            | "US or SS or OW"
    );
    if long_value_vr && let Some(length) = py_len(&value).filter(|&n| n > MAX_SHOWN) {
        out.push_str(&format!("Array of {length} elements"));
        return;
    }
    let vm = value_multiplicity(&value);
    if vm > MAX_SHOWN {
        out.push_str(&format!("Array of {vm} elements"));
        return;
    }
    match value {
        PyValue::None => out.push_str("None"),
        PyValue::Strings { vr, values } => match (vr, values.as_slice()) {
            // A UID prints as its registry name, if it has one.
            (VR::UI, [uid]) => out.push_str(names::uid_name(uid).unwrap_or(uid)),
            (VR::IS, [number]) if !number.is_empty() => out.push_str(&is_repr(number)),
            (VR::DS, [number]) if !number.is_empty() => out.push_str(&ds_repr(number)),
            (_, [text]) => write_py_str(out, text),
            (vr, values) => write_multi(out, vr, values),
        },
        PyValue::Numbers(value) => write_list(out, number_texts(&value).unwrap_or_default()),
        PyValue::Tags(tags) => write_list(out, tags.iter().map(|t| tag_text(*t)).collect()),
        PyValue::Bytes(blob) => write_py_bytes(out, &blob),
        // Only as a summary: it is never 16 bytes or fewer.
        PyValue::Fragments(length) => out.push_str(&format!("Array of {length} elements")),
        // Sequences are printed by `write_dataset`.
        PyValue::Sequence(items) => out.push_str(&format!("<Sequence, length {}>", items.len())),
    }
}

/// Python's `len(value)`, where the value has one.
fn py_len(value: &PyValue) -> Option<usize> {
    match value {
        PyValue::Strings { vr, values } => match (vr, values.as_slice()) {
            // An IS or DS is a number; a blank one stays a string.
            (VR::IS | VR::DS, [number]) if !number.is_empty() => None,
            (_, [text]) => Some(text.chars().count()),
            (_, values) => Some(values.len()),
        },
        PyValue::Numbers(value) => number_count(value).filter(|&n| n != 1),
        PyValue::Tags(tags) => Some(tags.len()).filter(|&n| n != 1),
        PyValue::Bytes(blob) => Some(blob.len()),
        PyValue::Fragments(length) => Some(*length),
        PyValue::Sequence(items) => Some(items.len()),
        PyValue::None => None,
    }
}

/// pydicom's `DataElement.VM`.
fn value_multiplicity(value: &PyValue) -> usize {
    match value {
        PyValue::None => 0,
        PyValue::Strings { vr, values } => match (vr, values.as_slice()) {
            (VR::IS | VR::DS, [number]) if !number.is_empty() => 1,
            (_, [text]) => usize::from(!text.is_empty()),
            (_, values) => values.len(),
        },
        PyValue::Numbers(value) => number_count(value).unwrap_or(0),
        PyValue::Tags(tags) => tags.len(),
        PyValue::Bytes(blob) => usize::from(blob.len() > 0),
        PyValue::Fragments(_) => 1,
        PyValue::Sequence(items) => items.len(),
    }
}

#[cfg(test)]
mod tests {
    use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
    use dicom_core::{DataElement, Length, VR};
    use dicom_object::mem::InMemElement;

    use super::*;
    use crate::reading::pytext::element_text;

    fn element(tag: (u16, u16), vr: VR, value: PrimitiveValue) -> InMemElement {
        DataElement::new(Tag(tag.0, tag.1), vr, value)
    }

    fn strs(values: &[&str]) -> PrimitiveValue {
        PrimitiveValue::Strs(values.iter().map(|v| v.to_string()).collect())
    }

    fn sequence(tag: (u16, u16), items: Vec<InMemDicomObject>) -> InMemElement {
        DataElement::new(
            Tag(tag.0, tag.1),
            VR::SQ,
            Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
        )
    }

    /// pydicom 2.4.5's `"%s" % Sequence([a, b])` for the same items, built
    /// in pydicom with `add_new`.
    #[test]
    fn a_sequence_prints_as_pydicom_prints_it() {
        let content = vec![
            InMemDicomObject::from_element_iter([element(
                (0x0040, 0xA010),
                VR::CS,
                strs(&["CONTAINS"]),
            )]),
            InMemDicomObject::new_empty(),
        ];
        let a = InMemDicomObject::from_element_iter([
            element((0x0008, 0x0008), VR::CS, strs(&["ORIGINAL", "PRIMARY"])),
            element(
                (0x0008, 0x0016),
                VR::UI,
                strs(&["1.2.840.10008.5.1.4.1.1.4\0"]),
            ),
            element((0x0008, 0x0018), VR::UI, strs(&["1.2.3.4"])),
            element((0x0010, 0x0010), VR::PN, strs(&["Doe^John"])),
            element((0x0018, 0x1030), VR::LO, PrimitiveValue::Empty),
            element((0x0018, 0x0050), VR::DS, strs(&["1.000"])),
            element((0x0020, 0x0013), VR::IS, strs(&["0005"])),
            element((0x0028, 0x0010), VR::US, PrimitiveValue::from(512u16)),
            element((0x0028, 0x0030), VR::DS, strs(&["0.5", "0.50"])),
            element((0x0028, 0x0106), VR::US, PrimitiveValue::Empty),
            element((0x0029, 0x0010), VR::LO, strs(&["SIEMENS CSA HEADER"])),
            element(
                (0x0029, 0x1010),
                VR::OB,
                PrimitiveValue::U8((0..20).collect()),
            ),
            element(
                (0x0029, 0x1011),
                VR::OB,
                PrimitiveValue::U8(b"ab'".iter().copied().collect()),
            ),
            element(
                (0x0029, 0x1110),
                VR::OB,
                PrimitiveValue::U8(vec![b'x'].into()),
            ),
            element(
                (0x0043, 0x1001),
                VR::SS,
                PrimitiveValue::I16(vec![1, 2, 3].into()),
            ),
            sequence((0x0040, 0xA730), content),
            element((0x6002, 0x0010), VR::US, PrimitiveValue::from(256u16)),
        ]);
        let b = InMemDicomObject::from_element_iter([
            element(
                (0x0008, 0x1150),
                VR::UI,
                strs(&["1.2.840.10008.5.1.4.1.1.4"]),
            ),
            element(
                (0x0020, 0x0032),
                VR::DS,
                PrimitiveValue::Strs((0..17).map(|i| i.to_string()).collect()),
            ),
            element(
                (0x0020, 0x4000),
                VR::LT,
                PrimitiveValue::Str("a".repeat(17)),
            ),
        ]);
        let text = element_text(&sequence((0x0008, 0x1140), vec![a, b]), false);
        let pydicom = "[(0008, 0008) Image Type                          CS: ['ORIGINAL', 'PRIMARY']\n\
            (0008, 0016) SOP Class UID                       UI: MR Image Storage\n\
            (0008, 0018) SOP Instance UID                    UI: 1.2.3.4\n\
            (0010, 0010) Patient's Name                      PN: 'Doe^John'\n\
            (0018, 0050) Slice Thickness                     DS: '1.0'\n\
            (0018, 1030) Protocol Name                       LO: ''\n\
            (0020, 0013) Instance Number                     IS: '5'\n\
            (0028, 0010) Rows                                US: 512\n\
            (0028, 0030) Pixel Spacing                       DS: [0.5, 0.50]\n\
            (0028, 0106) Smallest Image Pixel Value          US: None\n\
            (0029, 0010) Private Creator                     LO: 'SIEMENS CSA HEADER'\n\
            (0029, 1010) [CSA Image Header Info]             OB: Array of 20 elements\n\
            (0029, 1011) Private tag data                    OB: b\"ab'\"\n\
            (0029, 1110) Private tag data                    OB: b'x'\n\
            (0040, a730)  Content Sequence  2 item(s) ---- \n   \
            (0040, a010) Relationship Type                   CS: 'CONTAINS'\n   \
            ---------\n\n   \
            ---------\n\
            (0043, 1001) Private tag data                    SS: [1, 2, 3]\n\
            (6002, 0010) Overlay Rows                        US: 256\
            (0008, 1150) Referenced SOP Class UID            UI: MR Image Storage\n\
            (0020, 0032) Image Position (Patient)            DS: Array of 17 elements\n\
            (0020, 4000) Image Comments                      LT: Array of 17 elements]";
        assert_eq!(text, pydicom);
    }

    /// pydicom 2.4.5's text of the same sequence written in implicit VR
    /// and read back: the VRs it makes up print as `VR.LO` and the like,
    /// a private element's value is converted in its private VR.
    #[test]
    fn in_implicit_vr_pydicom_s_own_vrs_print_as_enum_members() {
        use crate::reading::pytext::{DataSetEncoding, element_text_in};
        let un = |bytes: &[u8]| PrimitiveValue::U8(bytes.to_vec().into());
        let item = InMemDicomObject::from_element_iter([
            element((0x0009, 0x0010), VR::LO, strs(&["GEMS_IDEN_01"])),
            element((0x0009, 0x1001), VR::UN, un(b"GE_GENESIS_FF ")),
            // As dicom-rs reads it without PixelRepresentation at hand.
            element((0x0028, 0x0106), VR::US, PrimitiveValue::from(0xFFFEu16)),
            element((0x0029, 0x1101), VR::UN, un(b"unknown ")),
        ]);
        let dataset = InMemDicomObject::from_element_iter([
            element((0x0028, 0x0103), VR::US, PrimitiveValue::from(1u16)),
            sequence((0x0008, 0x1140), vec![item]),
        ]);
        let implicit = DataSetEncoding {
            big_endian: false,
            explicit_vr: false,
        };
        let top = dataset.get(Tag(0x0008, 0x1140)).unwrap();
        assert_eq!(
            element_text_in(top, &dataset, implicit),
            "[(0009, 0010) Private Creator                     VR.LO: 'GEMS_IDEN_01'\n\
             (0009, 1001) [Full fidelity]                     LO: 'GE_GENESIS_FF'\n\
             (0028, 0106) Smallest Image Pixel Value          VR.SS: -2\n\
             (0029, 1101) Private tag data                    VR.UN: b'unknown ']"
        );
    }
}
