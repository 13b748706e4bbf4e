//! rx-repack's command line, parsed and nothing more; [`super::config`]
//! resolves it.

use std::path::PathBuf;

use clap::Parser;

use crate::filing::FilingArgs;

const AFTER_HELP: &str = "\
-h (or -y, --synopsis) shows this summary; --help (or -x, --desc) also
shows the tree, the template functions and examples.";

const AFTER_LONG_HELP: &str = "\
Tree layout (the templates below are the defaults):

  <datadir>/
    %PatientID-%PatientName-%PatientBirthDate/
      %StudyDescription-%AccessionNumber-%StudyDate/
        %_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID/
          %_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm

Template functions: %_pad|W,C_Kw  %_md5|N_Kw  %_seahash|N_Kw  %_strmsk|MASK_Kw
%_nospc|C_Kw. Each rendered name keeps [A-Za-z0-9.-]; other runs become '_'.
A missing element is replaced by its keyword and reported.

Batch mode, many files in one process, in parallel:

  rx-repack --datadir /data/dicom --logdir /data/log /archive/incoming
  find /archive -name '*.dcm' -print0 | rx-repack -0 --datadir D -
  rx-repack --xcrdir DIR --parseAllFilesWithSubStr .dcm --datadir D

Run by DCMTK storescp, once per file it writes (TCP_NODELAY=1: without it
Debian's DCMTK waits ~45 ms per instance):

  TCP_NODELAY=1 storescp --fork -od /var/incoming -xcr \\
    \"rx-repack --xcrdir #p --xcrfile #f --datadir /data/dicom --logdir /data/log --cleanup\" 11113

Accepted for px-repack compatibility and ignored: --debug.
Refused with a message: --JSONargs (give the options themselves).
-h (or -y, --synopsis) shows a summary; --help (or -x, --desc) this whole help.";

#[derive(Debug, Parser)]
#[command(
    name = "rx-repack",
    version,
    about = "Repack DICOM files into a patient/study/series tree and record them in pypx's log dir",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    disable_help_flag = true,
    mut_arg("verbosity", |arg| arg.help(
        "0: errors only; 1: errors and warnings (missing elements); 2: also one line per file"
    ))
)]
pub struct RepackCli {
    /// Directory holding the file storescp wrote (its #p) [default: /tmp, as px-repack]
    #[arg(short = 'p', long = "xcrdir", value_name = "DIR")]
    pub xcrdir: Option<PathBuf>,

    /// Name of the file in --xcrdir (storescp's #f)
    #[arg(short = 'f', long = "xcrfile", value_name = "NAME")]
    pub xcrfile: Option<PathBuf>,

    /// Full path of the file, instead of --xcrdir and --xcrfile
    #[arg(long = "xcrdirfile", value_name = "PATH", conflicts_with = "xcrfile")]
    pub xcrdirfile: Option<PathBuf>,

    #[command(flatten)]
    pub filing: FilingArgs,

    /// Move the file instead of copying it (the source is removed once the
    /// copy is complete and recorded)
    #[arg(long)]
    pub cleanup: bool,

    /// Files or directories to repack in one process (directories are
    /// searched recursively; `-` reads a list of paths from stdin)
    #[arg(value_name = "PATH", conflicts_with_all = ["xcrfile", "xcrdirfile"])]
    pub paths: Vec<PathBuf>,

    /// Read the paths to repack from FILE, one per line (`-`: stdin)
    #[arg(long = "files-from", value_name = "FILE", conflicts_with_all = ["xcrfile", "xcrdirfile"])]
    pub files_from: Option<PathBuf>,

    /// Paths in lists are separated by NUL, as `find -print0` writes them
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// Repack the files directly in --xcrdir whose names contain any of
    /// these comma-separated substrings (px-repack's batch mode)
    #[arg(long = "parseAllFilesWithSubStr", value_name = "SUBSTRS", requires = "xcrdir", conflicts_with_all = ["xcrfile", "xcrdirfile"])]
    pub names_containing: Option<String>,

    /// Number of files repacked at once in batch mode, at least 1
    /// [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N", value_parser = at_least_one)]
    pub jobs: Option<usize>,

    /// Ignored (px-repack's debug log)
    #[arg(long, hide_short_help = true)]
    pub debug: bool,

    /// Refused: pass the options themselves
    #[arg(long = "JSONargs", value_name = "JSON", hide_short_help = true)]
    pub json_args: Option<String>,

    /// Print help (-h a summary, --help the whole of it)
    #[arg(short = 'h', long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,

    /// Print the whole help: options, tree, templates, examples
    /// (px-repack's description)
    #[arg(short = 'x', long = "desc", action = clap::ArgAction::HelpLong)]
    desc: Option<bool>,

    /// Print a summary of the options (px-repack's synopsis)
    #[arg(short = 'y', long = "synopsis", action = clap::ArgAction::HelpShort)]
    synopsis: Option<bool>,
}

/// A number of jobs: 0 would do nothing at all, so it is refused.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(
            "0 jobs would repack nothing: give at least 1 (or leave out -j for one per CPU)".into(),
        ),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
