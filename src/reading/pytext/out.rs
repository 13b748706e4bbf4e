//! The text being written: every writer of the sibling modules writes
//! into an [`Out`], which stops growing at [`MAX_VALUE_TEXT`] bytes.
//! Writers check [`Out::full`] in their loops so that the work stops with
//! the text (a value of hundreds of megabytes, sequences nested deep).

use super::{MAX_VALUE_TEXT, cut_mark};

/// Text that stops growing at [`MAX_VALUE_TEXT`] bytes.
#[derive(Default)]
pub(super) struct Out {
    text: String,
    cut: bool,
}

impl Out {
    /// Adds `s`, or as much of it as fits (whole characters).
    pub(super) fn push_str(&mut self, s: &str) {
        if self.cut {
            return;
        }
        let room = MAX_VALUE_TEXT - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let end = (0..=room)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            self.text.push_str(&s[..end]);
            self.cut = true;
        }
    }

    pub(super) fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Whether nothing more will be taken.
    pub(super) fn full(&self) -> bool {
        self.cut
    }

    /// The text, ending with [`cut_mark`] if it was cut.
    pub(super) fn finish(mut self) -> String {
        if self.cut {
            self.text.push_str(&cut_mark());
        }
        self.text
    }

    /// The text as written, without a cut mark (Python's `repr` of one
    /// string or `bytes`, outside any value's text).
    pub(super) fn into_text(self) -> String {
        self.text
    }
}
