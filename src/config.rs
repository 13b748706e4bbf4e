//! The resolved options the program runs on.

use std::path::PathBuf;

use crate::cli::Cli;
use crate::layout::Layout;
use crate::place::Mode;

/// How to repack, shared by every file of a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub datadir: PathBuf,
    pub logdir: Option<PathBuf>,
    pub layout: Layout,
    pub mode: Mode,
    pub verbosity: u8,
    pub ndjson: bool,
}

/// What to repack.
#[derive(Debug, Clone)]
pub enum Input {
    One(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--JSONargs is not supported: pass the options on the command line")]
    JsonArgs,
    #[error("no file given: use --xcrdir DIR --xcrfile NAME, or --xcrdirfile PATH")]
    NoInput,
    #[error("{0}")]
    Layout(#[from] crate::layout::LayoutError),
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<(Config, Input), ConfigError> {
        if cli.json_args.is_some() {
            return Err(ConfigError::JsonArgs);
        }
        let layout = Layout::new(
            &cli.root_template,
            &cli.study_template,
            &cli.series_template,
            &cli.image_template,
        )?;
        let input = match (cli.xcrdirfile, cli.xcrfile) {
            (Some(path), _) => Input::One(path),
            (None, Some(file)) => {
                let dir = cli.xcrdir.unwrap_or_else(|| PathBuf::from("/tmp"));
                Input::One(dir.join(file))
            }
            (None, None) => return Err(ConfigError::NoInput),
        };
        let config = Config {
            datadir: cli.datadir,
            logdir: cli.logdir,
            layout,
            mode: if cli.cleanup { Mode::Move } else { Mode::Copy },
            verbosity: cli.verbosity,
            ndjson: cli.log_ndjson,
        };
        Ok((config, input))
    }
}
