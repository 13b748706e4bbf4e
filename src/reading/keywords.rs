//! Keyword <-> tag look-ups. dicom-rs builds its full dictionary (two hash
//! maps of ~5000 entries) on first use, which is half the work of a
//! per-file call; the keywords our defaults and records use are answered
//! from a small table instead, and only other keywords pay for the
//! dictionary.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::{StandardDataDictionary, tags};

/// The keywords of the default templates, of pypx's records and of the
/// templates people commonly use.
const COMMON: [(&str, Tag); 26] = [
    ("AccessionNumber", tags::ACCESSION_NUMBER),
    ("AcquisitionNumber", tags::ACQUISITION_NUMBER),
    ("BodyPartExamined", tags::BODY_PART_EXAMINED),
    ("EchoNumbers", tags::ECHO_NUMBERS),
    ("InstanceNumber", tags::INSTANCE_NUMBER),
    ("InstitutionName", tags::INSTITUTION_NAME),
    ("Manufacturer", tags::MANUFACTURER),
    ("Modality", tags::MODALITY),
    ("PatientAge", tags::PATIENT_AGE),
    ("PatientBirthDate", tags::PATIENT_BIRTH_DATE),
    ("PatientID", tags::PATIENT_ID),
    ("PatientName", tags::PATIENT_NAME),
    ("PatientSex", tags::PATIENT_SEX),
    ("PerformedStationAETitle", tags::PERFORMED_STATION_AE_TITLE),
    ("ProtocolName", tags::PROTOCOL_NAME),
    ("SOPClassUID", tags::SOP_CLASS_UID),
    ("SOPInstanceUID", tags::SOP_INSTANCE_UID),
    ("SeriesDate", tags::SERIES_DATE),
    ("SeriesDescription", tags::SERIES_DESCRIPTION),
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    ("SeriesNumber", tags::SERIES_NUMBER),
    ("StationName", tags::STATION_NAME),
    ("StudyDate", tags::STUDY_DATE),
    ("StudyDescription", tags::STUDY_DESCRIPTION),
    ("StudyID", tags::STUDY_ID),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
];

/// The tag of a DICOM keyword, with the keyword as a `'static` string.
pub fn tag_of(keyword: &str) -> Option<(&'static str, Tag)> {
    if let Some(&(name, tag)) = COMMON.iter().find(|(name, _)| *name == keyword) {
        return Some((name, tag));
    }
    let entry = StandardDataDictionary.by_name(keyword)?;
    // Only exact keywords: the dictionary also answers to tag selectors.
    (entry.alias() == keyword).then(|| (entry.alias(), entry.tag()))
}

/// The keyword of a tag, as pydicom names the element; `None` for private
/// elements and group lengths, which have none.
pub fn keyword_of(tag: Tag) -> Option<&'static str> {
    if tag.group() % 2 == 1 || tag.element() == 0 {
        return None;
    }
    if let Some(&(name, _)) = COMMON.iter().find(|(_, t)| *t == tag) {
        return Some(name);
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|entry| entry.alias())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_dictionary() {
        for (name, tag) in COMMON {
            let entry = StandardDataDictionary.by_name(name).expect(name);
            assert_eq!((entry.alias(), entry.tag()), (name, tag));
        }
    }

    #[test]
    fn other_keywords_come_from_the_dictionary() {
        assert_eq!(tag_of("ImageType"), Some(("ImageType", tags::IMAGE_TYPE)));
        assert_eq!(tag_of("NoSuchKeyword"), None);
        assert_eq!(tag_of("0010,0020"), None);
        assert_eq!(keyword_of(tags::IMAGE_TYPE), Some("ImageType"));
        assert_eq!(keyword_of(Tag(0x0029, 0x1010)), None);
        assert_eq!(keyword_of(Tag(0x0008, 0x0000)), None);
    }
}
