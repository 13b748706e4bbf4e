//! What the two binaries share of their command lines: the options that
//! say where and how an instance is filed and what the user is told of
//! it. They are declared once ([`FilingArgs`], flattened into each
//! binary's command line) and resolved into the one [`Filing`] config that
//! the pipeline and the report run on.

use std::path::PathBuf;

use camino::Utf8PathBuf;

use crate::layout::{self, Layout, LayoutError, PYPX, Templates};

/// The filing options, as parsed. Each binary words `--verbosity` for
/// what it says (`mut_arg` on its command line).
#[derive(Debug, Clone, clap::Args)]
pub struct FilingArgs {
    /// Root of the repacked tree
    #[arg(short = 'd', long = "datadir", value_name = "DIR")]
    pub datadir: PathBuf,

    /// pypx log dir for the JSON records (none written when absent)
    #[arg(short = 'l', long = "logdir", value_name = "DIR")]
    pub logdir: Option<PathBuf>,

    /// The tree: pypx's (px-repack's), or ChRIS's (oxidicom's, under
    /// SERVICES/PACS/<calling AE>/; instances without StudyInstanceUID,
    /// SeriesInstanceUID, SOPInstanceUID, PatientID or a StudyDate are
    /// refused). The templates below change its levels
    #[arg(long, value_enum, default_value_t = LayoutName::Pypx)]
    pub layout: LayoutName,

    /// Template of the patient directory [default:
    /// %PatientID-%PatientName-%PatientBirthDate]
    #[arg(long = "rootDirTemplate", value_name = "TEMPLATE")]
    pub root_template: Option<String>,

    /// Template of the study directory [default:
    /// %StudyDescription-%AccessionNumber-%StudyDate]
    #[arg(long = "studyDirTemplate", value_name = "TEMPLATE")]
    pub study_template: Option<String>,

    /// Template of the series directory [default:
    /// %_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID]
    #[arg(long = "seriesDirTemplate", value_name = "TEMPLATE")]
    pub series_template: Option<String>,

    /// Template of the image file name [default:
    /// %_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm]
    #[arg(
        long = "imageTemplate",
        alias = "imageFileTemplate",
        value_name = "TEMPLATE"
    )]
    pub image_template: Option<String>,

    /// Keep what is not DICOM (or is corrupt) in DIR, with the reason in
    /// NAME.reason.txt: a file is moved there instead of left in place
    #[arg(long, value_name = "DIR")]
    pub quarantine: Option<PathBuf>,

    /// How much to say on stderr
    #[arg(short = 'v', long, value_name = "N", default_value_t = 1)]
    pub verbosity: u8,

    /// Print one JSON object per instance on stdout (src, dst, size,
    /// PatientID, SeriesInstanceUID, outcome, error, missing, notes)
    #[arg(long = "log-ndjson")]
    pub log_ndjson: bool,
}

/// The trees `--layout` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutName {
    Pypx,
    Chris,
}

impl LayoutName {
    /// Its templates, and what it requires of an instance.
    fn preset(self) -> (Templates<'static>, &'static [layout::Required]) {
        match self {
            LayoutName::Pypx => (PYPX, &[]),
            LayoutName::Chris => (layout::chris::TEMPLATES, layout::chris::REQUIRED),
        }
    }
}

/// How every instance of a run is filed and reported.
#[derive(Debug, Clone)]
pub struct Filing {
    /// UTF-8, as it is written into pypx's JSON records.
    pub datadir: Utf8PathBuf,
    pub logdir: Option<Utf8PathBuf>,
    pub layout: Layout,
    pub quarantine: Option<PathBuf>,
    pub reporting: Reporting,
}

/// What the user is told (see [`crate::report`]): by whom, and how much.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// The binary that speaks: every line it prints starts with its name.
    pub program: &'static str,
    /// 0: errors only; 1: also warnings; 2: also a line per instance.
    pub verbosity: u8,
    /// One JSON line per instance on stdout.
    pub ndjson: bool,
}

/// Why the filing options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilingArgsError {
    #[error(
        "{option} {}: the path must be UTF-8, as pypx's JSON records hold it",
        path.display()
    )]
    NotUtf8 { option: &'static str, path: PathBuf },
    #[error("{0}")]
    Layout(#[from] LayoutError),
}

impl FilingArgs {
    /// The filing config of `program` (`rx-repack`, `rx-listen`).
    pub fn resolve(self, program: &'static str) -> Result<Filing, FilingArgsError> {
        let (preset, required) = self.layout.preset();
        let templates = Templates {
            base: preset.base,
            root: self.root_template.as_deref().unwrap_or(preset.root),
            study: self.study_template.as_deref().unwrap_or(preset.study),
            series: self.series_template.as_deref().unwrap_or(preset.series),
            image: self.image_template.as_deref().unwrap_or(preset.image),
        };
        let layout = Layout::new(&templates, required)?;
        Ok(Filing {
            datadir: utf8("--datadir", self.datadir)?,
            logdir: self.logdir.map(|dir| utf8("--logdir", dir)).transpose()?,
            layout,
            quarantine: self.quarantine,
            reporting: Reporting {
                program,
                verbosity: self.verbosity,
                ndjson: self.log_ndjson,
            },
        })
    }
}

/// `path`, given as `option`, as UTF-8, or an error saying it must be.
fn utf8(option: &'static str, path: PathBuf) -> Result<Utf8PathBuf, FilingArgsError> {
    Utf8PathBuf::from_path_buf(path).map_err(|path| FilingArgsError::NotUtf8 { option, path })
}
