//! Where an instance goes: four [templates](template) rendered, then
//! [sanitised and made safe as path components](names).

pub mod names;
pub mod template;

use std::path::PathBuf;

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::reading::non_blank;
use names::{safe_component, sanitize};
use template::{Template, TemplateError};

pub const DEFAULT_ROOT: &str = "%PatientID-%PatientName-%PatientBirthDate";
pub const DEFAULT_STUDY: &str = "%StudyDescription-%AccessionNumber-%StudyDate";
pub const DEFAULT_SERIES: &str =
    "%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID";
pub const DEFAULT_IMAGE: &str = "%_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm";

/// The parsed templates of the tree.
#[derive(Debug, Clone)]
pub struct Layout {
    root: Template,
    study: Template,
    series: Template,
    image: Template,
}

/// The relative location of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// `root/study/series`, relative to the data dir.
    pub series_dir: PathBuf,
    /// The rendered, sanitised image name (not yet length-limited).
    image_name: String,
    /// The image name alone does not tell this instance from others (no
    /// usable SOPInstanceUID in the file, or none in the template).
    pub needs_unique_name: bool,
    /// Keywords the templates needed but the file lacks.
    pub missing: Vec<&'static str>,
}

impl Layout {
    pub fn new(root: &str, study: &str, series: &str, image: &str) -> Result<Self, LayoutError> {
        let parse = |which: &'static str, text: &str| {
            Template::parse(text).map_err(|source| LayoutError { which, source })
        };
        Ok(Layout {
            root: parse("--rootDirTemplate", root)?,
            study: parse("--studyDirTemplate", study)?,
            series: parse("--seriesDirTemplate", series)?,
            image: parse("--imageTemplate", image)?,
        })
    }

    /// Computes where the instance goes; `value` gives an element's text.
    pub fn locate(&self, value: &dyn Fn(Tag) -> Option<String>) -> Location {
        let mut missing = Vec::new();
        let mut component =
            |template: &Template| safe_component(&sanitize(&template.render(value, &mut missing)));
        let series_dir = [
            component(&self.root),
            component(&self.study),
            component(&self.series),
        ]
        .iter()
        .collect();
        let image_name = sanitize(&self.image.render(value, &mut missing));
        let names_instance = self
            .image
            .fields()
            .any(|field| field.keyword == "SOPInstanceUID");
        Location {
            series_dir,
            image_name,
            needs_unique_name: !names_instance
                || non_blank(value(tags::SOP_INSTANCE_UID)).is_none(),
            missing,
        }
    }
}

impl Layout {
    /// The elements the templates read.
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        [&self.root, &self.study, &self.series, &self.image]
            .into_iter()
            .flat_map(Template::fields)
            .map(|field| field.tag)
    }
}

impl Location {
    /// The image file name as the templates give it.
    pub fn file_name(&self) -> String {
        safe_component(&self.image_name)
    }

    /// The image file name with `unique` (something that tells this file
    /// from others) added before the extension.
    pub fn unique_file_name(&self, unique: &str) -> String {
        let name = &self.image_name;
        let with_suffix = match name.rfind('.') {
            Some(dot) if dot > 0 => format!("{}-{unique}{}", &name[..dot], &name[dot..]),
            _ => format!("{name}-{unique}"),
        };
        safe_component(&with_suffix)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{which}: {source}")]
pub struct LayoutError {
    which: &'static str,
    source: TemplateError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_suffix_goes_before_extension() {
        let layout = Layout::new(
            "r",
            "s",
            "x",
            "%_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm",
        )
        .unwrap();
        let location = layout.locate(&|_| None);
        assert!(location.needs_unique_name);
        assert_eq!(location.missing, vec!["InstanceNumber", "SOPInstanceUID"]);
        assert_eq!(
            location.unique_file_name("ab12"),
            "InstanceNumber-SOPInstanceUID-ab12.dcm"
        );
        let plain = Layout::new("r", "s", "x", "%PatientID")
            .unwrap()
            .locate(&|_| Some("p".into()));
        assert!(plain.needs_unique_name);
        assert_eq!(plain.unique_file_name("ab12"), "p-ab12");
    }
}
