//! Batch mode: the per-file pipeline over many files in one process, by a
//! pool of workers fed through a bounded queue (memory stays bounded by the
//! number of workers, whatever the number of files). [`inputs`] finds the
//! files; [`progress`] shows how far it got.

pub mod inputs;
mod progress;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::{Batch, PROGRAM, RepackConfig};
use super::repack_path;
use crate::exit_codes;
use crate::pipeline::{RepackError, Repacked};
use inputs::for_each_input;
use progress::{Counter, Progress};

#[derive(Default)]
struct Totals {
    placed: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

/// Repacks every file of `batch`; returns the exit status.
pub fn run(batch: &Batch, config: &RepackConfig) -> u8 {
    let started = Instant::now();
    let stop = stop_on_signal();
    let totals = Arc::new(Totals::default());
    let progress = Progress::new(shows_progress(config));
    let (queue, jobs) = sync_channel::<PathBuf>(batch.jobs * 64);
    // The walk runs on a thread of its own: reading a list from a pipe may
    // block, and a stop signal must not wait for the next line.
    let walker = {
        let (batch, stop, totals, progress) = (
            batch.clone(),
            Arc::clone(&stop),
            Arc::clone(&totals),
            progress.counter().clone(),
        );
        std::thread::spawn(move || {
            let _ = for_each_input(&batch.inputs, batch.null, &mut |item| {
                if stop.load(Ordering::Relaxed) {
                    return ControlFlow::Break(());
                }
                match item {
                    Ok(path) => {
                        progress.queued();
                        // Blocks while the workers are busy: the walk never
                        // runs far ahead of them.
                        if queue.send(path).is_err() {
                            return ControlFlow::Break(());
                        }
                    }
                    Err(e) => {
                        totals.failed.fetch_add(1, Ordering::Relaxed);
                        progress.suspend(|| eprintln!("{PROGRAM}: error: {e}"));
                    }
                }
                ControlFlow::Continue(())
            });
            // Dropping the queue here tells the workers the walk is over.
        })
    };
    let jobs = Mutex::new(jobs);
    std::thread::scope(|scope| {
        for _ in 0..batch.jobs {
            scope.spawn(|| work(&jobs, &stop, config, &totals, progress.counter()));
        }
    });
    let interrupted = stop.load(Ordering::Relaxed);
    if !interrupted {
        // The queue is closed, so the walk has ended.
        let _ = walker.join();
    }
    progress.finish();

    let failed = totals.failed.load(Ordering::Relaxed);
    if config.filing.reporting.verbosity >= 1 {
        eprintln!(
            "{PROGRAM}: {} placed, {failed} failed, {} bytes, {:.2} s{}",
            totals.placed.load(Ordering::Relaxed),
            totals.bytes.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64(),
            if interrupted { ", interrupted" } else { "" }
        );
    }
    if interrupted {
        exit_codes::INTERRUPTED
    } else if failed > 0 {
        exit_codes::FAILED
    } else {
        exit_codes::SUCCESS
    }
}

/// One worker: takes paths off the queue until it is closed and empty, or
/// until a stop signal (then it takes no new file).
fn work(
    jobs: &Mutex<Receiver<PathBuf>>,
    stop: &AtomicBool,
    config: &RepackConfig,
    totals: &Totals,
    progress: &Counter,
) {
    while !stop.load(Ordering::Relaxed) {
        let next = match jobs.lock() {
            Ok(jobs) => jobs.recv_timeout(Duration::from_millis(100)),
            Err(_) => return,
        };
        let path = match next {
            Ok(path) => path,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let (result, report) = repack_path(&path, config);
        count(&result, totals);
        report.print_record();
        // Clearing the bar to print redraws it: only when there is a line.
        if report.has_message() {
            progress.suspend(|| report.print_message());
        }
        progress.done();
    }
}

fn count(result: &Result<Repacked, RepackError>, totals: &Totals) {
    match result {
        Ok(done) => {
            totals.placed.fetch_add(1, Ordering::Relaxed);
            totals.bytes.fetch_add(done.size, Ordering::Relaxed);
        }
        Err(_) => {
            totals.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Ctrl-C and SIGTERM stop the walk; files in flight are finished.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // Only fails if a handler is already set, which nothing else does.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    stop
}

/// Whether a person is watching: a progress bar only for a terminal, and
/// not when the output is for a program or asked to be quiet.
fn shows_progress(config: &RepackConfig) -> bool {
    use std::io::IsTerminal;
    let reporting = &config.filing.reporting;
    !reporting.ndjson && reporting.verbosity > 0 && std::io::stderr().is_terminal()
}
