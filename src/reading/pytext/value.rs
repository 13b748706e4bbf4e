//! What pydicom holds for an element: the VR it gives it (from the file,
//! or from its dictionaries in implicit VR and for a value read as UN,
//! with its private dictionary under the element's private creator, and
//! the ambiguous VRs it resolves) and the value once converted (a value
//! read as UN converted to that VR, text trimmed and split as pydicom's
//! converters do). The text of that value is written by the siblings.

use std::borrow::Cow;

use dicom_core::header::Header as _;
use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

use super::DataSetEncoding;
use super::names;
use super::python::number_texts;

/// Where an element is: what pydicom knows of it when converting it.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    encoding: DataSetEncoding,
    /// The data set that holds the element (its private creators).
    dataset: Option<&'a InMemDicomObject>,
    /// The defined term of the character set in force (the first value of
    /// the nearest SpecificCharacterSet), if not the default.
    charset: Option<&'a str>,
    /// The nearest PixelRepresentation, in the data set or the ones that
    /// hold it (it makes an ambiguous US or SS signed).
    pixel_representation: Option<u16>,
}

impl<'a> Context<'a> {
    /// The context of an element in no data set known here: no private
    /// creators, the default character set, no PixelRepresentation.
    pub(super) fn new(encoding: DataSetEncoding) -> Self {
        Context {
            encoding,
            dataset: None,
            charset: None,
            pixel_representation: None,
        }
    }

    /// The context of the elements of `dataset`, the top level of a file.
    pub(super) fn top(dataset: &'a InMemDicomObject, encoding: DataSetEncoding) -> Self {
        Context::new(encoding).within(dataset)
    }

    /// The context of the elements of `dataset`, an item within this one's
    /// data set (or the top level): its own character set and pixel
    /// representation, if it has them, else those in force.
    pub(super) fn within(self, dataset: &'a InMemDicomObject) -> Self {
        let charset = dataset
            .get(tags::SPECIFIC_CHARACTER_SET)
            .and_then(|e| match e.value() {
                Value::Primitive(PrimitiveValue::Strs(values)) => values.first(),
                _ => None,
            })
            .map(|code| code.trim_matches([' ', '\0']))
            .or(self.charset);
        let pixel_representation = first_number(dataset, tags::PIXEL_REPRESENTATION)
            .map(|n| n as u16)
            .or(self.pixel_representation);
        Context {
            encoding: self.encoding,
            dataset: Some(dataset),
            charset,
            pixel_representation,
        }
    }

    /// The first number of the element `tag` of this data set.
    fn number(&self, tag: Tag) -> Option<i64> {
        first_number(self.dataset?, tag)
    }

    /// The value of the private creator of `tag` in this data set, as
    /// pydicom sees it (`DataElement.private_creator`).
    pub(super) fn private_creator(&self, tag: Tag) -> Creator<'a> {
        let creator_tag = Tag(tag.group(), tag.element() >> 8);
        if tag.group().is_multiple_of(2) || creator_tag == tag {
            return Creator::None;
        }
        let Some(element) = self.dataset.and_then(|d| d.get(creator_tag)) else {
            return Creator::None;
        };
        match py_value(element, self).1 {
            PyValue::Strings { values, .. } if values.len() == 1 => {
                if values[0].is_empty() {
                    Creator::None
                } else {
                    Creator::Text(values.into_iter().next().unwrap_or_default())
                }
            }
            PyValue::None => Creator::None,
            PyValue::Numbers(value)
                if number_texts(&value).is_some_and(|n| n.len() == 1 && n[0] == "0") =>
            {
                Creator::None
            }
            _ => Creator::Other,
        }
    }
}

/// A private element's creator, as pydicom sees it.
pub(super) enum Creator<'a> {
    /// None, or a value Python holds false ('' or 0).
    None,
    /// A string.
    Text(Cow<'a, str>),
    /// Any other value (several strings, a number): no dictionary entry.
    Other,
}

