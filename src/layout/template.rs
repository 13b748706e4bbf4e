//! px-repack's template language: `%Keyword` is an element's value and
//! `%_fn|args_Keyword` applies one function to it first.
//!
//! Functions: `pad|W,C` (right-justify to width W with fill C, default `0`),
//! `md5|N` and `seahash|N` (first N hex digits of the hash of the value),
//! `strmsk|MASK` (keep the value's character where MASK has `*`, else take
//! MASK's), `nospc|C` (runs of non-word characters become C), `or|TEXT`
//! (TEXT where the file lacks the element; oxidicom's empty PatientName).
//!
//! `%CallingAETitle` is the AE title of the sender, as the file meta group
//! keeps it (SourceApplicationEntityTitle). A `%` followed by something
//! that is neither it nor a DICOM keyword stays literal, as in px-repack. An element absent from the file renders as its keyword
//! (as rx-repack 1.0 did) and is reported as missing.

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::reading::keywords::tag_of;

/// Widest padding: no name in the tree can be longer.
const MAX_PAD: usize = 255;

/// A template parsed once, rendered for every file.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// One `%...Keyword` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub keyword: &'static str,
    pub tag: Tag,
    function: Option<Function>,
}

#[derive(Debug, Clone, PartialEq)]
enum Function {
    Pad {
        width: usize,
        fill: char,
    },
    Md5 {
        digits: Option<usize>,
    },
    Seahash {
        digits: Option<usize>,
    },
    Strmsk {
        mask: Vec<char>,
    },
    Nospc {
        joiner: String,
    },
    /// The value, or `text` where the file lacks the element.
    Or {
        text: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("unknown template function `{0}` (known: pad, md5, seahash, strmsk, nospc, or)")]
    UnknownFunction(String),
    #[error("bad arguments `{args}` for template function `{function}`: {why}")]
    BadArguments {
        function: String,
        args: String,
        why: &'static str,
    },
    #[error("template function `_{0}_` is not followed by a DICOM keyword")]
    FunctionWithoutKeyword(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            match parse_field(after)? {
                Some((field, used)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                    rest = &after[used..];
                }
                None => {
                    literal.push('%');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The elements this template reads.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(field) => Some(field),
            Part::Literal(_) => None,
        })
    }

    /// Renders the template; `value` gives an element's text or `None` when
    /// the file lacks it, in which case its keyword stands in and is pushed
    /// onto `missing`.
    pub fn render(
        &self,
        value: &dyn Fn(Tag) -> Option<String>,
        missing: &mut Vec<&'static str>,
    ) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => {
                    let Some(text) = value(field.tag) else {
                        if !missing.contains(&field.keyword) {
                            missing.push(field.keyword);
                        }
                        match &field.function {
                            Some(Function::Or { text }) => out.push_str(text),
                            Some(function) => out.push_str(&function.apply(field.keyword)),
                            None => out.push_str(field.keyword),
                        }
                        continue;
                    };
                    match &field.function {
                        Some(function) => out.push_str(&function.apply(&text)),
                        None => out.push_str(&text),
                    }
                }
            }
        }
        out
    }
}

/// Parses what follows a `%`; `None` when it is not a field reference.
/// Returns the field and how many bytes of `text` it used.
fn parse_field(text: &str) -> Result<Option<(Field, usize)>, TemplateError> {
    let (function, used) = match text.strip_prefix('_') {
        Some(inner) => match inner.find('_') {
            Some(end) => (Some(&inner[..end]), end + 2),
            None => (None, 0),
        },
        None => (None, 0),
    };
    let word_len = text[used..]
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(text.len() - used);
    let word = &text[used..used + word_len];
    // Longest prefix of the word that is a keyword, so `%SeriesNumberX`
    // reads SeriesNumber and keeps the `X`, as px-repack does.
    let found = (1..=word.len())
        .rev()
        .find_map(|n| keyword_tag(&word[..n]).map(|(keyword, tag)| (keyword, tag, n)));
    match (found, function) {
        (Some((keyword, tag, n)), function) => {
            let function = function.map(Function::parse).transpose()?;
            Ok(Some((
                Field {
                    keyword,
                    tag,
                    function,
                },
                used + n,
            )))
        }
        (None, Some(function)) => Err(TemplateError::FunctionWithoutKeyword(function.into())),
        (None, None) => Ok(None),
    }
}

/// The keyword `word` names and its tag: a DICOM keyword, or one of the
/// [`ALIASES`].
fn keyword_tag(word: &str) -> Option<(&'static str, Tag)> {
    tag_of(word).or_else(|| ALIASES.iter().copied().find(|(alias, _)| *alias == word))
}

/// Words for what a receiver knows of an instance that no DICOM keyword
/// names. The calling AE title (oxidicom's `pacs_name`) is kept in the
/// file meta group as SourceApplicationEntityTitle, by storescp and by
/// rx-listen alike, so it is read from there.
const ALIASES: &[(&str, Tag)] = &[("CallingAETitle", tags::SOURCE_APPLICATION_ENTITY_TITLE)];

