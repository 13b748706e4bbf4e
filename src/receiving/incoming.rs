//! An instance being received: a Part 10 file, written unnamed on the data
//! dir's file system as the data set streams in (never held in memory),
//! with a file meta group of our making in front of the data set, which is
//! kept bit for bit as it arrived.
//!
//! The file is made ready before the request comes ([`NextFile`]): a
//! sender waits for each response before it sends its next instance, so
//! whatever is done while it prepares that instance costs nothing, and
//! what is done while the data streams in delays the response.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use dicom_object::meta::FileMetaTableBuilder;
use rustix::fs::FallocateFlags;

use crate::placing::unnamed::{Unnamed, creating_dir};

/// Our implementation class UID (a UUID-derived UID, PS3.5 B.2) and
/// version name, in the meta group of every file rx-listen writes.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.109472385693853712063391349810465917245";
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("RX_REPACK_", env!("CARGO_PKG_VERSION"));

/// What the meta group says of a received instance.
pub struct Meta<'a> {
    pub transfer_syntax: &'a str,
    pub sop_class_uid: &'a str,
    pub sop_instance_uid: &'a str,
    /// The calling AE title (SourceApplicationEntityTitle).
    pub source_ae_title: &'a str,
}

/// An instance being received. A failure to write is kept, not returned
/// at once: the rest of the data set must still be read off the
/// association before the failure is answered.
pub struct Incoming {
    file: Unnamed,
    /// The bytes allocated ahead (see [`NextFile`]).
    room: u64,
    failure: Option<io::Error>,
    /// The meta group's bytes (with the preamble), then the data set's.
    head: u64,
    bytes: u64,
}

/// The most a [`NextFile`] is given room for: an instance at most this
/// large is written into blocks allocated ahead; a larger one allocates
/// the rest as it streams in.
const ROOM_LIMIT: u64 = 16 << 20;

/// The file an association's next instance goes into, made while its peer
/// prepares the request: created unnamed, and given room (allocated) for
/// as many bytes as the association's last instance took, as a series'
/// instances are alike. Allocating the blocks (or tmpfs pages) was a third
/// of writing a data set as it streamed in. What room is not used is
/// given back when the instance is complete.
#[derive(Default)]
pub struct NextFile {
    ready: Option<(Unnamed, u64)>,
    /// The size of the last instance received.
    last_size: u64,
}

impl NextFile {
    /// Makes the file ready in `datadir`, unless one is. A failure is left
    /// for the instance to meet (and answer) when it comes.
    pub fn prepare(&mut self, datadir: &Path) {
        if self.ready.is_some() {
            return;
        }
        let Ok(file) = Unnamed::create_in(datadir, 0o666) else {
            return;
        };
        let wanted = self.last_size.min(ROOM_LIMIT);
        let room = match wanted > 0 {
            true => rustix::fs::fallocate(file.file(), FallocateFlags::empty(), 0, wanted)
                .map_or(0, |()| wanted),
            false => 0,
        };
        self.ready = Some((file, room));
    }
}

impl Incoming {
    /// Starts a file with the meta group of `meta`: the one `next` has
    /// ready, or a new one in `datadir` (made if missing).
    pub fn start(datadir: &Path, meta: &Meta, next: &mut NextFile) -> io::Result<Incoming> {
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
        let (file, room) = match next.ready.take() {
            Some(ready) => ready,
            // rw-r--r-- less the umask, as storescp makes its files.
            None => (
                creating_dir(datadir, || Unnamed::create_in(datadir, 0o666))?,
                0,
            ),
        };
        let mut incoming = Incoming {
            file,
            room,
            failure: None,
            head: 0,
            bytes: 0,
        };
        incoming.write(&head);
        (incoming.head, incoming.bytes) = (incoming.bytes, 0);
        match incoming.failure.take() {
            Some(e) => Err(e),
            None => Ok(incoming),
        }
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
    pub fn finish(self, next: &mut NextFile) -> io::Result<Unnamed> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        let size = self.head + self.bytes;
        if self.room > size {
            self.file.file().set_len(size)?;
        }
        next.last_size = size;
        Ok(self.file)
    }
}
