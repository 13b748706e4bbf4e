//! The progress deadline of an association: by when its peer must have
//! made progress, or be cut off.
//!
//! Socket timeouts bound each read, not the association: a peer sending
//! a byte just before each read times out would hold its thread and its
//! place among `--max-associations` forever. So each association has a
//! deadline, which the thread serving it moves on when the peer makes
//! progress (see [`super::association::MIN_PROGRESS`] for what counts), and
//! which the accepting thread watches: once it has passed, the
//! connection's reading side is shut down, the blocked read returns,
//! and the serving thread finds the deadline expired and aborts.
//!
//! While we do our own work (filing an instance: writing, fsync,
//! records), the deadline is held: our slowness is not the peer's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// No deadline (held, or no limit).
const NONE: u64 = 0;
/// Passed, and the connection cut: final.
const EXPIRED: u64 = u64::MAX;

/// A deadline shared by the serving thread and the watcher.
#[derive(Debug)]
pub struct Deadline {
    epoch: Instant,
    /// Milliseconds after `epoch` plus one, or [`NONE`], or [`EXPIRED`].
    at: AtomicU64,
}

impl Default for Deadline {
    fn default() -> Deadline {
        Deadline {
            epoch: Instant::now(),
            at: AtomicU64::new(NONE),
        }
    }
}

impl Deadline {
    /// The peer must make progress within `within` from now (`None`: no
    /// limit). False if the deadline has already expired.
    pub fn arm(&self, within: Option<Duration>) -> bool {
        let at = match within {
            Some(within) => {
                let ms = (self.epoch.elapsed() + within).as_millis();
                // Plus one, as `expire_if_due` counts: never NONE, never
                // EXPIRED.
                u64::try_from(ms)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1)
                    .min(EXPIRED - 1)
            }
            None => NONE,
        };
        self.set(at)
    }

    /// No deadline while we work. False if it has already expired.
    pub fn hold(&self) -> bool {
        self.set(NONE)
    }

    /// Whether the deadline passed and the connection was cut.
    pub fn expired(&self) -> bool {
        self.at.load(Ordering::Acquire) == EXPIRED
    }

    /// For the watcher: true (once) if the deadline has passed; it is
    /// then expired for good, and the caller cuts the connection.
    pub fn expire_if_due(&self) -> bool {
        let at = self.at.load(Ordering::Acquire);
        if at == NONE || at == EXPIRED {
            return false;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(EXPIRED - 2) + 1;
        now >= at
            && self
                .at
                .compare_exchange(at, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn set(&self, at: u64) -> bool {
        let mut current = self.at.load(Ordering::Acquire);
        loop {
            if current == EXPIRED {
                return false;
            }
            match self
                .at
                .compare_exchange(current, at, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_expires_once_and_for_good() {
        let deadline = Deadline::default();
        assert!(!deadline.expire_if_due(), "no deadline yet");
        assert!(deadline.arm(Some(Duration::from_secs(60))));
        assert!(!deadline.expire_if_due(), "not due");
        assert!(deadline.arm(Some(Duration::ZERO)));
        assert!(deadline.expire_if_due());
        assert!(!deadline.expire_if_due(), "only once");
        assert!(deadline.expired());
        assert!(!deadline.hold() && !deadline.arm(None), "final");
    }

    #[test]
    fn a_held_deadline_never_expires() {
        let deadline = Deadline::default();
        assert!(deadline.arm(Some(Duration::ZERO)));
        assert!(deadline.hold());
        assert!(!deadline.expire_if_due());
        assert!(!deadline.expired());
    }
}
