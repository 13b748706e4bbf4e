//! The resolved options the program runs on.

use std::path::PathBuf;

use camino::Utf8PathBuf;

use crate::cli::Cli;
use crate::layout::Layout;
use crate::placing::Mode;

/// How to repack, shared by every file of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// UTF-8, as it is written into pypx's JSON records.
    pub datadir: Utf8PathBuf,
    pub logdir: Option<Utf8PathBuf>,
    pub layout: Layout,
    pub mode: Mode,
    pub verbosity: u8,
    pub ndjson: bool,
    pub quarantine: Option<PathBuf>,
    /// Make every placed file and record durable (fsync of the file and
    /// its directory) before going on. rx-repack does not: storescp has
    /// not synced the file it received either, and a move syncs what it
    /// must before removing the source.
    pub durable: bool,
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
pub enum ConfigError {
    #[error("--JSONargs is not supported: pass the options on the command line")]
    JsonArgs,
    #[error(
        "no file given: use --xcrdir DIR --xcrfile NAME, --xcrdirfile PATH, or PATH... for a batch"
    )]
    NoInput,
    #[error(
        "{option} {}: the path must be UTF-8, as pypx's JSON records hold it",
        path.display()
    )]
    NotUtf8 { option: &'static str, path: PathBuf },
    #[error("{0}")]
    Layout(#[from] crate::layout::LayoutError),
    #[error("cannot listen on {0}")]
    Listen(String),
    #[error("{0}")]
    Tls(String),
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<(Config, Input), ConfigError> {
        if cli.json_args.is_some() {
            return Err(ConfigError::JsonArgs);
        }
        let layout = cli.templates.layout()?;
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
            return Err(ConfigError::NoInput);
        };
        let config = Config {
            datadir: utf8("--datadir", cli.datadir)?,
            logdir: cli.logdir.map(|dir| utf8("--logdir", dir)).transpose()?,
            layout,
            mode: if cli.cleanup { Mode::Move } else { Mode::Copy },
            verbosity: cli.verbosity,
            ndjson: cli.log_ndjson,
            quarantine: cli.quarantine,
            durable: false,
        };
        Ok((config, input))
    }
}

/// `path`, given as `option`, as UTF-8, or an error saying it must be.
pub fn utf8(option: &'static str, path: PathBuf) -> Result<Utf8PathBuf, ConfigError> {
    Utf8PathBuf::from_path_buf(path).map_err(|path| ConfigError::NotUtf8 { option, path })
}
