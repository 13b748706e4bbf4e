use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use rx_repack::exit_codes;
use rx_repack::repacker::cli::RepackCli;
use rx_repack::repacker::config::{Input, PROGRAM, RepackConfig};
use rx_repack::repacker::{batch, repack_path};

fn main() -> ExitCode {
    let resolved = RepackConfig::from_cli(RepackCli::parse()).context("cannot start");
    let (config, input) = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("{PROGRAM}: {e:#}");
            return ExitCode::from(exit_codes::USAGE);
        }
    };
    ExitCode::from(match input {
        Input::One(src) => {
            let (result, report) = repack_path(&src, &config);
            report.print_record();
            report.print_message();
            if result.is_ok() {
                exit_codes::SUCCESS
            } else {
                exit_codes::FAILED
            }
        }
        Input::Many(batch) => batch::run(&batch, &config),
    })
}
