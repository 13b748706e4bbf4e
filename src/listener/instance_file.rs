//! The file of an instance being received: a Part 10 file, written unnamed
//! on the data dir's file system as the data set streams in (never held in
//! memory), with a file meta group of our making in front of the data set,
//! which is kept bit for bit as it arrived.
//!
//! Its files are made before the request comes ([`NextInstance`]).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use dicom_object::meta::FileMetaTableBuilder;

use crate::atomic_file::{Unnamed, creating_dir};
use crate::filing::Filing;
use crate::records;

/// Our implementation class UID (a UUID-derived UID, PS3.5 B.2) and
/// version name, in the meta group of every file rx-listen writes.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.109472385693853712063391349810465917245";
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("RX_REPACK_", env!("CARGO_PKG_VERSION"));

// ImplementationVersionName is SH: 16 characters at most (PS3.5 6.2); a
// longer version would make every file rx-listen writes invalid.
const _: () = assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16);

/// What the meta group says of a received instance.
pub struct Meta<'a> {
    pub transfer_syntax: &'a str,
    pub sop_class_uid: &'a str,
    pub sop_instance_uid: &'a str,
    /// The calling AE title (SourceApplicationEntityTitle).
    pub source_ae_title: &'a str,
}

/// The file of an instance being received. A failure to write is kept,
/// not returned at once: the rest of the data set must still be read off
/// the association before the failure is answered.
pub struct InstanceFile {
    file: Unnamed,
    failure: Option<io::Error>,
    /// The meta group's bytes (with the preamble).
    head: u64,
    /// The data set's bytes written so far.
    bytes: u64,
}

/// The most room made ahead for an instance: one at most this large is
/// written into blocks allocated ahead; a larger one allocates the rest as
/// it streams in.
const ROOM_LIMIT: u64 = 16 << 20;

/// What an association's next instance needs, made while its peer prepares
/// the request (see [`Unnamed::ahead`]): its file, with room for as many
/// bytes as the association's last instance took (a series' instances are
/// alike; allocating was a third of writing a data set as it streamed in),
/// and the file of its first record. Dropped with the association: what
/// was not taken goes with it.
#[derive(Default)]
pub struct NextInstance {
    /// The size of the last instance received.
    last_size: u64,
    data_file: Option<Unnamed>,
    record_file: Option<Unnamed>,
}

impl NextInstance {
    /// Makes what is not made yet. A failure is left for the instance's
    /// filing to meet and report.
    pub fn make_ready(&mut self, filing: &Filing) {
        if self.data_file.is_none() {
            let room = self.last_size.min(ROOM_LIMIT);
            self.data_file = Unnamed::ahead(filing.datadir.as_std_path(), room).ok();
        }
        if let (None, Some(logdir)) = (&self.record_file, &filing.logdir) {
            self.record_file = records::record_file_ahead(logdir.as_std_path()).ok();
        }
    }

    /// The file made ahead for the next instance's first record, if any.
    pub fn take_record_file(&mut self) -> Option<Unnamed> {
        self.record_file.take()
    }
}

impl InstanceFile {
    /// Starts a file in `datadir` (made if missing) with the meta group of
    /// `meta`, in the file `next` made ready there if it did.
    pub fn start(datadir: &Path, meta: &Meta, next: &mut NextInstance) -> io::Result<InstanceFile> {
        let group = FileMetaTableBuilder::new()
            .transfer_syntax(meta.transfer_syntax)
            .media_storage_sop_class_uid(meta.sop_class_uid)
            .media_storage_sop_instance_uid(meta.sop_instance_uid)
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
            .source_application_entity_title(meta.source_ae_title.trim())
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut head = vec![0u8; 128];
        head.extend(b"DICM");
        group
            .write(&mut head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let file = creating_dir(datadir, || {
            Unnamed::made_ahead_or_new(datadir, next.data_file.take())
        })?;
        let mut writer: &File = file.file();
        writer.write_all(&head)?;
        Ok(InstanceFile {
            file,
            failure: None,
            head: head.len() as u64,
            bytes: 0,
        })
    }

    /// Appends a fragment of the data set.
    pub fn write(&mut self, fragment: &[u8]) {
        if self.failure.is_none() {
            let mut file: &File = self.file.file();
            match file.write_all(fragment) {
                Ok(()) => self.bytes += fragment.len() as u64,
                Err(e) => self.failure = Some(e),
            }
        }
    }

    /// The data set's bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The complete file, unnamed, or why it could not be written. `next`
    /// learns its size.
    pub fn finish(self, next: &mut NextInstance) -> io::Result<Unnamed> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        let size = self.head + self.bytes;
        self.file.give_back_room(size)?;
        next.last_size = size;
        Ok(self.file)
    }
}
