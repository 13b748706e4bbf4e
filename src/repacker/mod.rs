//! rx-repack's front door: files at paths, one as storescp asks
//! (`--xcrdir #p --xcrfile #f`) or many in one process ([`batch`]).
//! [`cli`] parses the command line, [`config`] resolves it; each file goes
//! through [`crate::pipeline`] as an [`Origin::File`].

pub mod batch;
pub mod cli;
pub mod config;

use std::path::Path;

use crate::pipeline::{self, RepackError, Repacked};
use crate::placing::{Origin, SourceFile};
use crate::reading::HeaderError;
use crate::report::Report;
use config::RepackConfig;

/// Repacks the file at `path` as `config` says; returns what happened and
/// what to tell the user of it.
pub fn repack_path(path: &Path, config: &RepackConfig) -> (Result<Repacked, RepackError>, Report) {
    let result = SourceFile::open(path)
        .map_err(|e| RepackError::Read(HeaderError::Open(e)))
        .and_then(|src| {
            let origin = Origin::File {
                src,
                mode: config.mode,
            };
            pipeline::repack(origin, &config.filing)
        });
    let report = Report::of(
        &config.filing.reporting,
        &path.display().to_string(),
        &result,
    );
    (result, report)
}