/// An element's value as pydicom holds it once converted.
pub(super) enum PyValue<'a> {
    /// `None`: an empty number, binary value, IS or DS.
    None,
    /// Text, IS, DS, PN or UI, after pydicom's trimming and splitting: one
    /// value is the value itself, several a `MultiValue`.
    Strings {
        vr: VR,
        values: Vec<Cow<'a, str>>,
    },
    /// Numbers (US, SS, UL, SL, UV, SV, FL, FD).
    Numbers(Cow<'a, PrimitiveValue>),
    Tags(Cow<'a, [Tag]>),
    /// `bytes`.
    Bytes(Blob<'a>),
    /// A sequence's items (parsed here when the file holds it as UN).
    Sequence(Cow<'a, [InMemDicomObject]>),
    /// Encapsulated pixel data: `bytes` of this length.
    Fragments(usize),
}

/// A binary value's bytes, as they were stored.
pub(super) struct Blob<'a> {
    value: Cow<'a, PrimitiveValue>,
    big_endian: bool,
}

impl Blob<'_> {
    /// How many bytes the value holds (Python's `len`).
    pub(super) fn len(&self) -> usize {
        let value = self.value.as_ref();
        match value {
            PrimitiveValue::U8(v) => v.len(),
            PrimitiveValue::I16(v) => v.len() * 2,
            PrimitiveValue::U16(v) => v.len() * 2,
            PrimitiveValue::I32(v) => v.len() * 4,
            PrimitiveValue::U32(v) => v.len() * 4,
            PrimitiveValue::F32(v) => v.len() * 4,
            PrimitiveValue::I64(v) => v.len() * 8,
            PrimitiveValue::U64(v) => v.len() * 8,
            PrimitiveValue::F64(v) => v.len() * 8,
            other => other.to_bytes().len(),
        }
    }

    /// The bytes, in the byte order they were stored in.
    pub(super) fn bytes(&self) -> Box<dyn Iterator<Item = u8> + '_> {
        let big = self.big_endian;
        macro_rules! words {
            ($v:expr) => {
                Box::new($v.iter().flat_map(move |x| {
                    if big {
                        x.to_be_bytes()
                    } else {
                        x.to_le_bytes()
                    }
                }))
            };
        }
        match self.value.as_ref() {
            PrimitiveValue::U8(v) => Box::new(v.iter().copied()),
            PrimitiveValue::I16(v) => words!(v),
            PrimitiveValue::U16(v) => words!(v),
            PrimitiveValue::I32(v) => words!(v),
            PrimitiveValue::U32(v) => words!(v),
            PrimitiveValue::F32(v) => words!(v),
            PrimitiveValue::I64(v) => words!(v),
            PrimitiveValue::U64(v) => words!(v),
            PrimitiveValue::F64(v) => words!(v),
            other => Box::new(other.to_bytes().into_owned().into_iter()),
        }
    }
}

/// The first number of the element `tag` of `dataset`, however stored.
fn first_number(dataset: &InMemDicomObject, tag: Tag) -> Option<i64> {
    match dataset.get(tag)?.value() {
        Value::Primitive(PrimitiveValue::U16(v)) => v.first().map(|&n| i64::from(n)),
        Value::Primitive(PrimitiveValue::I16(v)) => v.first().map(|&n| i64::from(n)),
        Value::Primitive(PrimitiveValue::U32(v)) => v.first().map(|&n| i64::from(n)),
        Value::Primitive(PrimitiveValue::I32(v)) => v.first().map(|&n| i64::from(n)),
        Value::Primitive(PrimitiveValue::U8(v)) if v.len() >= 2 => {
            Some(i64::from(u16::from_le_bytes([v[0], v[1]])))
        }
        _ => None,
    }
}

/// The VR pydicom gives an element. One pydicom makes up itself is a
/// member of its `VR` enum, which Python 3.11 prints as `VR.LO`; one from
/// the file or from a dictionary is text, printed as is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PyVr {
    /// The VR's name (or pydicom's ambiguous ones, `US or SS`).
    pub(super) name: &'static str,
    /// Whether it is a member of pydicom's `VR` enum.
    pub(super) member: bool,
}

impl PyVr {
    fn text(name: &'static str) -> Self {
        PyVr {
            name,
            member: false,
        }
    }

    fn member(name: &'static str) -> Self {
        PyVr { name, member: true }
    }

    /// The VR whose conversion pydicom applies: the ambiguous ones it
    /// could not resolve hold bytes.
    fn conversion(self) -> Option<VR> {
        match self.name {
            "OB or OW" | "US or SS" | "US or OW" | "US or SS or OW" => Some(VR::OW),
            name => name.parse().ok(),
        }
    }
}

