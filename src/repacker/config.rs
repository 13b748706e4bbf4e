//! rx-repack's resolved options: how the files are filed, and which.

use std::path::PathBuf;

use super::cli::RepackCli;
use crate::filing::{Filing, FilingArgsError};
use crate::placing::Mode;

/// The name every line rx-repack prints starts with.
pub const PROGRAM: &str = "rx-repack";

/// How to repack, shared by every file of a run.
#[derive(Debug, Clone)]
pub struct RepackConfig {
    pub filing: Filing,
    /// Copy, or move (`--cleanup`).
    pub mode: Mode,
}

/// What to repack.
#[derive(Debug, Clone)]
pub enum Input {
    /// One file, as storescp asks.
    One(PathBuf),
    /// Many, in parallel.
    Many(Batch),
}

/// Where the paths of a batch come from.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Files and directories (searched recursively); `-` reads a list of
    /// paths from standard input.
    Paths(Vec<PathBuf>),
    /// A file listing paths (`-`: standard input).
    List(PathBuf),
    /// px-repack's `--parseAllFilesWithSubStr`: the files directly in `dir`
    /// whose names contain any of `substrings`.
    NamesContaining {
        dir: PathBuf,
        substrings: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub inputs: Inputs,
    /// Lists are NUL-separated.
    pub null: bool,
    pub jobs: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RepackConfigError {
    #[error("--JSONargs is not supported: pass the options on the command line")]
    JsonArgs,
    #[error(
        "no file given: use --xcrdir DIR --xcrfile NAME, --xcrdirfile PATH, or PATH... for a batch"
    )]
    NoInput,
    #[error("{0}")]
    Filing(#[from] FilingArgsError),
}

impl RepackConfig {
    pub fn from_cli(cli: RepackCli) -> Result<(RepackConfig, Input), RepackConfigError> {
        if cli.json_args.is_some() {
            return Err(RepackConfigError::JsonArgs);
        }
        let filing = cli.filing.resolve(PROGRAM)?;
        let jobs = cli
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let many = |inputs| {
            Input::Many(Batch {
                inputs,
                null: cli.null,
                jobs,
            })
        };
        let input = if let Some(substrings) = cli.names_containing {
            many(Inputs::NamesContaining {
                dir: cli.xcrdir.unwrap_or_else(|| PathBuf::from("/tmp")),
                substrings: substrings.split(',').map(String::from).collect(),
            })
        } else if let Some(list) = cli.files_from {
            many(Inputs::List(list))
        } else if !cli.paths.is_empty() {
            many(Inputs::Paths(cli.paths))
        } else if let Some(path) = cli.xcrdirfile {
            Input::One(path)
        } else if let Some(file) = cli.xcrfile {
            let dir = cli.xcrdir.unwrap_or_else(|| PathBuf::from("/tmp"));
            Input::One(dir.join(file))
        } else {
            return Err(RepackConfigError::NoInput);
        };
        let config = RepackConfig {
            filing,
            mode: if cli.cleanup { Mode::Move } else { Mode::Copy },
        };
        Ok((config, input))
    }
}
