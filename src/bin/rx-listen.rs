use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;

use rx_repack::exit_codes;
use rx_repack::listener::cli::{ListenCli, dcmtk_spellings};
use rx_repack::listener::config::{ListenConfig, PROGRAM};
use rx_repack::listener::listen;

fn main() -> ExitCode {
    let cli = ListenCli::parse_from(dcmtk_spellings(std::env::args_os()));
    let config = match ListenConfig::from_cli(cli).context("cannot start") {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{PROGRAM}: {e:#}");
            return ExitCode::from(exit_codes::USAGE);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // Only fails if a handler is already set, which nothing else does.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    match listen(&config, &stop).with_context(|| format!("cannot listen on {}", config.address)) {
        Ok(()) => ExitCode::from(exit_codes::SUCCESS),
        Err(e) => {
            eprintln!("{PROGRAM}: {e:#}");
            ExitCode::from(exit_codes::FAILED)
        }
    }
}