/// The VR pydicom gives an element and its value as pydicom holds it.
pub(super) fn py_value<'a>(
    element: &'a InMemElement,
    context: &Context<'a>,
) -> (PyVr, PyValue<'a>) {
    let read = element.vr();
    match element.value() {
        Value::Sequence(sequence) => (
            PyVr::text("SQ"),
            PyValue::Sequence(Cow::Borrowed(sequence.items())),
        ),
        // A sequence of no items, as a caller may build it.
        Value::Primitive(PrimitiveValue::Empty) if read == VR::SQ => {
            (PyVr::text("SQ"), PyValue::Sequence(Cow::Borrowed(&[])))
        }
        Value::PixelSequence(fragments) => (
            PyVr::text(read.to_string()),
            PyValue::Fragments(encapsulated_len(fragments)),
        ),
        Value::Primitive(value) => {
            let vr = pydicom_vr(element.tag(), read, value, context);
            let Some(target) = vr.conversion() else {
                // A VR no converter of pydicom's knows (it fails there).
                return (vr, primitive(read, Cow::Borrowed(value), context));
            };
            if read == VR::UN && target != VR::UN {
                return match convert_un(target, value, context) {
                    Some(converted) => (vr, converted),
                    // Not converted here (a sequence dicom-rs cannot read,
                    // bytes that are no whole number of values).
                    None => (
                        PyVr::text("UN"),
                        primitive(VR::UN, Cow::Borrowed(value), context),
                    ),
                };
            }
            (vr, primitive(target, resign(target, value), context))
        }
    }
}

/// The numbers of `value` with the sign `vr` gives them, where pydicom
/// resolved US or SS otherwise than dicom-rs read it.
fn resign(vr: VR, value: &PrimitiveValue) -> Cow<'_, PrimitiveValue> {
    match (vr, value) {
        (VR::SS, PrimitiveValue::U16(v)) => {
            Cow::Owned(PrimitiveValue::I16(v.iter().map(|&n| n as i16).collect()))
        }
        (VR::US, PrimitiveValue::I16(v)) => {
            Cow::Owned(PrimitiveValue::U16(v.iter().map(|&n| n as u16).collect()))
        }
        _ => Cow::Borrowed(value),
    }
}

/// The VR pydicom gives the element `tag`, read as `read`: in explicit VR
/// the file's, but for UN (`replace_un_with_known_vr`: a standard
/// element of fewer than 65535 bytes gets its dictionary's, a private one
/// as below); in implicit VR its dictionary's, or its private
/// dictionary's, else one it makes up.
fn pydicom_vr(tag: Tag, read: VR, value: &PrimitiveValue, context: &Context) -> PyVr {
    let explicit = context.encoding.explicit_vr;
    if explicit && read != VR::UN {
        return PyVr::text(read.to_string());
    }
    if tag.group() % 2 == 1 {
        return private_vr(tag, context);
    }
    let from_dictionary = !explicit || value.calculate_byte_len() < 0xFFFF;
    match names::standard_entry(tag).filter(|_| from_dictionary) {
        Some((_, vr)) => resolved(tag, vr, context),
        None if explicit => PyVr::text("UN"),
        // Group lengths of groups without one of their own.
        None if tag.element() == 0 => PyVr::member("UL"),
        None => PyVr::member("UN"),
    }
}

/// pydicom's `_private_vr_for_tag`: LO for a private creator, the private
/// dictionary's VR under the element's creator, else UN.
fn private_vr(tag: Tag, context: &Context) -> PyVr {
    if (0x0010..0x0100).contains(&tag.element()) {
        return PyVr::member("LO");
    }
    if tag.element() & 0xFF00 != 0
        && let Creator::Text(creator) = context.private_creator(tag)
        && let Some(entry) = names::private_entry(tag, &creator)
    {
        return PyVr::text(entry.vr);
    }
    PyVr::member("UN")
}

/// The tags whose VR, US or SS, pydicom resolves from PixelRepresentation.
const US_OR_SS: [u32; 20] = [
    0x0018_9810,
    0x0022_1452,
    0x0028_0104,
    0x0028_0105,
    0x0028_0106,
    0x0028_0107,
    0x0028_0108,
    0x0028_0109,
    0x0028_0110,
    0x0028_0111,
    0x0028_0120,
    0x0028_0121,
    0x0028_1101,
    0x0028_1102,
    0x0028_1103,
    0x0028_3002,
    0x0040_9211,
    0x0040_9216,
    0x0060_3004,
    0x0060_3006,
];

