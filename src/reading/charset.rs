//! Code extensions of SpecificCharacterSet. dicom-rs decodes text with the
//! first value of (0008,0005) only; the common Japanese form
//! `\ISO 2022 IR 87` has an empty first value, so its text comes out as
//! ISO-IR 6 (which dicom-rs decodes as Latin-1, byte for byte). This
//! decodes such text again with the extension's character set, escape
//! sequences and all, as pydicom does.

use dicom_core::header::Header as _;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_object::InMemDicomObject;

/// Re-decodes the text elements of `dataset` when its character set is
/// given by a code extension after an empty (or ISO-IR 6) first value.
pub fn apply_code_extensions(dataset: &mut InMemDicomObject) {
    let Some(charset) = extension_charset(dataset) else {
        return;
    };
    let redecoded: Vec<_> = dataset
        .iter()
        .filter_map(|element| {
            let Value::Primitive(value) = element.value() else {
                return None;
            };
            let text = match (element.vr(), value) {
                (VR::SH | VR::LO | VR::PN | VR::UC, PrimitiveValue::Strs(parts)) => {
                    parts.join("\\")
                }
                (VR::ST | VR::LT | VR::UT, PrimitiveValue::Str(text)) => text.clone(),
                _ => return None,
            };
            let bytes = latin1_bytes(&text)?;
            let decoded = charset.decode(&bytes).ok()?;
            let value = match element.vr() {
                VR::ST | VR::LT | VR::UT => PrimitiveValue::Str(decoded),
                _ => PrimitiveValue::Strs(decoded.split('\\').map(String::from).collect()),
            };
            Some(DataElement::new(element.tag(), element.vr(), value))
        })
        .collect();
    for element in redecoded {
        dataset.put(element);
    }
}

fn extension_charset(dataset: &InMemDicomObject) -> Option<SpecificCharacterSet> {
    let values = dataset
        .get(tags::SPECIFIC_CHARACTER_SET)?
        .value()
        .strings()
        .ok()?;
    let (first, extensions) = values.split_first()?;
    let first = first.trim();
    if !(first.is_empty() || first == "ISO 2022 IR 6") {
        return None;
    }
    extensions
        .iter()
        .find_map(|code| SpecificCharacterSet::from_code(code.trim()))
}

/// The bytes that ISO-IR 6 (read as Latin-1) decoding turned into `text`.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}
