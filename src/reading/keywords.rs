//! Keyword <-> tag look-ups. dicom-rs builds its full dictionary (two hash
//! maps of ~5000 entries) on first use, which is half the work of a
//! per-file call; the keywords our defaults and records use are answered
//! from a small table instead, and only other keywords pay for the
//! dictionary.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};

/// The keywords (and VRs) of the default templates, of pypx's records, of
/// the templates people commonly use, and SpecificCharacterSet, which
/// every read decodes.
const COMMON: [(&str, Tag, VR); 27] = [
    ("AccessionNumber", tags::ACCESSION_NUMBER, VR::SH),
    ("AcquisitionNumber", tags::ACQUISITION_NUMBER, VR::IS),
    ("BodyPartExamined", tags::BODY_PART_EXAMINED, VR::CS),
    ("EchoNumbers", tags::ECHO_NUMBERS, VR::IS),
    ("InstanceNumber", tags::INSTANCE_NUMBER, VR::IS),
    ("InstitutionName", tags::INSTITUTION_NAME, VR::LO),
    ("Manufacturer", tags::MANUFACTURER, VR::LO),
    ("Modality", tags::MODALITY, VR::CS),
    ("PatientAge", tags::PATIENT_AGE, VR::AS),
    ("PatientBirthDate", tags::PATIENT_BIRTH_DATE, VR::DA),
    ("PatientID", tags::PATIENT_ID, VR::LO),
    ("PatientName", tags::PATIENT_NAME, VR::PN),
    ("PatientSex", tags::PATIENT_SEX, VR::CS),
    (
        "PerformedStationAETitle",
        tags::PERFORMED_STATION_AE_TITLE,
        VR::AE,
    ),
    ("ProtocolName", tags::PROTOCOL_NAME, VR::LO),
    ("SOPClassUID", tags::SOP_CLASS_UID, VR::UI),
    ("SOPInstanceUID", tags::SOP_INSTANCE_UID, VR::UI),
    ("SeriesDate", tags::SERIES_DATE, VR::DA),
    ("SeriesDescription", tags::SERIES_DESCRIPTION, VR::LO),
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID, VR::UI),
    ("SeriesNumber", tags::SERIES_NUMBER, VR::IS),
    ("SpecificCharacterSet", tags::SPECIFIC_CHARACTER_SET, VR::CS),
    ("StationName", tags::STATION_NAME, VR::SH),
    ("StudyDate", tags::STUDY_DATE, VR::DA),
    ("StudyDescription", tags::STUDY_DESCRIPTION, VR::LO),
    ("StudyID", tags::STUDY_ID, VR::SH),
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID, VR::UI),
];

/// The tag of a DICOM keyword, with the keyword as a `'static` string.
pub fn tag_of(keyword: &str) -> Option<(&'static str, Tag)> {
    if let Some(&(name, tag, _)) = COMMON.iter().find(|(name, ..)| *name == keyword) {
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
    if let Some(&(name, ..)) = COMMON.iter().find(|(_, t, _)| *t == tag) {
        return Some(name);
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|entry| entry.alias())
}

/// The VR the standard gives the element `tag`, if one (elements with a
/// choice of VRs, such as US or SS, get the one dicom-rs reads them as).
pub fn vr_of(tag: Tag) -> Option<VR> {
    if let Some(&(.., vr)) = COMMON.iter().find(|(_, t, _)| *t == tag) {
        return Some(vr);
    }
    Some(StandardDataDictionary.by_tag(tag)?.vr().relaxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_dictionary() {
        for (name, tag, vr) in COMMON {
            let entry = StandardDataDictionary.by_name(name).expect(name);
            assert_eq!((entry.alias(), entry.tag()), (name, tag));
            assert_eq!(entry.vr().exact(), Some(vr), "{name}");
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
