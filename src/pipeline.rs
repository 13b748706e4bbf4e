//! The per-file pipeline: read the header, lay out, place, record. It does
//! not know whether it runs for one file or inside a batch.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::config::Config;
use crate::layout::Layout;
use crate::placing::identity::{instance_id, same_instance};
use crate::placing::quarantine::{quarantine, quarantine_file};
use crate::placing::unnamed::Unnamed;
use crate::placing::{self, Destination, Mode, Origin, Outcome, PlaceError, Placed, SourceFile};
use crate::reading::{Header, ReadError, Wanted, read_header};
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
    /// An instance that could not be received (rx-listen).
    #[error("{0}")]
    Received(String),
}

/// Turns a read failure into the error to report, moving the file to the
/// quarantine dir first when its content is at fault and one is configured.
fn refuse(incoming: &Incoming, cause: ReadError, config: &Config) -> RepackError {
    match &config.quarantine {
        Some(dir) if cause.is_bad_content() => {
            let reason = cause.to_string();
            let moved = match incoming {
                Incoming::Path(src) => quarantine(src, dir, &reason),
                Incoming::Received { file, name } => {
                    quarantine_file(file.file(), name, dir, &reason)
                }
            };
            match moved {
                Ok(to) => RepackError::Quarantined { cause, to },
                Err(error) => RepackError::QuarantineFailed { cause, error },
            }
        }
        _ => RepackError::Read(cause),
    }
}

/// Where an instance comes from.
enum Incoming<'a> {
    /// A file at a path, copied or moved as the config says.
    Path(&'a Path),
    /// A file received over the network, written unnamed on the data dir's
    /// file system; `name` says where from, for the quarantine.
    Received { file: Unnamed, name: &'a str },
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
    let incoming = Incoming::Path(src);
    let file = File::open(src).map_err(|e| refuse(&incoming, ReadError::Open(e), config))?;
    // One stat of the source serves the header read and the copy.
    let metadata = file
        .metadata()
        .map_err(|e| refuse(&incoming, ReadError::Open(e), config))?;
    let read = read(&file, &metadata, config).map_err(|cause| refuse(&incoming, cause, config))?;
    let source = SourceFile {
        path: src,
        file: &file,
        metadata: &metadata,
    };
    let origin = Origin::File {
        src: &source,
        mode: config.mode,
    };
    let (placed, missing) = file_away(&read, &file, origin, config)?;
    if config.mode == Mode::Move {
        placing::finish_move(src, &placed)?;
    }
    Ok(read.repacked(placed, missing))
}

/// Repacks an instance received over the network, written complete into
/// `file`, an unnamed file on the data dir's file system (which must be
/// open for reading too); `name` says where it came from. It is linked
/// into place, never copied.
pub fn repack_received(
    file: Unnamed,
    name: &str,
    config: &Config,
) -> Result<Repacked, RepackError> {
    let read = file
        .file()
        .metadata()
        .map_err(ReadError::Read)
        .and_then(|metadata| read(file.file(), &metadata, config).map(|read| (read, metadata)));
    let (read, _) = match read {
        Ok(read) => read,
        Err(cause) => return Err(refuse(&Incoming::Received { file, name }, cause, config)),
    };
    // The unnamed file is moved into the origin; reading goes through a
    // second descriptor of it.
    let reader = file
        .file()
        .try_clone()
        .map_err(|e| RepackError::Read(ReadError::Read(e)))?;
    let (placed, missing) = file_away(&read, &reader, Origin::Unnamed(file), config)?;
    Ok(read.repacked(placed, missing))
}

/// What is read of an instance before anything is placed or recorded:
/// nothing that can refuse a file may come after it is placed.
struct Read {
    /// The elements of [`wanted_tags`].
    header: Header,
    /// Every element, when the records written once per series are due.
    whole: Option<Header>,
}

fn read(file: &File, metadata: &Metadata, config: &Config) -> Result<Read, ReadError> {
    let wanted = wanted_tags(&config.layout);
    let header = read_header(file, metadata, Wanted::Only(&wanted))?;
    let whole = match &config.logdir {
        Some(logdir) if records::series_records_due(logdir.as_std_path(), &header) => {
            Some(read_header(file, metadata, Wanted::Whole)?)
        }
        _ => None,
    };
    Ok(Read { header, whole })
}

/// Lays out, places and records the instance read as `read`, whose bytes
/// are `file`. Returns where it went, and the keywords the layout missed.
fn file_away(
    read: &Read,
    file: &File,
    origin: Origin,
    config: &Config,
) -> Result<(Placed, Vec<&'static str>), RepackError> {
    let header = &read.header;
    let placement = config.layout.place(&|tag| header.text(tag));
    let own_uid = header.instance_uid();
    let id = || instance_id(file, own_uid.as_deref());
    let file_name = if placement.needs_unique_name {
        placement.unique_file_name(&id().map_err(RepackError::Hash)?)
    } else {
        placement.file_name()
    };
    let destination = Destination {
        datadir: config.datadir.as_std_path(),
        series_dir: &placement.series_dir,
        file_name: &file_name,
        durable: config.durable,
    };
    let placed = placing::place(
        origin,
        &destination,
        &|existing| same_instance(file, own_uid.as_deref(), existing),
        // Only reached when another instance holds the name.
        &|| placement.unique_file_name(&id().unwrap_or_else(|_| "unhashed".into())),
    )?;
    // Records before a move removes the source: a failure here leaves the
    // source where it was, so nothing is ever gone and unrecorded.
    if let Some(logdir) = &config.logdir {
        let logdir = logdir.as_std_path();
        records::write_records(logdir, header, read.whole.as_ref(), &placed, config.durable)?;
    }
    Ok((placed, placement.missing))
}

impl Read {
    fn repacked(self, placed: Placed, missing: Vec<&'static str>) -> Repacked {
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
            series_instance_uid: self.header.text(tags::SERIES_INSTANCE_UID),
            missing,
            outcome: placed.outcome,
        }
    }
}
