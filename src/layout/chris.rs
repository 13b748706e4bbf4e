//! ChRIS's tree, as oxidicom files it under CUBE's storage root: the
//! templates that give its paths, and what an instance must have to be
//! filed there (CUBE registers each series by these elements).

use chrono::NaiveDate;
use dicom_dictionary_std::tags;

use super::{DEFAULT_IMAGE, DEFAULT_SERIES, DEFAULT_STUDY, Required, Templates, Validity};

/// oxidicom's paths: `SERVICES/PACS/<calling AE>/` above pypx's tree,
/// whose patient dir has nothing (not the keyword) for a missing
/// PatientName or PatientBirthDate.
pub const TEMPLATES: Templates<'static> = Templates {
    base: "SERVICES/PACS/%CallingAETitle",
    root: "%PatientID-%_or|_PatientName-%_or|_PatientBirthDate",
    study: DEFAULT_STUDY,
    series: DEFAULT_SERIES,
    image: DEFAULT_IMAGE,
};

/// What oxidicom refuses an instance without, in the order it checks.
pub const REQUIRED: &[Required] = &[
    Required::present("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    Required::present("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    Required::present("SOPInstanceUID", tags::SOP_INSTANCE_UID),
    Required::present("PatientID", tags::PATIENT_ID),
    Required {
        keyword: "StudyDate",
        tag: tags::STUDY_DATE,
        valid: Some(Validity {
            check: is_study_date,
            expected: "a date, YYYYMMDD or YYYY-MM-DD",
        }),
    },
];

fn is_study_date(value: &str) -> bool {
    iso_date(value).is_some()
}

/// A StudyDate as CUBE registers it (`YYYY-MM-DD`): DICOM's `YYYYMMDD`,
/// or the ISO form some senders write, as oxidicom reads it.
pub fn iso_date(value: &str) -> Option<String> {
    let value = value.trim();
    NaiveDate::parse_from_str(value, "%Y%m%d")
        .or_else(|_| NaiveDate::parse_from_str(value, "%Y-%m-%d"))
        .ok()
        .map(|date| date.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_dates_read_as_oxidicom_reads_them() {
        assert_eq!(iso_date("20130308").as_deref(), Some("2013-03-08"));
        assert_eq!(iso_date("2013-03-08").as_deref(), Some("2013-03-08"));
        for bad in ["2024", "20130230", "2013.03.08", "", "yesterday"] {
            assert_eq!(iso_date(bad), None, "{bad}");
        }
    }
}
