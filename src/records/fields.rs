//! The element values the records hold, as pypx writes them: pydicom's
//! text, or "Not defined" for an element the instance lacks.

use dicom_core::Tag;
use dicom_core::header::Header as _;
use dicom_dictionary_std::tags;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::reading::Header;
use crate::reading::keywords::keyword_of;
use crate::reading::pytext::{DataSetEncoding, element_text_in};

/// pypx's value for an element the file lacks.
pub const NOT_DEFINED: &str = "Not defined";

pub const PATIENT_FIELDS: [(&str, Tag); 5] = [
    ("PatientID", tags::PATIENT_ID),
    ("PatientName", tags::PATIENT_NAME),
    ("PatientAge", tags::PATIENT_AGE),
    ("PatientSex", tags::PATIENT_SEX),
    ("PatientBirthDate", tags::PATIENT_BIRTH_DATE),
];

pub const STUDY_FIELDS: [(&str, Tag); 5] = [
    ("PatientID", tags::PATIENT_ID),
    ("StudyDescription", tags::STUDY_DESCRIPTION),
    ("StudyDate", tags::STUDY_DATE),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("PerformedStationAETitle", tags::PERFORMED_STATION_AE_TITLE),
];

pub const SERIES_FIELDS: [(&str, Tag); 7] = [
    ("PatientID", tags::PATIENT_ID),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    ("SeriesDescription", tags::SERIES_DESCRIPTION),
    ("SeriesNumber", tags::SERIES_NUMBER),
    ("SeriesDate", tags::SERIES_DATE),
    ("Modality", tags::MODALITY),
];

/// The element's text, or pypx's word for an element the file lacks.
pub fn text_or_not_defined(header: &Header, tag: Tag) -> String {
    header.text(tag).unwrap_or_else(|| NOT_DEFINED.to_string())
}

/// `{Name: text}` for the fields of `list`, in order.
pub struct Fields<'a> {
    header: &'a Header,
    list: &'a [(&'static str, Tag)],
}

impl<'a> Fields<'a> {
    pub fn of(header: &'a Header, list: &'a [(&'static str, Tag)]) -> Self {
        Fields { header, list }
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.list
            .iter()
            .map(|(name, tag)| (*name, text_or_not_defined(self.header, *tag)))
    }

    pub fn to_map(&self) -> Map<String, Value> {
        self.entries()
            .map(|(name, text)| (name.to_string(), Value::String(text)))
            .collect()
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries())
    }
}

/// `{key: value}`.
pub struct Single<'a, T>(pub &'a str, pub T);

impl<T: Serialize> Serialize for Single<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// Every element of the instance that has a keyword, as
/// `{Keyword: {"value": text, "label": Keyword}}` sorted by keyword, as
/// pydicom's `dir()` lists them. Each text is made as it is written out, so
/// that a large header's record is never held whole in memory.
pub struct EveryElement<'a>(pub &'a Header);

impl Serialize for EveryElement<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let header = self.0;
        let encoding = DataSetEncoding {
            big_endian: header.big_endian(),
            explicit_vr: header.explicit_vr(),
        };
        let mut elements: Vec<_> = header
            .dataset()
            .iter()
            .filter_map(|element| Some((keyword_of(element.tag())?, element)))
            .collect();
        elements.sort_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(elements.into_iter().map(|(keyword, element)| {
            let value = element_text_in(element, header.dataset(), encoding);
            (
                keyword,
                Labelled {
                    value,
                    label: keyword,
                },
            )
        }))
    }
}

/// `{"value": text, "label": Keyword}`.
#[derive(Serialize)]
struct Labelled<'a> {
    value: String,
    label: &'a str,
}