impl Function {
    fn parse(spec: &str) -> Result<Self, TemplateError> {
        let (name, args) = spec.split_once('|').unwrap_or((spec, ""));
        let bad = |why| TemplateError::BadArguments {
            function: name.to_string(),
            args: args.to_string(),
            why,
        };
        let digits = || -> Result<Option<usize>, TemplateError> {
            if args.is_empty() {
                Ok(None)
            } else {
                args.parse()
                    .map(Some)
                    .map_err(|_| bad("expected a number of hex digits"))
            }
        };
        match name {
            "pad" => {
                if args.is_empty() {
                    return Ok(Function::Pad {
                        width: 0,
                        fill: '0',
                    });
                }
                let (width, fill) = args.split_once(',').unwrap_or((args, "0"));
                let width: usize = width.parse().map_err(|_| bad("expected WIDTH,CHAR"))?;
                if width > MAX_PAD {
                    return Err(bad("the width is at most 255 (a file name's length)"));
                }
                let mut chars = fill.chars();
                match (chars.next(), chars.next()) {
                    (Some(fill), None) => Ok(Function::Pad { width, fill }),
                    _ => Err(bad("the fill must be exactly one character")),
                }
            }
            "md5" => Ok(Function::Md5 { digits: digits()? }),
            "seahash" => Ok(Function::Seahash { digits: digits()? }),
            "strmsk" => Ok(Function::Strmsk {
                mask: args.chars().collect(),
            }),
            "nospc" => Ok(Function::Nospc {
                joiner: args.to_string(),
            }),
            "or" => Ok(Function::Or {
                text: args.to_string(),
            }),
            other => Err(TemplateError::UnknownFunction(other.to_string())),
        }
    }

    fn apply(&self, value: &str) -> String {
        match self {
            Function::Pad { width, fill } => {
                let len = value.chars().count();
                let mut out: String =
                    std::iter::repeat_n(*fill, width.saturating_sub(len)).collect();
                out.push_str(value);
                out
            }
            Function::Md5 { digits } => {
                truncate_hex(format!("{:x}", md5::compute(value.as_bytes())), *digits)
            }
            // Not zero-padded: pypx's SeaHash().hexdigest() and oxidicom's
            // `{:x}` both drop the leading zeros of the 64-bit hash.
            Function::Seahash { digits } => {
                truncate_hex(format!("{:x}", seahash::hash(value.as_bytes())), *digits)
            }
            Function::Strmsk { mask } => value
                .chars()
                .zip(mask)
                .map(|(v, m)| if *m == '*' { v } else { *m })
                .collect(),
            Function::Nospc { joiner } => value
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(joiner),
            Function::Or { .. } => value.to_string(),
        }
    }
}

fn truncate_hex(mut hex: String, digits: Option<usize>) -> String {
    if let Some(n) = digits {
        hex.truncate(n);
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    fn render(
        template: &str,
        value: &dyn Fn(Tag) -> Option<String>,
    ) -> (String, Vec<&'static str>) {
        let mut missing = Vec::new();
        let out = Template::parse(template)
            .unwrap()
            .render(value, &mut missing);
        (out, missing)
    }

    fn series(tag: Tag) -> Option<String> {
        match tag {
            tags::SERIES_NUMBER => Some("5".into()),
            tags::SERIES_DESCRIPTION => Some("SAG MPRAGE 220 FOV".into()),
            tags::SERIES_INSTANCE_UID => {
                Some("1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0".into())
            }
            tags::PATIENT_ID => Some("1449c1d".into()),
            _ => None,
        }
    }

    #[test]
    fn default_series_template_matches_known_output() {
        let (out, missing) = render(
            "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID",
            &series,
        );
        assert_eq!(out, "00005-SAG MPRAGE 220 FOV-a27cf06");
        assert!(missing.is_empty());
    }

    #[test]
    fn functions_behave_like_px_repack() {
        assert_eq!(
            render("%_md5|4_PatientID", &series).0,
            &format!("{:x}", md5::compute("1449c1d"))[..4]
        );
        assert_eq!(render("%_strmsk|**x*_PatientID", &series).0, "14x9");
        assert_eq!(
            render("%_nospc|-_SeriesDescription", &series).0,
            "SAG-MPRAGE-220-FOV"
        );
        assert_eq!(
            render("%_nospc_SeriesDescription", &series).0,
            "SAGMPRAGE220FOV"
        );
        assert_eq!(render("%_pad|3,x_SeriesNumber", &series).0, "xx5");
        assert_eq!(
            render("%_seahash_SeriesInstanceUID", &series).0,
            "a27cf06a782e3aad"
        );
        // A hash below 2^60 has no leading zero in pypx's hexdigest (nor
        // in oxidicom's): "1.2.0" hashes to 0x091782ef50abc616.
        assert_eq!(
            render("%_seahash|7_PatientID", &|_| Some("1.2.0".into())).0,
            "91782ef"
        );
    }

    #[test]
    fn or_stands_in_for_a_missing_element_only() {
        let (out, missing) = render("%PatientID-%_or|_PatientName-%_or|none_PatientID", &series);
        assert_eq!(out, "1449c1d--1449c1d");
        assert_eq!(missing, vec!["PatientName"]);
    }

    #[test]
    fn missing_elements_render_as_keyword_and_are_reported() {
        let (out, missing) = render("%PatientName-%PatientID-%PatientName", &series);
        assert_eq!(out, "PatientName-1449c1d-PatientName");
        assert_eq!(missing, vec!["PatientName"]);
    }

    #[test]
    fn unknown_words_stay_literal() {
        assert_eq!(
            render("%AssessionNumber-100%", &series).0,
            "%AssessionNumber-100%"
        );
        assert_eq!(render("%SeriesNumberX", &series).0, "5X");
    }

    #[test]
    fn bad_functions_are_refused() {
        assert!(matches!(
            Template::parse("%_name_PatientID"),
            Err(TemplateError::UnknownFunction(_))
        ));
        assert!(matches!(
            Template::parse("%_pad|x_SeriesNumber"),
            Err(TemplateError::BadArguments { .. })
        ));
        assert!(matches!(
            Template::parse("%_pad|99999999999_PatientID"),
            Err(TemplateError::BadArguments { .. })
        ));
        assert!(matches!(
            Template::parse("%_pad|5_Nonsense"),
            Err(TemplateError::FunctionWithoutKeyword(_))
        ));
    }
}
