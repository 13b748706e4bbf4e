//! Where an instance goes: [templates](template) rendered, then
//! [sanitised and made safe as path components](names); pypx's tree, or
//! [ChRIS's](chris), which also requires some elements.

pub mod chris;
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

/// The templates of a tree, as text. `base` holds the dirs above the
/// patient's, `/` between them (each a template); the others are one
/// path component each.
#[derive(Debug, Clone, Copy)]
pub struct Templates<'a> {
    pub base: &'a str,
    pub root: &'a str,
    pub study: &'a str,
    pub series: &'a str,
    pub image: &'a str,
}

/// px-repack's tree.
pub const PYPX: Templates<'static> = Templates {
    base: "",
    root: DEFAULT_ROOT,
    study: DEFAULT_STUDY,
    series: DEFAULT_SERIES,
    image: DEFAULT_IMAGE,
};

/// An element without which an instance is not filed, and, if any, what
/// its value must be.
#[derive(Debug, Clone, Copy)]
pub struct Required {
    pub keyword: &'static str,
    pub tag: Tag,
    pub valid: Option<Validity>,
}

/// What a required element's value must be: a check, and its words for
/// the error.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub check: fn(&str) -> bool,
    pub expected: &'static str,
}

impl Required {
    pub const fn present(keyword: &'static str, tag: Tag) -> Required {
        Required {
            keyword,
            tag,
            valid: None,
        }
    }
}

/// The parsed templates of the tree, and what it requires of an instance.
#[derive(Debug, Clone)]
pub struct Layout {
    base: Vec<Template>,
    root: Template,
    study: Template,
    series: Template,
    image: Template,
    required: &'static [Required],
}

/// Why an instance cannot be filed in a layout: it lacks an element the
/// layout requires, or holds a value that will not do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unfit {
    #[error("the file lacks {0}, which this layout requires")]
    Lacks(&'static str),
    #[error("{keyword} is {value:?}, not {expected}, as this layout requires")]
    Invalid {
        keyword: &'static str,
        value: String,
        expected: &'static str,
    },
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
    /// The layout of `templates`, refusing instances without `required`.
    pub fn new(templates: &Templates, required: &'static [Required]) -> Result<Self, LayoutError> {
        let parse = |which: &'static str, text: &str| {
            Template::parse(text).map_err(|source| LayoutError { which, source })
        };
        let base = match templates.base {
            "" => Vec::new(),
            base => base
                .split('/')
                .map(|dir| parse("the base dirs", dir))
                .collect::<Result<_, _>>()?,
        };
        Ok(Layout {
            base,
            root: parse("--rootDirTemplate", templates.root)?,
            study: parse("--studyDirTemplate", templates.study)?,
            series: parse("--seriesDirTemplate", templates.series)?,
            image: parse("--imageTemplate", templates.image)?,
            required,
        })
    }

    /// Whether an instance can be filed here; `value` gives an element's
    /// text.
    pub fn check(&self, value: &dyn Fn(Tag) -> Option<String>) -> Result<(), Unfit> {
        for required in self.required {
            let Some(text) = non_blank(value(required.tag)) else {
                return Err(Unfit::Lacks(required.keyword));
            };
            if let Some(validity) = required.valid
                && !(validity.check)(&text)
            {
                return Err(Unfit::Invalid {
                    keyword: required.keyword,
                    value: text,
                    expected: validity.expected,
                });
            }
        }
        Ok(())
    }

    /// Computes where the instance goes; `value` gives an element's text.
    pub fn locate(&self, value: &dyn Fn(Tag) -> Option<String>) -> Location {
        let mut missing = Vec::new();
        let mut component =
            |template: &Template| safe_component(&sanitize(&template.render(value, &mut missing)));
        let series_dir = self
            .base
            .iter()
            .chain([&self.root, &self.study, &self.series])
            .map(&mut component)
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
    /// The elements the templates read, and those required.
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        self.base
            .iter()
            .chain([&self.root, &self.study, &self.series, &self.image])
            .flat_map(Template::fields)
            .map(|field| field.tag)
            .chain(self.required.iter().map(|required| required.tag))
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
        let templates = |image| Templates {
            base: "",
            root: "r",
            study: "s",
            series: "x",
            image,
        };
        let layout = Layout::new(
            &templates("%_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm"),
            &[],
        )
        .unwrap();
        let location = layout.locate(&|_| None);
        assert!(location.needs_unique_name);
        assert_eq!(location.missing, vec!["InstanceNumber", "SOPInstanceUID"]);
        assert_eq!(
            location.unique_file_name("ab12"),
            "InstanceNumber-SOPInstanceUID-ab12.dcm"
        );
        let plain = Layout::new(&templates("%PatientID"), &[])
            .unwrap()
            .locate(&|_| Some("p".into()));
        assert!(plain.needs_unique_name);
        assert_eq!(plain.unique_file_name("ab12"), "p-ab12");
    }
}
