//! The bytes of a file's data set, by position, for the structure walk:
//! a plain file (whose start is already in memory, read ahead in large
//! chunks past it), or a deflated data set inflated on the fly in a small
//! window.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use flate2::read::DeflateDecoder;

use super::HeaderError;

/// How much of a file is read at once to begin with: the whole header of
/// most files.
const HEAD_BYTES: usize = 16 * 1024;

/// How much the walk reads at once past the head.
const READ_AHEAD: usize = 8 * 1024;

/// More header than any real deflated instance has before its pixel data.
/// A few hundred KiB of deflated zeros inflate to gigabytes, which dicom-rs
/// would then hold in memory (fuzz finding F1b).
pub const MAX_INFLATED_HEADER: u64 = 64 << 20;

/// Reads the start of `file`: up to [`HEAD_BYTES`].
pub fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; HEAD_BYTES];
    let mut filled = 0;
    while filled < HEAD_BYTES {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// Bytes by position. Errors of kind `InvalidData` mean the data is
/// corrupt; any other error is the system failing to read it.
pub trait Bytes {
    /// Reads as much of `buf` as there is at `pos`; returns how much.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Whether there are at least `len` bytes from `pos` on.
    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool>;
    /// Keeps the bytes from `from` on readable while the reader moves on
    /// (`None`: no longer needed). Only a forward-only source must be told.
    fn keep_from(&mut self, _from: Option<u64>) {}
}

/// A plain file; its start (`head`) is already in memory.
pub struct FileBytes<'a> {
    file: &'a File,
    head: &'a [u8],
    size: u64,
    /// Bytes read past the head, from `ahead_at` on: the walk reads a few
    /// bytes per element, so past the head it reads ahead in large chunks.
    ahead: Vec<u8>,
    ahead_at: u64,
}

impl<'a> FileBytes<'a> {
    pub fn new(file: &'a File, head: &'a [u8], size: u64) -> Self {
        FileBytes {
            file,
            head,
            size,
            ahead: Vec::new(),
            ahead_at: 0,
        }
    }

    /// Reads ahead from `pos`: at least `len` bytes unless the file ends.
    fn read_ahead(&mut self, pos: u64, len: usize) -> io::Result<()> {
        self.ahead.resize(READ_AHEAD.max(len), 0);
        let mut done = 0;
        while done < self.ahead.len() {
            match self
                .file
                .read_at(&mut self.ahead[done..], pos + done as u64)?
            {
                0 => break,
                n => done += n,
            }
        }
        self.ahead.truncate(done);
        self.ahead_at = pos;
        Ok(())
    }
}

/// The `len` bytes from file position `pos` on, if `bytes` (which start at
/// file position `start`) hold them all.
fn slice_at(bytes: &[u8], start: u64, pos: u64, len: usize) -> Option<&[u8]> {
    let from = usize::try_from(pos.checked_sub(start)?).ok()?;
    bytes.get(from..from.checked_add(len)?)
}

impl Bytes for FileBytes<'_> {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        // What the file held when it was opened, as its size said.
        let len = buf
            .len()
            .min(usize::try_from(self.size.saturating_sub(pos)).unwrap_or(usize::MAX));
        let buf = &mut buf[..len];
        if len == 0 {
            return Ok(0);
        }
        if let Some(bytes) = slice_at(self.head, 0, pos, len) {
            buf.copy_from_slice(bytes);
            return Ok(len);
        }
        if slice_at(&self.ahead, self.ahead_at, pos, len).is_none() {
            self.read_ahead(pos, len)?;
        }
        // From `pos` on, as much as the file has (all of it but at its end).
        let from = (pos - self.ahead_at) as usize;
        let n = len.min(self.ahead.len() - from);
        buf[..n].copy_from_slice(&self.ahead[from..from + n]);
        Ok(n)
    }

    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool> {
        Ok(self.size.saturating_sub(pos) >= len)
    }
}

/// A deflated data set, inflated as the walk moves forward. Only a small
/// window is kept: what the walk has passed is dropped, what it skips is
/// inflated and dropped.
pub struct InflatedBytes {
    decoder: DeflateDecoder<File>,
    /// Inflated bytes from `window_start` on.
    window: Vec<u8>,
    window_start: u64,
    /// The window is not drained below this.
    kept_from: Option<u64>,
    ended: bool,
}

impl InflatedBytes {
    /// The data set deflated in `file` from its current position on.
    pub fn new(file: File) -> Self {
        InflatedBytes {
            decoder: DeflateDecoder::new(file),
            window: Vec::new(),
            window_start: 0,
            kept_from: None,
            ended: false,
        }
    }

    /// Moves the window to start at `pos` (forward only, and not past what
    /// is kept) and fills it to hold `pos..pos + len` unless the stream
    /// ends first.
    fn fill(&mut self, pos: u64, len: usize) -> io::Result<()> {
        let corrupt = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        if pos < self.window_start {
            return Err(io::Error::other("the walk went backwards"));
        }
        if pos.saturating_add(len as u64) > MAX_INFLATED_HEADER {
            return Err(corrupt(format!(
                "the deflated header inflates to more than {} MiB",
                MAX_INFLATED_HEADER >> 20
            )));
        }
        let start = self.kept_from.map_or(pos, |kept| kept.min(pos));
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let skip = start.saturating_sub(self.window_start);
            let skip = skip.min(self.window.len() as u64) as usize;
            self.window.drain(..skip);
            self.window_start += skip as u64;
            let held = self.window_start + self.window.len() as u64;
            if (self.window_start <= pos && held >= pos + len as u64) || self.ended {
                return Ok(());
            }
            match self.decoder.read(&mut chunk) {
                Ok(0) => self.ended = true,
                Ok(n) => self.window.extend_from_slice(&chunk[..n]),
                // flate2's words for a stream that is not deflate data, and
                // for one cut short: the file's fault, not the system's.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    return Err(corrupt(format!("the deflated data set: {e}")));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Bytes for InflatedBytes {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.fill(pos, buf.len())?;
        let Some(from) = pos
            .checked_sub(self.window_start)
            .and_then(|from| usize::try_from(from).ok())
            .filter(|&from| from <= self.window.len())
        else {
            return Ok(0);
        };
        let n = buf.len().min(self.window.len() - from);
        buf[..n].copy_from_slice(&self.window[from..from + n]);
        Ok(n)
    }

    fn holds(&mut self, pos: u64, len: u64) -> io::Result<bool> {
        // Inflate (and drop) up to the last byte the element claims.
        match len.checked_sub(1) {
            None => Ok(true),
            Some(last) => Ok(self.read_at(pos + last, &mut [0u8])? == 1),
        }
    }

    fn keep_from(&mut self, from: Option<u64>) {
        self.kept_from = from;
    }
}

/// The `len` bytes from `pos` on, or `None` if the data ends first.
pub fn read_exact(
    bytes: &mut dyn Bytes,
    pos: u64,
    len: usize,
) -> Result<Option<Vec<u8>>, HeaderError> {
    let mut buf = vec![0u8; len];
    let got = bytes.read_at(pos, &mut buf).map_err(HeaderError::from_io)?;
    Ok((got == len).then_some(buf))
}
