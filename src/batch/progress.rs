//! The progress bar of a batch: on stderr, only for a person watching a
//! terminal, drawn from the first file on, at most ten times a second.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the bar may be redrawn, per second.
const REDRAWS_PER_SECOND: u8 = 10;

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    /// Whether the bar is drawn once there is something to show.
    shown: bool,
}

impl Progress {
    /// A bar that is drawn when `shown`, else only counts.
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
        Progress { bar, shown }
    }

    /// One more file to do; the first makes the bar appear (so there is
    /// never a frame of `0/0`).
    pub fn queued(&self) {
        self.bar.inc_length(1);
        if self.shown && self.bar.length() == Some(1) {
            self.bar
                .set_draw_target(ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND));
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
    }

    /// One file done.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    /// Runs `print` with the bar cleared, so that a line printed meanwhile
    /// is not drawn over.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        self.bar.suspend(print)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
