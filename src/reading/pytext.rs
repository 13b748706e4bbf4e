//! The text pydicom 2.x gives for an element's value (`"%s" % ds.Keyword`),
//! which is what px-repack puts in its templates and JSON records.
//!
//! Rules (pydicom 2.4, values as read from a file):
//! - text is trimmed as pydicom trims it: AE both sides per value; SH, LO,
//!   UC trailing spaces and NULs per value; ST, LT, UT, PN, UI, UR trailing;
//!   CS, AS, DA, DT, TM trailing on the whole value; IS, DS both sides;
//! - one value prints bare, several print as a Python list, strings quoted
//!   with Python's `repr`;
//! - empty IS, DS and binary values print `None`, empty text prints nothing;
//! - binary blobs (OB, OW, UN, ...) print as a Python `bytes` literal;
//! - floats print as Python's `repr(float)`.

use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::mem::InMemElement;

/// The pydicom text form of one element's value.
pub fn element_text(element: &InMemElement, big_endian: bool) -> String {
    match element.value() {
        Value::Primitive(value) => primitive_text(element.vr(), value, big_endian),
        Value::Sequence(sequence) => {
            // pydicom prints every nested element here; px-repack's readers
            // never look inside, so a summary keeps records small.
            let n = sequence.items().len();
            format!("<Sequence of {n} item{}>", if n == 1 { "" } else { "s" })
        }
        Value::PixelSequence(_) => "<encapsulated pixel data>".to_string(),
    }
}

fn primitive_text(vr: VR, value: &PrimitiveValue, big_endian: bool) -> String {
    if is_blob(vr) {
        return if matches!(value, PrimitiveValue::Empty) {
            "None".to_string()
        } else {
            py_bytes(&blob_bytes(value, big_endian))
        };
    }
    match value {
        PrimitiveValue::Empty => empty_text(vr).to_string(),
        PrimitiveValue::Str(s) => trim_single(vr, s).to_string(),
        PrimitiveValue::Strs(values) => {
            let values: Vec<String> = values
                .iter()
                .map(|v| undecodable_as_replacement(v))
                .collect();
            strs_text(vr, &values)
        }
        PrimitiveValue::Tags(tags) => list(tags.iter().map(|t| tag_text(*t))),
        PrimitiveValue::U8(v) => list(v.iter().map(u8::to_string)),
        PrimitiveValue::I16(v) => list(v.iter().map(i16::to_string)),
        PrimitiveValue::U16(v) => list(v.iter().map(u16::to_string)),
        PrimitiveValue::I32(v) => list(v.iter().map(i32::to_string)),
        PrimitiveValue::U32(v) => list(v.iter().map(u32::to_string)),
        PrimitiveValue::I64(v) => list(v.iter().map(i64::to_string)),
        PrimitiveValue::U64(v) => list(v.iter().map(u64::to_string)),
        PrimitiveValue::F32(v) => list(v.iter().map(|f| py_float(f64::from(*f)))),
        PrimitiveValue::F64(v) => list(v.iter().map(|f| py_float(*f))),
        // The reader keeps dates and times as text; these only appear if a
        // caller built the value itself.
        other => other.to_str().into_owned(),
    }
}

fn is_blob(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
    )
}

fn empty_text(vr: VR) -> &'static str {
    match vr {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DT
        | VR::TM
        | VR::UI
        | VR::UR
        | VR::LO
        | VR::LT
        | VR::PN
        | VR::SH
        | VR::ST
        | VR::UC
        | VR::UT => "",
        _ => "None",
    }
}

/// Text of a value stored as one string (ST, LT, UT, UR).
fn trim_single(vr: VR, s: &str) -> &str {
    match vr {
        VR::UR => s.trim_end_matches(' '),
        _ => s.trim_end_matches(['\0', ' ']),
    }
}

fn strs_text(vr: VR, values: &[String]) -> String {
    let parts: Vec<&str> = match vr {
        VR::AE => values.iter().map(|v| v.trim_matches(' ')).collect(),
        VR::SH | VR::LO | VR::UC => values
            .iter()
            .map(|v| v.trim_end_matches(['\0', ' ']))
            .collect(),
        VR::IS | VR::DS => values.iter().map(|v| v.trim_matches([' ', '\0'])).collect(),
        // pydicom strips the padding of the whole value, then splits.
        _ => {
            let mut parts: Vec<&str> = values.iter().map(String::as_str).collect();
            if let Some(last) = parts.last_mut() {
                *last = last.trim_end_matches(['\0', ' ']);
            }
            parts
        }
    };
    if parts.len() == 1 {
        let only = parts[0];
        return if only.is_empty() && matches!(vr, VR::IS | VR::DS) {
            // A blank number is an empty string, not None.
            String::new()
        } else {
            only.to_string()
        };
    }
    // pydicom quotes str-like members (text, UIDs) but not numbers or names.
    let quoted = !matches!(vr, VR::IS | VR::DS | VR::PN);
    list(parts.into_iter().map(|p| {
        if quoted || p.is_empty() {
            py_str_repr(p)
        } else {
            p.to_string()
        }
    }))
}

