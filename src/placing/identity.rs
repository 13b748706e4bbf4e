//! Which instance a file is: what tells it from others in its name, and
//! whether a file found at a name is the same instance.

use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read};
use std::path::Path;

use dicom_dictionary_std::tags;

use crate::layout::names::{hash_hex, hex};
use crate::reading::read_elements;

/// A name part that tells this instance from others and stays the same
/// when it is delivered again (even changed): a hash of its SOPInstanceUID,
/// or without one, of its content.
pub fn instance_id(path: &Path, uid: Option<&str>) -> io::Result<String> {
    match uid {
        Some(uid) => Ok(hash_hex(uid.as_bytes())),
        None => content_hash(path),
    }
}

/// Whether the file at `existing` is the instance `uid` (the file at
/// `src`, which has no usable UID when `uid` is `None`: then only the same
/// content counts).
pub fn same_instance(src: &Path, uid: Option<&str>, existing: &Path) -> bool {
    match uid {
        Some(own) => read_elements(existing, &[tags::SOP_INSTANCE_UID])
            .ok()
            .and_then(|other| other.instance_uid())
            .is_some_and(|other| other == own),
        None => same_content(src, existing),
    }
}

fn content_hash(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = seahash::SeaHasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex(hasher.finish()));
        }
        hasher.write(&buffer[..n]);
    }
}

fn same_content(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a) == size(b) && matches!((content_hash(a), content_hash(b)), (Ok(x), Ok(y)) if x == y)
}
