//! Which instance a file is: what tells it from others in its name, and
//! whether a file found at a name is the same instance.

use std::fs::File;
use std::hash::Hasher;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use dicom_dictionary_std::tags;

use crate::layout::names::{hash_hex, hex};
use crate::reading::read_elements;

/// A name part that tells the instance in `file` from others and stays
/// the same when it is delivered again (even changed): a hash of its
/// SOPInstanceUID, or without one, of its content.
pub fn instance_id(file: &File, uid: Option<&str>) -> io::Result<String> {
    match uid {
        Some(uid) => Ok(hash_hex(uid.as_bytes())),
        None => content_hash(file),
    }
}

/// Whether the file at `existing` is the instance `uid` (the one in
/// `file`, which has no usable UID when `uid` is `None`: then only the
/// same content counts).
pub fn same_instance(file: &File, uid: Option<&str>, existing: &Path) -> bool {
    match uid {
        Some(own) => read_elements(existing, &[tags::SOP_INSTANCE_UID])
            .ok()
            .and_then(|other| other.instance_uid())
            .is_some_and(|other| other == own),
        None => same_content(file, existing),
    }
}

/// The hash of everything in `file` (read by position: its offset is
/// left alone).
fn content_hash(file: &File) -> io::Result<String> {
    let mut hasher = seahash::SeaHasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut at = 0;
    loop {
        let n = file.read_at(&mut buffer, at)?;
        if n == 0 {
            return Ok(hex(hasher.finish()));
        }
        hasher.write(&buffer[..n]);
        at += n as u64;
    }
}

fn same_content(file: &File, other: &Path) -> bool {
    let Ok(other) = File::open(other) else {
        return false;
    };
    let size = |f: &File| f.metadata().map(|m| m.len()).ok();
    size(file) == size(&other)
        && matches!((content_hash(file), content_hash(&other)), (Ok(x), Ok(y)) if x == y)
}
