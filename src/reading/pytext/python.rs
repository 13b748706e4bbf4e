//! Copies of Python's own text for the values pydicom holds: `repr(str)`,
//! `repr(bytes)`, `repr(float)`, `str` of a number, and `str` and `repr`
//! of pydicom's IS and DS (`IS('0005')` prints `5`, its `repr` is `'5'`).
//! They know nothing of DICOM elements; the writers among them write into
//! an [`Out`] and stop where it is full.

use std::borrow::Cow;

use dicom_core::value::PrimitiveValue;

use super::out::Out;

/// Python's `repr(str)`.
pub fn py_str_repr(s: &str) -> String {
    let mut out = Out::default();
    write_py_str(&mut out, s);
    out.into_text()
}

/// Writes Python's `repr(str)` of `s`.
pub(super) fn write_py_str(out: &mut Out, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        if out.full() {
            return;
        }
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
    let mut out = Out::default();
    write_bytes_repr(
        &mut out,
        bytes.iter().copied(),
        quote_for(bytes.iter().copied()),
    );
    out.into_text()
}

/// The quote Python's `repr(bytes)` uses.
pub(super) fn quote_for(bytes: impl Iterator<Item = u8>) -> u8 {
    let (mut single, mut double) = (false, false);
    for b in bytes {
        single |= b == b'\'';
        double |= b == b'"';
    }
    if single && !double { b'"' } else { b'\'' }
}

/// Writes Python's `repr(bytes)` of `bytes`, quoted with `quote` (see
/// [`quote_for`]).
pub(super) fn write_bytes_repr(out: &mut Out, bytes: impl Iterator<Item = u8>, quote: u8) {
    out.push('b');
    out.push(quote as char);
    for b in bytes {
        if out.full() {
            return;
        }
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

/// The texts of the numbers of a numeric value (Python's `str` of each
/// integer, `repr` of each float); `None` if it holds none.
pub(super) fn number_texts(value: &PrimitiveValue) -> Option<Vec<String>> {
    fn all<T: ToString>(v: &[T]) -> Option<Vec<String>> {
        Some(v.iter().map(T::to_string).collect())
    }
    match value {
        PrimitiveValue::I16(v) => all(v),
        PrimitiveValue::U16(v) => all(v),
        PrimitiveValue::I32(v) => all(v),
        PrimitiveValue::U32(v) => all(v),
        PrimitiveValue::I64(v) => all(v),
        PrimitiveValue::U64(v) => all(v),
        PrimitiveValue::U8(v) => all(v),
        PrimitiveValue::F32(v) => Some(v.iter().map(|f| py_float(f64::from(*f))).collect()),
        PrimitiveValue::F64(v) => Some(v.iter().map(|f| py_float(*f)).collect()),
        _ => None,
    }
}

/// `str(IS)`: the text as read, but for a number that is not whole,
/// which pydicom holds as a float (`ISfloat`) and prints as one.
pub(super) fn is_str(text: &str) -> Cow<'_, str> {
    match is_number(text) {
        Some(IsNumber::Float(f)) => Cow::Owned(py_float(f)),
        _ => Cow::Borrowed(text),
    }
}

/// `repr(IS)`: the whole number, quoted (`'5'` for `0005`), or the float.
pub(super) fn is_repr(text: &str) -> String {
    match is_number(text) {
        Some(IsNumber::Int(digits)) => format!("'{digits}'"),
        Some(IsNumber::Float(f)) => py_float(f),
        None => py_str_repr(text),
    }
}

/// `repr(DS)`: Python's `repr` of the float, quoted (`'1.0'` for `1.000`).
pub(super) fn ds_repr(text: &str) -> String {
    match text.trim().parse::<f64>() {
        Ok(f) => format!("'{}'", py_float(f)),
        Err(_) => py_str_repr(text),
    }
}

enum IsNumber {
    /// The digits of a whole number, as Python prints it.
    Int(String),
    Float(f64),
}

/// What pydicom makes of an IS: `int(text)`, else `int(float(text))` when
/// that is the same number, else the float.
fn is_number(text: &str) -> Option<IsNumber> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let digits = digits.trim_start_matches('0');
        return Some(IsNumber::Int(match (digits.is_empty(), negative) {
            (true, _) => "0".to_string(),
            (false, true) => format!("-{digits}"),
            (false, false) => digits.to_string(),
        }));
    }
    let f: f64 = text.parse().ok()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 {
        Some(IsNumber::Int(format!("{}", f as i128)))
    } else {
        Some(IsNumber::Float(f))
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
}
