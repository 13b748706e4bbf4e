//! The progress bar of a batch: on stderr, only for a person watching a
//! terminal. Workers only count; a ticker thread draws the counts at most
//! ten times a second, and only once there is a file to count (never a
//! frame of `0/0`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the bar is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Counts {
    queued: AtomicU64,
    done: AtomicU64,
    finished: AtomicBool,
}

/// The bar and its ticker.
pub struct Progress {
    counter: Counter,
    ticker: Option<JoinHandle<()>>,
}

/// What the walk and the workers hold: counts, and the bar to clear when
/// they print a line.
#[derive(Clone)]
pub struct Counter {
    bar: ProgressBar,
    counts: Arc<Counts>,
}

impl Progress {
    /// A bar drawn when `shown`; otherwise counting costs next to nothing.
    pub fn new(shown: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} files  {rate}  ETA {eta}")
                .expect("the template is valid")
                .with_key("rate", rate),
        );
        let counts = Arc::new(Counts::default());
        let ticker = shown.then(|| {
            let (bar, counts) = (bar.clone(), Arc::clone(&counts));
            std::thread::spawn(move || tick(&bar, &counts))
        });
        Progress {
            counter: Counter { bar, counts },
            ticker,
        }
    }

    pub fn counter(&self) -> &Counter {
        &self.counter
    }

    /// Stops drawing and clears the bar.
    pub fn finish(self) {
        self.counter.counts.finished.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker {
            let _ = ticker.join();
        }
        self.counter.bar.finish_and_clear();
    }
}

impl Counter {
    /// One more file to do.
    pub fn queued(&self) {
        self.counts.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// One file done.
    pub fn done(&self) {
        self.counts.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `print` with the bar cleared, so that a line printed meanwhile
    /// is not drawn over.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        self.bar.suspend(print)
    }
}

/// Draws the counts every [`REDRAW_EVERY`] until the batch is finished.
fn tick(bar: &ProgressBar, counts: &Counts) {
    let mut drawing = false;
    while !counts.finished.load(Ordering::Relaxed) {
        std::thread::sleep(REDRAW_EVERY);
        let queued = counts.queued.load(Ordering::Relaxed);
        if queued == 0 {
            continue;
        }
        if !drawing {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            drawing = true;
        }
        let done = counts.done.load(Ordering::Relaxed);
        bar.update(|state| {
            state.set_len(queued);
            state.set_pos(done);
        });
    }
}
