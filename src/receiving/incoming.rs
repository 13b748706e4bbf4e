//! An instance being received: a Part 10 file, written unnamed on the data
//! dir's file system as the data set streams in (never held in memory),
//! with a file meta group of our making in front of the data set, which is
//! kept bit for bit as it arrived.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use dicom_object::meta::FileMetaTableBuilder;

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
    failure: Option<io::Error>,
    bytes: u64,
}

impl Incoming {
    /// Starts a file in `datadir` (made if missing) with the meta group of
    /// `meta`.
    pub fn start(datadir: &Path, meta: &Meta) -> io::Result<Incoming> {
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
        // rw-r--r-- less the umask, as storescp makes its files.
        let file = creating_dir(datadir, || Unnamed::create_in(datadir, 0o666))?;
        let mut incoming = Incoming {
            file,
            failure: None,
            bytes: 0,
        };
        incoming.write(&head);
        incoming.bytes = 0;
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

    /// The complete file, unnamed, or why it could not be written.
    pub fn finish(self) -> io::Result<Unnamed> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.file),
        }
    }
}
