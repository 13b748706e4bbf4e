//! The record of one placed instance: its series fields and `os.stat` of
//! the placed file, as px-repack writes them.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, Datelike, Local, Timelike};
use serde::Serialize;

use super::fields::{Fields, SERIES_FIELDS, Single};
use crate::placing::Placed;
use crate::reading::Header;

/// The record of one instance (written for every file, so serialised as
/// it is, without building a JSON tree first).
#[derive(Serialize)]
pub struct ImageRecord<'a> {
    #[serde(flatten)]
    series: Fields<'a>,
    #[serde(rename = "outputFile")]
    output_file: &'a str,
    #[serde(rename = "imageObj")]
    image_obj: Single<'a, Stat>,
}

impl<'a> ImageRecord<'a> {
    /// The record of the instance `header`, at `image_name`, whose file
    /// is as `stat` says.
    pub fn new(header: &'a Header, image_name: &'a str, stat: Stat) -> Self {
        ImageRecord {
            series: Fields::of(header, &SERIES_FIELDS),
            output_file: image_name,
            image_obj: Single(image_name, stat),
        }
    }
}

/// `os.stat` of the placed file as px-repack records it, with FSlocation.
#[derive(Serialize)]
pub struct Stat {
    atime: String,
    blksize: u64,
    blocks: u64,
    ctime: String,
    dev: u64,
    gid: u32,
    ino: u64,
    mode: u32,
    mtime: String,
    nlink: u64,
    rdev: u64,
    size: u64,
    uid: u32,
    #[serde(rename = "FSlocation")]
    fs_location: String,
}

impl Stat {
    /// The stat of the placed file as it will be once the call completes:
    /// a move made by linking the source counts the source's link, which
    /// goes only after the records are written.
    pub fn placed(placed: &Placed) -> Stat {
        let nlink = placed.metadata.nlink() - u64::from(placed.source_linked);
        Stat::of(&placed.metadata, nlink, &placed.path)
    }

    /// The stat of a new file, `m` before it is named, once it is at
    /// `path`, its only name.
    pub fn to_be(m: &Metadata, path: &Path) -> Stat {
        Stat::of(m, 1, path)
    }

    fn of(m: &Metadata, nlink: u64, path: &Path) -> Stat {
        Stat {
            atime: py_datetime(m.atime(), m.atime_nsec()),
            blksize: m.blksize(),
            blocks: m.blocks(),
            ctime: py_datetime(m.ctime(), m.ctime_nsec()),
            dev: m.dev(),
            gid: m.gid(),
            ino: m.ino(),
            mode: m.mode(),
            mtime: py_datetime(m.mtime(), m.mtime_nsec()),
            nlink,
            rdev: m.rdev(),
            size: m.size(),
            uid: m.uid(),
            fs_location: path.display().to_string(),
        }
    }
}

/// `str(datetime.fromtimestamp(t))`: local time, microseconds only when
/// not zero.
fn py_datetime(seconds: i64, nanos: i64) -> String {
    let micros = (nanos + 500) / 1000;
    let (seconds, micros) = if micros >= 1_000_000 {
        (seconds + 1, micros - 1_000_000)
    } else {
        (seconds, micros)
    };
    let t = DateTime::from_timestamp(seconds, (micros * 1000) as u32)
        .unwrap_or_default()
        .with_timezone(&Local);
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_print_like_python() {
        // Compare in UTC-independent form: only the fractional part matters here.
        assert!(py_datetime(1_700_000_000, 0).ends_with(":20"));
        assert!(py_datetime(1_700_000_000, 123_456_789).ends_with(":20.123457"));
        assert!(py_datetime(1_700_000_000, 999_999_900).ends_with(":21"));
    }
}
