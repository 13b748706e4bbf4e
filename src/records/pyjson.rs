//! JSON text as Python's `json.dump(obj, f, indent=4)` writes it, so the
//! records are byte-for-byte px-repack's: four-space indent, `": "` after
//! keys, and every character outside printable ASCII escaped as `\uXXXX`.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};

/// Serialises `value` the way Python's `json.dump(..., indent=4)` does.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    to_writer(&mut out, value).expect("writing to memory does not fail");
    String::from_utf8(out).expect("all non-ASCII is escaped")
}

/// Writes `value` to `writer` the way Python's `json.dump(..., indent=4)`
/// does.
pub fn to_writer<W: Write + ?Sized, T: Serialize + ?Sized>(
    writer: &mut W,
    value: &T,
) -> io::Result<()> {
    let mut serializer = Serializer::with_formatter(writer, PythonFormatter::default());
    value.serialize(&mut serializer).map_err(io::Error::from)
}

struct PythonFormatter {
    pretty: PrettyFormatter<'static>,
}

impl Default for PythonFormatter {
    fn default() -> Self {
        PythonFormatter {
            pretty: PrettyFormatter::with_indent(b"    "),
        }
    }
}

impl Formatter for PythonFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json escapes quotes, backslashes and control characters
        // itself; Python's ensure_ascii also escapes DEL and all non-ASCII.
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn matches_python_json_dump_indent_4() {
        let value =
            json!({"a": {"b": [1, 2], "c": "Müller\u{7f}\"\n", "d": {}, "e": []}, "f": true});
        // json.dump({"a": {"b": [1, 2], "c": "Müller\x7f\"\n", "d": {}, "e": []}, "f": True}, f, indent=4)
        let python = "{\n    \"a\": {\n        \"b\": [\n            1,\n            2\n        ],\n        \"c\": \"M\\u00fcller\\u007f\\\"\\n\",\n        \"d\": {},\n        \"e\": []\n    },\n    \"f\": true\n}";
        assert_eq!(super::to_string(&value), python);
        assert_eq!(super::to_string(&json!("😀")), "\"\\ud83d\\ude00\"");
    }
}
