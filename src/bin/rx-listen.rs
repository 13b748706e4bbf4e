use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;

use rx_repack::exit_codes;
use rx_repack::listener::cli::{ListenCli, dcmtk_spellings};
use rx_repack::listener::config::{ListenConfig, PROGRAM, Task};
use rx_repack::listener::{listen, oxidicom, replay_events};

fn main() -> ExitCode {
    let from_env = match oxidicom::from_env(std::env::vars_os()) {
        Ok(from_env) => from_env,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot start: {e}");
            return ExitCode::from(exit_codes::USAGE);
        }
    };
    // The environment's options first: the command line's override them.
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let at = args.len().min(1);
    args.splice(at..at, from_env.args);
    let mut cli = ListenCli::parse_from(dcmtk_spellings(args));
    if cli.listen.is_none() && !cli.replay_events {
        cli.listen = from_env.listen;
    }
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
    let done = match config.task {
        Task::Listen(address) => {
            listen(&config, address, &stop).with_context(|| format!("cannot listen on {address}"))
        }
        Task::ReplayEvents => replay_events(&config, &stop)
            .map(drop)
            .context("cannot replay the series events"),
    };
    match done {
        Ok(()) => ExitCode::from(exit_codes::SUCCESS),
        Err(e) => {
            eprintln!("{PROGRAM}: {e:#}");
            ExitCode::from(exit_codes::FAILED)
        }
    }
}
