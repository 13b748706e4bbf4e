//! The per-file pipeline: read the header, lay out, place, record. It does
//! not know whether it runs for one file or inside a batch.

use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::config::Config;
use crate::header::{Elements, ReadError, read_elements, read_header, read_header_of};
use crate::layout::Layout;
use crate::place::{self, Mode, Outcome, PlaceError};
use crate::quarantine::quarantine;
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
    #[error("cannot hash the file: {0}")]
    Hash(io::Error),
}

/// Turns a read failure into the error to report, moving the file to the
/// quarantine dir first when it is not DICOM and one is configured.
fn refuse(src: &Path, cause: ReadError, config: &Config) -> RepackError {
    let not_dicom = matches!(cause, ReadError::Empty | ReadError::NotDicom(_));
    match &config.quarantine {
        Some(dir) if not_dicom => match quarantine(src, dir, &cause.to_string()) {
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
    let source = File::open(src).map_err(|e| refuse(src, ReadError::Open(e), config))?;
    // One stat of the source serves the header read and the copy.
    let metadata = source
        .metadata()
        .map_err(|e| refuse(src, ReadError::Open(e), config))?;
    let header = read_header_of(&source, &metadata, Elements::Only(&wanted))
        .map_err(|cause| refuse(src, cause, config))?;
    let placement = config.layout.place(&|tag| header.text(tag));
    let own_uid = header.instance_uid();
    let id = || instance_id(src, own_uid.as_deref());
    let file_name = if placement.needs_unique_name {
        placement.unique_file_name(&id().map_err(RepackError::Hash)?)
    } else {
        placement.file_name()
    };
    let dir = config.datadir.join(&placement.series_dir);
    let same_instance = |existing: &Path| match &own_uid {
        Some(own) => read_elements(existing, &[tags::SOP_INSTANCE_UID])
            .ok()
            .and_then(|other| other.instance_uid())
            .is_some_and(|other| &other == own),
        None => same_content(src, existing),
    };
    // Only reached when another instance holds the name.
    let alternative = || placement.unique_file_name(&id().unwrap_or_else(|_| "unhashed".into()));
    let source = place::Source {
        path: src,
        file: &source,
        metadata: &metadata,
    };
    let placed = place::place(
        &source,
        &dir,
        &file_name,
        config.mode,
        &same_instance,
        &alternative,
    )?;
    // Records before removing the source: a failure here leaves the
    // source where it was, so nothing is ever gone and unrecorded.
    if let Some(logdir) = &config.logdir {
        let whole = || read_header(&placed.path);
        records::write_records(logdir, &header, &whole, &placed)?;
    }
    if config.mode == Mode::Move {
        place::finish_move(src, &placed)?;
    }
    Ok(Repacked {
        size: placed.metadata.len(),
        dst: placed.path,
        patient_id: header.text(tags::PATIENT_ID),
        series_instance_uid: header.text(tags::SERIES_INSTANCE_UID),
        missing: placement.missing,
        outcome: placed.outcome,
    })
}

/// A name part that tells this instance from others and stays the same
/// when it is delivered again (even changed): a hash of its SOPInstanceUID,
/// or without one, of its content.
fn instance_id(path: &Path, uid: Option<&str>) -> io::Result<String> {
    match uid {
        Some(uid) => Ok(format!("{:016x}", seahash::hash(uid.as_bytes()))),
        None => content_hash(path),
    }
}

fn content_hash(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = seahash::SeaHasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(format!("{:016x}", hasher.finish()));
        }
        hasher.write(&buffer[..n]);
    }
}

fn same_content(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a) == size(b) && matches!((content_hash(a), content_hash(b)), (Ok(x), Ok(y)) if x == y)
}
