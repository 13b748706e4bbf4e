use clap::Parser;

use rx_repack::cli::Cli;
use rx_repack::config::{Config, Input};
use rx_repack::{batch, exit_codes, pipeline, report};

fn main() {
    let cli = Cli::parse();
    let (config, input) = match Config::from_cli(cli) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("rx-repack: {e}");
            std::process::exit(exit_codes::USAGE);
        }
    };
    let code = match input {
        Input::One(src) => {
            let result = pipeline::repack(&src, &config);
            report::report(&src, &result, config.verbosity, config.ndjson);
            if result.is_ok() {
                exit_codes::SUCCESS
            } else {
                exit_codes::FAILED
            }
        }
        Input::Many(files) => batch::run(&files, &config),
    };
    std::process::exit(code);
}