/// The VR pydicom settles on for an element whose dictionary VR is `vr`
/// (`correct_ambiguous_vr_element`, for the ambiguous VRs it resolves).
fn resolved(tag: Tag, vr: &'static str, context: &Context) -> PyVr {
    let number = u32::from(tag.group()) << 16 | u32::from(tag.element());
    let explicit = context.encoding.explicit_vr;
    match vr {
        "US or SS" if US_OR_SS.contains(&number) => {
            PyVr::member(match context.pixel_representation {
                Some(representation) if representation != 0 => "SS",
                _ => "US",
            })
        }
        "OB or OW" if tag == tags::PIXEL_DATA => {
            let wide = context
                .number(tags::BITS_ALLOCATED)
                .is_some_and(|bits| bits > 8);
            PyVr::member(if !explicit || wide { "OW" } else { "OB" })
        }
        "OB or OW"
            if matches!(
                number,
                0x5400_0110 | 0x5400_0112 | 0x5400_100A | 0x5400_1010
            ) =>
        {
            let wide = context
                .number(Tag(0x5400, 0x1004))
                .is_some_and(|bits| bits > 8);
            PyVr::member(if !explicit || wide { "OW" } else { "OB" })
        }
        "OB or OW" if tag.element() == 0x3000 && (0x6000..0x601F).contains(&tag.group()) => {
            PyVr::member("OW")
        }
        "US or OW" if tag == Tag(0x0028, 0x3006) => {
            let one = context.number(Tag(0x0028, 0x3002)) == Some(1);
            PyVr::member(if one { "US" } else { "OW" })
        }
        _ => PyVr::text(vr),
    }
}

/// A value read as UN converted to `vr` as pydicom converts it; `None`
/// where it stays UN here (a sequence, a VR no converter knows, bytes
/// that are not a whole number of values, where pydicom fails).
fn convert_un<'a>(vr: VR, value: &'a PrimitiveValue, context: &Context) -> Option<PyValue<'a>> {
    let bytes: &[u8] = match value {
        PrimitiveValue::U8(bytes) => bytes,
        PrimitiveValue::Empty => &[],
        _ => return None,
    };
    if bytes.is_empty() {
        return Some(primitive(vr, Cow::Owned(PrimitiveValue::Empty), context));
    }
    let big = context.encoding.big_endian;
    macro_rules! numbers {
        ($t:ty, $variant:ident) => {{
            const SIZE: usize = std::mem::size_of::<$t>();
            if !bytes.len().is_multiple_of(SIZE) {
                return None;
            }
            let values = bytes
                .chunks_exact(SIZE)
                .map(|chunk| {
                    let chunk: [u8; SIZE] = chunk.try_into().expect("chunks_exact");
                    if big {
                        <$t>::from_be_bytes(chunk)
                    } else {
                        <$t>::from_le_bytes(chunk)
                    }
                })
                .collect();
            PrimitiveValue::$variant(values)
        }};
    }
    let converted = match vr {
        VR::SQ => {
            return sequence_of_un(bytes, context)
                .map(|items| PyValue::Sequence(Cow::Owned(items)));
        }
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN => {
            return Some(PyValue::Bytes(Blob {
                value: Cow::Borrowed(value),
                big_endian: big,
            }));
        }
        VR::US => numbers!(u16, U16),
        VR::SS => numbers!(i16, I16),
        VR::UL => numbers!(u32, U32),
        VR::SL => numbers!(i32, I32),
        VR::UV => numbers!(u64, U64),
        VR::SV => numbers!(i64, I64),
        VR::FL => numbers!(f32, F32),
        VR::FD => numbers!(f64, F64),
        VR::AT => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            let words = numbers!(u16, U16);
            let PrimitiveValue::U16(words) = words else {
                unreachable!()
            };
            PrimitiveValue::Tags(words.chunks_exact(2).map(|w| Tag(w[0], w[1])).collect())
        }
        text_vr => {
            let text = decode_text(text_vr, bytes, context.charset);
            if matches!(text_vr, VR::ST | VR::LT | VR::UT | VR::UR) {
                PrimitiveValue::Str(text)
            } else {
                PrimitiveValue::Strs(text.split('\\').map(String::from).collect())
            }
        }
    };
    Some(primitive(vr, Cow::Owned(converted), context))
}