/// dicom-rs decodes a byte its character set lacks (invalid UTF-8 under
/// ISO_IR 192, say) as `\` and three octal digits, pydicom as U+FFFD. One
/// value of a multi-valued VR has no `\` of its own (it separates values),
/// so each such escape there stands for an undecodable byte.
fn undecodable_as_replacement(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let octal = rest[at + 1..]
            .get(..3)
            .is_some_and(|digits| digits.bytes().all(|b| (b'0'..=b'7').contains(&b)));
        if octal {
            out.push('\u{FFFD}');
            rest = &rest[at + 4..];
        } else {
            out.push('\\');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// One value bare, several as a Python list.
fn list(mut items: impl Iterator<Item = String>) -> String {
    let first = match items.next() {
        Some(first) => first,
        None => return String::new(),
    };
    match items.next() {
        None => first,
        Some(second) => {
            let mut out = format!("[{first}, {second}");
            for item in items {
                out.push_str(", ");
                out.push_str(&item);
            }
            out.push(']');
            out
        }
    }
}

fn tag_text(tag: Tag) -> String {
    format!("({:04X}, {:04X})", tag.group(), tag.element())
}

fn blob_bytes(value: &PrimitiveValue, big_endian: bool) -> Vec<u8> {
    macro_rules! words {
        ($v:expr) => {
            $v.iter()
                .flat_map(|x| {
                    if big_endian {
                        x.to_be_bytes().to_vec()
                    } else {
                        x.to_le_bytes().to_vec()
                    }
                })
                .collect()
        };
    }
    match value {
        PrimitiveValue::U8(v) => v.to_vec(),
        PrimitiveValue::I16(v) => words!(v),
        PrimitiveValue::U16(v) => words!(v),
        PrimitiveValue::I32(v) => words!(v),
        PrimitiveValue::U32(v) => words!(v),
        PrimitiveValue::I64(v) => words!(v),
        PrimitiveValue::U64(v) => words!(v),
        PrimitiveValue::F32(v) => words!(v),
        PrimitiveValue::F64(v) => words!(v),
        other => other.to_bytes().into_owned(),
    }
}

/// Python's `repr(str)`.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_python_unprintable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The characters Python escapes in `repr` beyond ASCII control characters:
/// the C1 controls, the no-break space and other separators, and the
/// format and private-use characters we are likely to meet in tag values.
fn is_python_unprintable(c: char) -> bool {
    matches!(c as u32,
        0x80..=0xa0 | 0xad | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f
        | 0x3000 | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb)
}

/// Python's `repr(bytes)`.
pub fn py_bytes(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// Python's `repr(float)`: the shortest text that reads back the same
/// number, in exponent form below 1e-4 and from 1e16 on.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde-5".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    if (-4..16).contains(&exponent) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(2.52), "2.52");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(1.5e16), "1.5e+16");
        assert_eq!(py_float(123456789012345.0), "123456789012345.0");
        assert_eq!(py_float(f64::from(0.1f32)), "0.10000000149011612");
        assert_eq!(py_float(-0.0), "-0.0");
    }

    #[test]
    fn strings_and_bytes_repr_like_python() {
        assert_eq!(py_str_repr("ORIGINAL"), "'ORIGINAL'");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a\\b"), "'a\\\\b'");
        assert_eq!(py_str_repr("Müller"), "'Müller'");
        assert_eq!(py_bytes(b"\x00\x01AB'"), "b\"\\x00\\x01AB'\"");
        assert_eq!(py_bytes(b""), "b''");
    }

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
    fn undecodable_bytes_show_as_replacement_characters() {
        let bad = PrimitiveValue::Strs(vec!["M\\374ller^Hans".into()].into());
        assert_eq!(primitive_text(VR::PN, &bad, false), "M\u{FFFD}ller^Hans");
        let two = PrimitiveValue::Strs(["a\\374".into(), "b\\37".into()].into());
        assert_eq!(
            primitive_text(VR::LO, &two, false),
            "['a\u{FFFD}', 'b\\\\37']"
        );
    }
}
