use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use rx_repack::cli::Cli;
use rx_repack::config::{Config, Input};
use rx_repack::report::Report;
use rx_repack::{batch, exit_codes, pipeline};

fn main() -> ExitCode {
    let resolved = Config::from_cli(Cli::parse()).context("cannot start");
    let (config, input) = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("rx-repack: {e:#}");
            return ExitCode::from(exit_codes::USAGE);
        }
    };
    ExitCode::from(match input {
        Input::One(src) => {
            let result = pipeline::repack(&src, &config);
            let report = Report::of(&src, &result, config.verbosity, config.ndjson);
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
