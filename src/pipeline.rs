//! One instance, from either front door: read its header, lay it out,
//! place it, record it. It does not know whether it runs for one file,
//! inside a batch, or for an instance received over the network: the
//! [`Origin`] says where the instance comes from.

use std::fs::{File, Metadata};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::filing::Filing;
use crate::layout::{Layout, Unfit};
use crate::placing::identity::{instance_id, same_instance};
use crate::placing::quarantine::quarantine;
use crate::placing::{self, Destination, Origin, Outcome, PlaceError, Placed};
use crate::reading::{Header, HeaderError, Wanted, read_header};
use crate::records::{self, RecordError};
use crate::syncing;

/// What happened to one instance that was repacked.
#[derive(Debug)]
pub struct Repacked {
    pub dst: PathBuf,
    pub size: u64,
    pub patient_id: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    /// Keywords the layout needed but the file lacks.
    pub missing: Vec<&'static str>,
    /// How the file was read, where a user should know (values cut,
    /// elements left out of the records): one line each.
    pub notes: Vec<String>,
    pub outcome: Outcome,
    /// How long its fsyncs took, when it was filed durably.
    pub fsync: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepackError {
    #[error("{0}")]
    Read(HeaderError),
    #[error("{cause}; moved to {}", to.display())]
    Quarantined { cause: HeaderError, to: PathBuf },
    #[error("{cause}; could not quarantine it: {error}")]
    QuarantineFailed {
        cause: HeaderError,
        error: io::Error,
    },
    #[error("{0}")]
    Place(#[from] PlaceError),
    #[error("{0}")]
    Record(#[from] RecordError),
    #[error("cannot read the file to name it: {0}")]
    Hash(io::Error),
    #[error("cannot make the instance and its records durable (fsync): {0}")]
    Unsynced(io::Error),
    /// rx-listen's free-space floor: refused before anything was written.
    #[error("not stored: {0}")]
    NoRoom(String),
    #[error("{unfit}")]
    Unfit {
        unfit: Unfit,
        series_instance_uid: Option<String>,
    },
}

/// Whose fault it is that an instance could not be repacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The instance's: it is not DICOM, or broken.
    Content,
    /// Ours: the system could not read or keep it (a full or unwritable
    /// disk).
    Resources,
}

impl RepackError {
    /// The series of the instance refused, where the error knows it.
    pub fn series_instance_uid(&self) -> Option<&str> {
        match self {
            RepackError::Unfit {
                series_instance_uid,
                ..
            } => series_instance_uid.as_deref(),
            _ => None,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            RepackError::Read(cause)
            | RepackError::Quarantined { cause, .. }
            | RepackError::QuarantineFailed { cause, .. }
                if cause.is_bad_content() =>
            {
                Fault::Content
            }
            RepackError::Unfit { .. } => Fault::Content,
            _ => Fault::Resources,
        }
    }
}

/// Turns a read failure into the error to report, keeping the instance in
/// the quarantine dir first when its content is at fault and one is
/// configured.
fn refuse(origin: &Origin, cause: HeaderError, filing: &Filing) -> RepackError {
    match &filing.quarantine {
        Some(dir) if cause.is_bad_content() => match quarantine(origin, dir, &cause.to_string()) {
            Ok(to) => RepackError::Quarantined { cause, to },
            Err(error) => RepackError::QuarantineFailed { cause, error },
        },
        _ => RepackError::Read(cause),
    }
}

/// The elements a file is read for: what the layout and the per-file
/// records need, and its identity. The hundreds of others (large private
/// groups among them) are skipped.
pub fn wanted_tags(layout: &Layout) -> Vec<Tag> {
    layout
        .tags()
        .chain(records::tags_per_file())
        .chain([tags::SOP_INSTANCE_UID])
        .collect()
}

/// Repacks the instance `origin` as `filing` says.
pub fn repack(mut origin: Origin, filing: &Filing) -> Result<Repacked, RepackError> {
    let read = origin
        .metadata()
        .map_err(HeaderError::Read)
        .and_then(|metadata| read(origin.file(), &metadata, filing))
        .map_err(|cause| refuse(&origin, cause, filing))?;
    let value = |tag| read.header.text(tag);
    filing
        .layout
        .check(&value)
        .map_err(|unfit| RepackError::Unfit {
            unfit,
            series_instance_uid: value(tags::SERIES_INSTANCE_UID),
        })?;
    let (placed, missing, fsync) = place_and_record(&read, &mut origin, filing)?;
    if let Some(src) = origin.moved_from() {
        placing::finish_move(src, &placed)?;
    }
    Ok(read.repacked(placed, missing, fsync))
}

/// What is read of an instance before anything is placed or recorded:
/// nothing that can refuse a file may come after it is placed.
struct Read {
    /// The elements of [`wanted_tags`].
    header: Header,
    /// Every element, when the records written once per series are due.
    whole: Option<Header>,
}

fn read(file: &File, metadata: &Metadata, filing: &Filing) -> Result<Read, HeaderError> {
    let wanted = wanted_tags(&filing.layout);
    let header = read_header(file, metadata, Wanted::Only(&wanted))?;
    let whole = match &filing.logdir {
        Some(logdir) if records::series_records_due(logdir.as_std_path(), &header) => {
            Some(read_header(file, metadata, Wanted::Whole)?)
        }
        _ => None,
    };
    Ok(Read { header, whole })
}

/// Lays out, places and records the instance of `origin`, read as `read`.
/// Returns where it went, the keywords the layout missed, and how long
/// its fsyncs took (when durable).
fn place_and_record(
    read: &Read,
    origin: &mut Origin,
    filing: &Filing,
) -> Result<(Placed, Vec<&'static str>, Option<Duration>), RepackError> {
    let header = &read.header;
    let location = filing.layout.locate(&|tag| header.text(tag));
    let own_uid = header.instance_uid();
    let id = |file: &File| instance_id(file, own_uid.as_deref());
    let file_name = if location.needs_unique_name {
        location.unique_file_name(&id(origin.file()).map_err(RepackError::Hash)?)
    } else {
        location.file_name()
    };
    let destination = Destination {
        datadir: filing.datadir.as_std_path(),
        series_dir: &location.series_dir,
        file_name: &file_name,
    };
    // Durable (rx-listen's --fsync always): the instance and its image
    // record are written back before they are named, and every fsync the
    // filing owes is paid at its end, in one commit (see crate::syncing).
    let owed = origin.take_debts();
    let owed = owed.as_ref();
    let logdir = filing.logdir.as_ref().map(|dir| dir.as_std_path());
    let mut ahead = match origin {
        Origin::Received { record_file, .. } => record_file.take(),
        Origin::File { .. } => None,
    };
    let staged = match (logdir, owed) {
        (Some(logdir), Some(_)) => {
            let metadata = origin.metadata().map_err(RepackError::Unsynced)?;
            let path = destination.path();
            Some(records::stage_image(
                logdir,
                header,
                &path,
                &metadata,
                ahead.take(),
            )?)
        }
        _ => None,
    };
    if let Some(owed) = owed {
        let files: Vec<&File> = [Some(origin.file()), staged.as_ref().map(|s| s.file())]
            .into_iter()
            .flatten()
            .collect();
        syncing::write_back(&files).map_err(RepackError::Unsynced)?;
        for file in files {
            owed.file(file).map_err(RepackError::Unsynced)?;
        }
    }
    let placed = placing::place(
        origin,
        &destination,
        owed,
        &|file, existing| same_instance(file, own_uid.as_deref(), existing),
        // Only reached when another instance holds the name.
        &|file| location.unique_file_name(&id(file).unwrap_or_else(|_| "unhashed".into())),
    )?;
    // Records before a move removes the source: a failure here leaves the
    // source where it was, so nothing is ever gone and unrecorded.
    if let Some(logdir) = logdir {
        let durable = owed.map(|owed| records::Durable { owed, staged });
        records::write_records(logdir, header, read.whole.as_ref(), &placed, durable, ahead)?;
    }
    let fsync = match owed {
        Some(owed) => {
            let started = Instant::now();
            owed.pay().map_err(RepackError::Unsynced)?;
            Some(started.elapsed())
        }
        None => None,
    };
    Ok((placed, location.missing, fsync))
}

impl Read {
    fn repacked(
        self,
        placed: Placed,
        missing: Vec<&'static str>,
        fsync: Option<Duration>,
    ) -> Repacked {
        let mut notes: Vec<String> = Vec::new();
        for note in self
            .header
            .notes()
            .iter()
            .chain(self.whole.iter().flat_map(|w| w.notes()))
        {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
        Repacked {
            notes,
            size: placed.metadata.len(),
            dst: placed.path,
            patient_id: self.header.text(tags::PATIENT_ID),
            study_instance_uid: self.header.text(tags::STUDY_INSTANCE_UID),
            series_instance_uid: self.header.text(tags::SERIES_INSTANCE_UID),
            missing,
            outcome: placed.outcome,
            fsync,
        }
    }
}
