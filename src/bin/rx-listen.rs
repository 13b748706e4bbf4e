use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;

use rx_repack::exit_codes;
use rx_repack::receiving::listen;
use rx_repack::receiving::options::{ListenCli, ListenOptions, dcmtk_spellings};

fn main() -> ExitCode {
    let cli = ListenCli::parse_from(dcmtk_spellings(std::env::args_os()));
    let options = match ListenOptions::from_cli(cli).context("cannot start") {
        Ok(options) => options,
        Err(e) => {
            eprintln!("rx-listen: {e:#}");
            return ExitCode::from(exit_codes::USAGE);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // Only fails if a handler is already set, which nothing else does.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    match listen(&options, &stop).with_context(|| format!("cannot listen on {}", options.address)) {
        Ok(()) => ExitCode::from(exit_codes::SUCCESS),
        Err(e) => {
            eprintln!("rx-listen: {e:#}");
            ExitCode::from(exit_codes::FAILED)
        }
    }
}
