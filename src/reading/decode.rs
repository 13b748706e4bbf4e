//! Decoding the kept elements with dicom-rs: the values in one pass, in
//! explicit VR (so that no dictionary is needed), each sequence on its own
//! in the encoding of its content. What dicom-rs cannot decode is left out
//! with a note, never a failure: the walk has already vouched for the file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Cursor, Read};

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use super::captured::{Capture, Captured};
use super::element::has_long_length;
use super::transfer_syntax::Encoding;
use crate::error_text::one_line;

/// Ends every stream: dicom-rs stops at it (reading until it), as it would
/// at the end of the data, but without the error (and the backtrace
/// dicom-rs captures for it, a tenth of a batch's time per file).
const STOP: Tag = Tag(0xFFFF, 0xFFFF);

/// Decodes what `capture` kept of a data set whose values are in
/// `big_endian` byte order. Returns the data set and notes on what was
/// left out.
pub fn decode(capture: &Capture, big_endian: bool) -> (InMemDicomObject, Vec<String>) {
    let mut notes = Vec::new();
    let values = Encoding {
        explicit_vr: true,
        big_endian,
        deflated: false,
    };
    // SpecificCharacterSet first: it says how the text after it is read.
    let charset = capture
        .elements
        .iter()
        .rev()
        .find(|c| c.tag() == tags::SPECIFIC_CHARACTER_SET);
    let plain: Vec<&Captured> = charset
        .into_iter()
        .chain(capture.elements.iter().filter(|c| {
            matches!(c, Captured::Value { .. }) && c.tag() != tags::SPECIFIC_CHARACTER_SET
        }))
        .collect();
    let mut dataset = match decode_stream(values, &plain) {
        Ok(dataset) => dataset,
        // One at a time, to leave out only what cannot be decoded.
        Err(_) => {
            let mut dataset = InMemDicomObject::new_empty();
            for element in &plain {
                match decode_stream(values, &[element]) {
                    Ok(one) => dataset.extend(one),
                    Err(why) => notes.push(left_out(element.tag(), &why)),
                }
            }
            dataset
        }
    };
    for sequence in &capture.elements {
        let Captured::Sequence { encoding, .. } = sequence else {
            continue;
        };
        let stream: Vec<&Captured> = charset.into_iter().chain([sequence]).collect();
        match decode_stream(*encoding, &stream) {
            Ok(one) => {
                if let Some(element) = one.get(sequence.tag()) {
                    dataset.put(element.clone());
                }
            }
            Err(why) => notes.push(left_out(sequence.tag(), &why)),
        }
    }
    (dataset, notes)
}

fn left_out(tag: Tag, why: &str) -> String {
    format!("element {tag} left out of the records: dicom-rs cannot decode it: {why}")
}

/// Decodes `elements` as one data set in `encoding`.
fn decode_stream(encoding: Encoding, elements: &[&Captured]) -> Result<InMemDicomObject, String> {
    let mut bytes = Vec::new();
    for element in elements {
        encode(&mut bytes, element, encoding);
    }
    write_header(&mut bytes, STOP, Some(VR::UN), 0, encoding);
    let meta = synthetic_meta(encoding.plain_syntax())?;
    OpenFileOptions::new()
        .read_until(STOP)
        .read_preamble(ReadPreamble::Never)
        .from_reader(Cursor::new(meta).chain(Cursor::new(bytes)))
        .map(|object| object.into_inner())
        .map_err(|e| one_line(&e))
}

/// Appends `element` encoded in `encoding`.
fn encode(out: &mut Vec<u8>, element: &Captured, encoding: Encoding) {
    match element {
        Captured::Value { tag, vr, value } => {
            write_header(out, *tag, Some(*vr), value.len() as u32, encoding);
            out.extend_from_slice(value);
        }
        Captured::Sequence {
            tag,
            length,
            content,
            ..
        } => {
            write_header(out, *tag, Some(VR::SQ), *length, encoding);
            out.extend_from_slice(content);
        }
    }
}

/// Appends an element header (the VR is left out in implicit VR).
fn write_header(out: &mut Vec<u8>, tag: Tag, vr: Option<VR>, length: u32, encoding: Encoding) {
    let u16s = |n: u16| match encoding.big_endian {
        true => n.to_be_bytes(),
        false => n.to_le_bytes(),
    };
    let u32s = |n: u32| match encoding.big_endian {
        true => n.to_be_bytes(),
        false => n.to_le_bytes(),
    };
    out.extend(u16s(tag.group()));
    out.extend(u16s(tag.element()));
    match vr.filter(|_| encoding.explicit_vr) {
        Some(vr) if has_long_length(vr) => {
            out.extend(vr.to_bytes());
            out.extend([0, 0]);
            out.extend(u32s(length));
        }
        Some(vr) => {
            out.extend(vr.to_bytes());
            // Kept values are at most VALUE_LIMIT bytes, within 16 bits.
            out.extend(u16s(length as u16));
        }
        None => out.extend(u32s(length)),
    }
}

/// A file meta group announcing `transfer_syntax`, for dicom-rs to read
/// the stream after it as a file. Made once per syntax (and thread):
/// building it cost a quarter of decoding an instance's elements.
fn synthetic_meta(transfer_syntax: &'static str) -> Result<Vec<u8>, String> {
    thread_local! {
        static MADE: RefCell<HashMap<&'static str, Vec<u8>>> = RefCell::default();
    }
    if let Some(made) = MADE.with_borrow(|made| made.get(transfer_syntax).cloned()) {
        return Ok(made);
    }
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("")
        .media_storage_sop_instance_uid("")
        .build()
        .map_err(|e| one_line(&e))?;
    let mut bytes = b"DICM".to_vec();
    meta.write(&mut bytes).map_err(|e| one_line(&e))?;
    MADE.with_borrow_mut(|made| made.insert(transfer_syntax, bytes.clone()));
    Ok(bytes)
}