/// The items of a sequence the file holds as UN (a PACS that did not know
/// the tag), as pydicom reads them: each item's encoding (implicit or
/// explicit VR) told by its first element, as pydicom tells it; `None`
/// when dicom-rs cannot read them.
fn sequence_of_un(bytes: &[u8], context: &Context) -> Option<Vec<InMemDicomObject>> {
    use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntax};
    // Explicit VR when the first element of the first item has a VR of
    // two upper-case letters after its tag.
    let explicit = bytes
        .get(12..14)
        .is_some_and(|vr| vr.iter().all(u8::is_ascii_uppercase));
    let big_endian = context.encoding.big_endian && explicit;
    let length = u32::try_from(bytes.len()).ok()?;
    // The items, as the value of a standard sequence (ContentSequence)
    // alone in a data set, read with the character set in force.
    let carrier = Tag(0x0040, 0xA730);
    let mut data = Vec::with_capacity(bytes.len() + 12);
    for number in [carrier.group(), carrier.element()] {
        data.extend(if big_endian {
            number.to_be_bytes()
        } else {
            number.to_le_bytes()
        });
    }
    if explicit {
        data.extend(b"SQ\0\0");
    }
    data.extend(if big_endian {
        length.to_be_bytes()
    } else {
        length.to_le_bytes()
    });
    data.extend_from_slice(bytes);
    let byte_order = if big_endian {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let syntax = TransferSyntax::new("", "UN sequence", byte_order, explicit, Codec::None);
    let charset = context
        .charset
        .and_then(SpecificCharacterSet::from_code)
        .unwrap_or_default();
    let mut dataset =
        InMemDicomObject::read_dataset_with_ts_cs(data.as_slice(), &syntax, charset).ok()?;
    match dataset.take(carrier)?.into_value() {
        Value::Sequence(sequence) => Some(sequence.into_items().into_vec()),
        _ => None,
    }
}

/// Text stored as UN, decoded as pydicom decodes it: SH, LO, ST, LT, UC,
/// UT and PN in the character set in force, the rest (and all of it when
/// that is the default) as ISO 8859-1, byte for character.
fn decode_text(vr: VR, bytes: &[u8], charset: Option<&str>) -> String {
    let custom = matches!(
        vr,
        VR::SH | VR::LO | VR::ST | VR::LT | VR::UC | VR::UT | VR::PN
    );
    if custom
        && let Some(charset) = charset.and_then(SpecificCharacterSet::from_code)
        && let Ok(text) = charset.decode(bytes)
    {
        return text;
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The length of the bytes pydicom holds for encapsulated pixel data:
/// every item (offset table and fragments) with its 8-byte header.
fn encapsulated_len(fragments: &PixelFragmentSequence<Vec<u8>>) -> usize {
    8 + fragments.offset_table().len() * 4
        + fragments
            .fragments()
            .iter()
            .map(|f| 8 + f.len())
            .sum::<usize>()
}

/// A primitive value of VR `vr` as pydicom holds it.
fn primitive<'a>(vr: VR, value: Cow<'a, PrimitiveValue>, context: &Context) -> PyValue<'a> {
    let big_endian = context.encoding.big_endian;
    if is_blob(vr) {
        return if matches!(value.as_ref(), PrimitiveValue::Empty) {
            PyValue::None
        } else {
            PyValue::Bytes(Blob { value, big_endian })
        };
    }
    if let PrimitiveValue::Tags(_) = value.as_ref() {
        return match value {
            Cow::Borrowed(PrimitiveValue::Tags(tags)) => PyValue::Tags(Cow::Borrowed(tags)),
            Cow::Owned(PrimitiveValue::Tags(tags)) => PyValue::Tags(Cow::Owned(tags.into_vec())),
            _ => unreachable!(),
        };
    }
    if number_count(&value).is_some() {
        return PyValue::Numbers(value);
    }
    match strings(vr, value) {
        Some(values) => PyValue::Strings { vr, values },
        None => PyValue::None,
    }
}

fn is_blob(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
    )
}

/// How many numbers a numeric value holds; `None` if it is not one.
pub(super) fn number_count(value: &PrimitiveValue) -> Option<usize> {
    match value {
        PrimitiveValue::I16(v) => Some(v.len()),
        PrimitiveValue::U16(v) => Some(v.len()),
        PrimitiveValue::I32(v) => Some(v.len()),
        PrimitiveValue::U32(v) => Some(v.len()),
        PrimitiveValue::I64(v) => Some(v.len()),
        PrimitiveValue::U64(v) => Some(v.len()),
        PrimitiveValue::U8(v) => Some(v.len()),
        PrimitiveValue::F32(v) => Some(v.len()),
        PrimitiveValue::F64(v) => Some(v.len()),
        _ => None,
    }
}

