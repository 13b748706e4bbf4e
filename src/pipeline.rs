//! The per-file pipeline: read the header, lay out, place, record. It does
//! not know whether it runs for one file or inside a batch.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::config::Config;
use crate::layout::Layout;
use crate::placing::identity::{instance_id, same_instance};
use crate::placing::quarantine::quarantine;
use crate::placing::{self, Destination, Mode, Outcome, PlaceError, SourceFile};
use crate::reading::{ReadError, Wanted, read_header};
use crate::records::{self, RecordError};

/// What happened to one file that was repacked.
#[derive(Debug)]
pub struct Repacked {
    pub dst: PathBuf,
    pub size: u64,
    pub patient_id: Option<String>,
    pub series_instance_uid: Option<String>,
    /// Keywords the layout needed but the file lacks.
    pub missing: Vec<&'static str>,
    /// How the file was read, where a user should know (values cut,
    /// elements left out of the records): one line each.
    pub notes: Vec<String>,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum RepackError {
    #[error("{0}")]
    Read(ReadError),
    #[error("{cause}; moved to {}", to.display())]
    Quarantined { cause: ReadError, to: PathBuf },
    #[error("{cause}; could not quarantine it: {error}")]
    QuarantineFailed { cause: ReadError, error: io::Error },
    #[error("{0}")]
    Place(#[from] PlaceError),
    #[error("{0}")]
    Record(#[from] RecordError),
    #[error("cannot read the file to name it: {0}")]
    Hash(io::Error),
}

/// Turns a read failure into the error to report, moving the file to the
/// quarantine dir first when its content is at fault and one is configured.
fn refuse(src: &Path, cause: ReadError, config: &Config) -> RepackError {
    match &config.quarantine {
        Some(dir) if cause.is_bad_content() => match quarantine(src, dir, &cause.to_string()) {
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

/// Repacks the file at `src` as `config` says.
pub fn repack(src: &Path, config: &Config) -> Result<Repacked, RepackError> {
    let wanted = wanted_tags(&config.layout);
    let file = File::open(src).map_err(|e| refuse(src, ReadError::Open(e), config))?;
    // One stat of the source serves the header read and the copy.
    let metadata = file
        .metadata()
        .map_err(|e| refuse(src, ReadError::Open(e), config))?;
    let header = read_header(&file, &metadata, Wanted::Only(&wanted))
        .map_err(|cause| refuse(src, cause, config))?;
    // Every element, for the records written once per series, read now:
    // nothing that can refuse a file may come after it is placed.
    let whole = match &config.logdir {
        Some(logdir) if records::series_records_due(logdir.as_std_path(), &header) => Some(
            read_header(&file, &metadata, Wanted::Whole)
                .map_err(|cause| refuse(src, cause, config))?,
        ),
        _ => None,
    };
    let placement = config.layout.place(&|tag| header.text(tag));
    let own_uid = header.instance_uid();
    let id = || instance_id(src, own_uid.as_deref());
    let file_name = if placement.needs_unique_name {
        placement.unique_file_name(&id().map_err(RepackError::Hash)?)
    } else {
        placement.file_name()
    };
    let source = SourceFile {
        path: src,
        file: &file,
        metadata: &metadata,
    };
    let destination = Destination {
        datadir: config.datadir.as_std_path(),
        series_dir: &placement.series_dir,
        file_name: &file_name,
    };
    let placed = placing::place(
        &source,
        &destination,
        config.mode,
        &|existing| same_instance(src, own_uid.as_deref(), existing),
        // Only reached when another instance holds the name.
        &|| placement.unique_file_name(&id().unwrap_or_else(|_| "unhashed".into())),
    )?;
    // Records before removing the source: a failure here leaves the
    // source where it was, so nothing is ever gone and unrecorded.
    if let Some(logdir) = &config.logdir {
        records::write_records(logdir.as_std_path(), &header, whole.as_ref(), &placed)?;
    }
    if config.mode == Mode::Move {
        placing::finish_move(src, &placed)?;
    }
    let mut notes: Vec<String> = Vec::new();
    for note in header
        .notes()
        .iter()
        .chain(whole.iter().flat_map(|w| w.notes()))
    {
        if !notes.contains(note) {
            notes.push(note.clone());
        }
    }
    Ok(Repacked {
        notes,
        size: placed.metadata.len(),
        dst: placed.path,
        patient_id: header.text(tags::PATIENT_ID),
        series_instance_uid: header.text(tags::SERIES_INSTANCE_UID),
        missing: placement.missing,
        outcome: placed.outcome,
    })
}
