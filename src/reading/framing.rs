//! How a file's first bytes say it is framed: the standard Part 10 form,
//! the same without its preamble, or a bare data set.

use super::HeaderError;
use super::transfer_syntax::Encoding;

/// How a file is framed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// 128-byte preamble, `DICM`, file meta group, data set (the standard form).
    Preamble,
    /// `DICM` and the file meta group without the preamble.
    NoPreamble,
    /// A bare data set, as old modalities and some archives write it,
    /// in the encoding its first element header shows.
    BareDataSet(Encoding),
}

impl Framing {
    /// Tells the framing from the first bytes of a file.
    pub fn of(start: &[u8]) -> Result<Framing, HeaderError> {
        if start.len() >= 132 && &start[128..132] == b"DICM" {
            return Ok(Framing::Preamble);
        }
        if start.len() >= 4 && &start[..4] == b"DICM" {
            return Ok(Framing::NoPreamble);
        }
        Encoding::detect(start)
            .map(Framing::BareDataSet)
            .ok_or_else(|| {
                HeaderError::NotDicom(
                    "no DICM marker and no recognisable data set at the start".into(),
                )
            })
    }

    /// Where the file meta group starts, for the framings that have one.
    pub fn meta_group_offset(self) -> Option<u64> {
        match self {
            Framing::Preamble => Some(132),
            Framing::NoPreamble => Some(4),
            Framing::BareDataSet(_) => None,
        }
    }
}
