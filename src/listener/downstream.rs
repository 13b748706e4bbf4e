//! Who hears what each association delivers: the series [`events`]
//! (durably: an instance is acknowledged only once its series knows of
//! it) and LONK's [`progress`](super::lonk) (at most once, never waited
//! for).

use std::io;

use super::events::{Arrivals, Events};
use super::lonk::{Lonk, Progress};
use crate::pipeline::{RepackError, Repacked};
use crate::records::NOT_DEFINED;

/// What each association tells, and to whom.
#[derive(Clone, Copy, Default)]
pub struct Downstream<'a> {
    pub events: Option<&'a Events>,
    pub lonk: Option<&'a Lonk>,
}

impl<'a> Downstream<'a> {
    /// What the association from `peer`, `calling` calling `called`,
    /// delivers.
    pub fn association(&self, calling: &str, called: &str, peer: &str) -> Delivered<'a> {
        Delivered {
            arrivals: self
                .events
                .map(|events| events.arrivals(calling, called, peer)),
            progress: self.lonk.map(|lonk| lonk.association(calling)),
        }
    }
}

/// What one association delivered, as downstream hears of it.
pub struct Delivered<'a> {
    arrivals: Option<Arrivals<'a>>,
    progress: Option<Progress<'a>>,
}

impl Delivered<'_> {
    /// `repacked` was filed. An error means its series could not be told
    /// of it: the instance must not be acknowledged.
    pub fn kept(&mut self, repacked: &Repacked) -> io::Result<()> {
        if let Some(arrivals) = &mut self.arrivals {
            arrivals.arrived(repacked)?;
        }
        if let Some(progress) = &mut self.progress {
            let series = repacked.series_instance_uid.as_deref();
            progress.stored(series.unwrap_or(NOT_DEFINED));
        }
        Ok(())
    }

    /// An instance was not kept, for `why`.
    pub fn lost(&self, error: &RepackError, why: &str) {
        if let Some(progress) = &self.progress {
            progress.failed(error.series_instance_uid(), why);
        }
    }

    /// The association ended as `end` says.
    pub fn ended(self, end: &impl std::fmt::Display) {
        if let Some(arrivals) = self.arrivals {
            arrivals.ended(end);
        }
        if let Some(progress) = self.progress {
            progress.ended();
        }
    }
}