/// pydicom's string values of a text, IS, DS, PN or UI element, trimmed
/// and split as its converters do; `None` where pydicom holds `None` (an
/// empty IS, DS or other non-text value). An empty text is one empty
/// string.
fn strings<'a>(vr: VR, value: Cow<'a, PrimitiveValue>) -> Option<Vec<Cow<'a, str>>> {
    match value {
        Cow::Borrowed(value) => strings_of(vr, value),
        Cow::Owned(value) => strings_of(vr, &value).map(|values| {
            values
                .into_iter()
                .map(|v| Cow::Owned(v.into_owned()))
                .collect()
        }),
    }
}

fn strings_of(vr: VR, value: &PrimitiveValue) -> Option<Vec<Cow<'_, str>>> {
    let text_vr = matches!(
        vr,
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
            | VR::UT
    );
    match value {
        PrimitiveValue::Empty => text_vr.then(|| vec![Cow::Borrowed("")]),
        PrimitiveValue::Str(s) => Some(vec![Cow::Borrowed(trim_single(vr, s))]),
        PrimitiveValue::Strs(values) => Some(split_strings(vr, values)),
        // The reader keeps dates and times as text; these only appear if a
        // caller built the value itself.
        other => Some(vec![Cow::Owned(other.to_str().into_owned())]),
    }
}

/// Text of a value stored as one string (ST, LT, UT, UR).
fn trim_single(vr: VR, s: &str) -> &str {
    match vr {
        VR::UR => s.trim_end_matches(' '),
        _ => s.trim_end_matches(['\0', ' ']),
    }
}

fn split_strings(vr: VR, values: &[String]) -> Vec<Cow<'_, str>> {
    let values = values.iter().map(|v| undecodable_as_replacement(v));
    match vr {
        VR::AE => values
            .map(|v| trim_cow(v, |s| s.trim_matches(' ')))
            .collect(),
        VR::SH | VR::LO | VR::UC => values
            .map(|v| trim_cow(v, |s| s.trim_end_matches(['\0', ' '])))
            .collect(),
        VR::IS | VR::DS | VR::UI => values
            .map(|v| trim_cow(v, |s| s.trim_matches([' ', '\0'])))
            .collect(),
        // pydicom strips the padding of the whole value, splits it, and
        // drops a name's empty trailing groups (`A^B==` is `A^B`).
        VR::PN => {
            let mut parts: Vec<Cow<str>> = values.collect();
            if let Some(last) = parts.pop() {
                parts.push(trim_cow(last, |s| s.trim_end_matches(['\0', ' '])));
            }
            parts
                .into_iter()
                .map(|v| trim_cow(v, |s| s.trim_end_matches('=')))
                .collect()
        }
        // pydicom strips the padding of the whole value, then splits.
        _ => {
            let mut parts: Vec<Cow<str>> = values.collect();
            if let Some(last) = parts.pop() {
                parts.push(trim_cow(last, |s| s.trim_end_matches(['\0', ' '])));
            }
            parts
        }
    }
}

fn trim_cow<'a>(value: Cow<'a, str>, trim: impl Fn(&str) -> &str) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
        Cow::Owned(s) => Cow::Owned(trim(&s).to_string()),
    }
}

/// dicom-rs decodes a byte its character set lacks (invalid UTF-8 under
/// ISO_IR 192, say) as `\` and three octal digits, pydicom as U+FFFD. One
/// value of a multi-valued VR has no `\` of its own (it separates values),
/// so each such escape there stands for an undecodable byte.
fn undecodable_as_replacement(value: &str) -> Cow<'_, str> {
    if !value.contains('\\') {
        return Cow::Borrowed(value);
    }
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
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::pytext::{element_text, primitive_text};

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

    #[test]
    fn values_read_as_un_print_in_the_vr_pydicom_gives_them() {
        let un = |bytes: &[u8]| PrimitiveValue::U8(bytes.to_vec().into());
        let text = |tag: Tag, bytes: &[u8]| {
            element_text(&InMemElement::new(tag, VR::UN, un(bytes)), false)
        };
        assert_eq!(text(tags::MODALITY, b"RTDOSE"), "RTDOSE");
        assert_eq!(text(tags::ROWS, &[0, 2]), "512");
        assert_eq!(text(tags::IMAGE_POSITION_PATIENT, b"1.5\\-2 "), "[1.5, -2]");
        // No dictionary knows the tag: it stays bytes.
        assert_eq!(text(Tag(0x0009, 0x1001), b"ab"), "b'ab'");
        // After the pixel data, as px-repack reads it: bytes in full.
        let padding = InMemElement::new(tags::DATA_SET_TRAILING_PADDING, VR::OB, un(&[0, 0]));
        assert_eq!(element_text(&padding, false), "b'\\x00\\x00'");
    }
}
