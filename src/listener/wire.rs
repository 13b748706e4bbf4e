//! What a peer sends once associated, read straight off the connection:
//! P-DATA-TF PDUs as fragments of their PDVs, in the pieces the socket
//! gives, and any other PDU whole, parsed by dicom-ul.
//!
//! dicom-ul's own `receive` reads 8 KiB at a time and copies each PDU's
//! data four times before we see it; an instance arrives in many PDUs,
//! so that was most of what receiving cost us. Here each byte is read
//! once into one buffer and handed on from there (to the instance's file,
//! or to the command set being gathered), and a fragment is handed on as
//! soon as it is in, so that writing overlaps the rest's arrival.

use std::io::{self, Read};

use dicom_ul::Pdu;
use dicom_ul::pdu::{PDU_HEADER_SIZE, PDV_HEADER_SIZE, PDataValueType, read_pdu};

/// A PDU's header: its type, a reserved byte, its length (big endian).
const PDU_HEADER: usize = PDU_HEADER_SIZE as usize;
/// A PDV item's header: its length (big endian), the presentation context
/// ID, the message control header.
const PDV_HEADER: usize = PDV_HEADER_SIZE as usize;
const P_DATA_TF: u8 = 0x04;

/// A piece of a PDV: all of it or a part.
#[derive(Debug)]
pub struct Fragment<'a> {
    pub context: u8,
    pub kind: PDataValueType,
    pub data: &'a [u8],
    /// This piece ends its PDV, and that PDV is the last of its message
    /// (command set or data set).
    pub ends_message: bool,
}

/// What the peer sent next.
#[derive(Debug)]
pub enum Unit<'a> {
    Fragment(Fragment<'a>),
    /// A PDU other than P-DATA-TF.
    Pdu(Pdu),
}

/// Why nothing more can be read.
#[derive(Debug)]
pub enum WireError {
    /// Reading failed (a socket timeout among others).
    Read(io::Error),
    /// The peer closed the connection.
    Closed,
    /// The bytes are not a PDU we accept: why.
    Malformed(String),
}

/// The PDV being handed on.
#[derive(Debug)]
struct Pdv {
    context: u8,
    kind: PDataValueType,
    last: bool,
    /// Its data bytes not yet handed on.
    left: usize,
}

/// Reads an association's PDUs from a connection.
pub struct Wire {
    /// Bytes read and not yet taken are `buffer[start..end]`.
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// The longest PDU we accept (its length field), as announced.
    max_pdu: usize,
    /// Bytes of the current P-DATA-TF after those taken (0: between PDUs).
    pdu_left: usize,
    pdv: Option<Pdv>,
}

impl Wire {
    /// A reader of PDUs of at most `max_pdu` bytes, starting with the
    /// bytes `already_read` (those dicom-ul read past the association
    /// request).
    pub fn new(max_pdu: u32, already_read: &[u8]) -> Wire {
        let max_pdu = max_pdu as usize;
        // Room for a whole PDU: the others than P-DATA-TF are taken whole.
        let capacity = (PDU_HEADER + max_pdu).max(already_read.len());
        let mut buffer = vec![0; capacity].into_boxed_slice();
        buffer[..already_read.len()].copy_from_slice(already_read);
        Wire {
            buffer,
            start: 0,
            end: already_read.len(),
            max_pdu,
            pdu_left: 0,
            pdv: None,
        }
    }

    /// The next fragment or PDU, reading from `stream` as needed.
    pub fn next<R: Read>(&mut self, stream: &mut R) -> Result<Unit<'_>, WireError> {
        loop {
            if self.start == self.end && self.pdv.as_ref().is_some_and(|pdv| pdv.left > 0) {
                self.fill(stream, 1)?;
            }
            if let Some(pdv) = self.pdv.take() {
                let taken = pdv.left.min(self.end - self.start);
                let left = pdv.left - taken;
                let fragment = Fragment {
                    context: pdv.context,
                    kind: pdv.kind.clone(),
                    data: &self.buffer[self.start..self.start + taken],
                    ends_message: left == 0 && pdv.last,
                };
                self.start += taken;
                if left > 0 {
                    self.pdv = Some(Pdv { left, ..pdv });
                }
                return Ok(Unit::Fragment(fragment));
            }
            if self.pdu_left > 0 {
                self.start_pdv(stream)?;
                continue;
            }
            self.fill(stream, PDU_HEADER)?;
            let header = &self.buffer[self.start..self.start + PDU_HEADER];
            let kind = header[0];
            let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
            if length as usize > self.max_pdu {
                return Err(WireError::Malformed(format!(
                    "PDU too large: length {length}, maximum {}",
                    self.max_pdu
                )));
            }
            let length = length as usize;
            if kind == P_DATA_TF {
                self.start += PDU_HEADER;
                self.pdu_left = length;
                continue;
            }
            self.fill(stream, PDU_HEADER + length)?;
            let whole = &self.buffer[self.start..self.start + PDU_HEADER + length];
            let pdu = read_pdu(whole, self.max_pdu as u32, true)
                .map_err(|e| WireError::Malformed(e.to_string()))?
                .ok_or_else(|| WireError::Malformed("a PDU cut short".into()))?;
            self.start += PDU_HEADER + length;
            return Ok(Unit::Pdu(pdu));
        }
    }

    /// Takes the header of the next PDV of the current P-DATA-TF.
    fn start_pdv<R: Read>(&mut self, stream: &mut R) -> Result<(), WireError> {
        if self.pdu_left < PDV_HEADER {
            return Err(WireError::Malformed(format!(
                "a P-DATA-TF ends {} bytes into a PDV header",
                self.pdu_left
            )));
        }
        self.fill(stream, PDV_HEADER)?;
        let header = &self.buffer[self.start..self.start + PDV_HEADER];
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if length < 2 || length > self.pdu_left - 4 {
            return Err(WireError::Malformed(format!(
                "invalid PDV item length {length} (the P-DATA-TF has {} bytes left)",
                self.pdu_left - 4
            )));
        }
        let control = header[5];
        self.pdv = Some(Pdv {
            context: header[4],
            kind: match control & 0x01 {
                0 => PDataValueType::Data,
                _ => PDataValueType::Command,
            },
            last: control & 0x02 != 0,
            left: length - 2,
        });
        self.pdu_left -= 4 + length;
        self.start += PDV_HEADER;
        Ok(())
    }

    /// Reads until at least `wanted` bytes (at most the buffer's size) are
    /// in the buffer, contiguous from `start`.
    fn fill<R: Read>(&mut self, stream: &mut R, wanted: usize) -> Result<(), WireError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.start + wanted > self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        while self.end - self.start < wanted {
            match stream.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Err(WireError::Closed),
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WireError::Read(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that gives its bytes `step` at a time.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn pdu(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0];
        out.extend((body.len() as u32).to_be_bytes());
        out.extend(body);
        out
    }

    fn pdv(context: u8, control: u8, data: &[u8]) -> Vec<u8> {
        let mut out = ((data.len() + 2) as u32).to_be_bytes().to_vec();
        out.extend([context, control]);
        out.extend(data);
        out
    }

    /// Everything `bytes` holds, read `step` bytes at a time: the PDVs'
    /// data joined per (context, kind, message end), and the other PDUs.
    fn read_all(bytes: &[u8], step: usize, already: usize) -> (Vec<String>, WireError) {
        let mut wire = Wire::new(4096, &bytes[..already]);
        let mut stream = Trickle {
            bytes: &bytes[already..],
            step,
        };
        let mut seen = Vec::new();
        let mut data = Vec::new();
        loop {
            match wire.next(&mut stream) {
                Ok(Unit::Fragment(fragment)) => {
                    data.extend_from_slice(fragment.data);
                    if fragment.ends_message {
                        seen.push(format!(
                            "{} {:?} {}",
                            fragment.context,
                            fragment.kind,
                            String::from_utf8_lossy(&data)
                        ));
                        data.clear();
                    }
                }
                Ok(Unit::Pdu(pdu)) => seen.push(format!("{pdu:?}")),
                Err(e) => return (seen, e),
            }
        }
    }

    #[test]
    fn pdvs_and_pdus_come_out_whole_however_the_bytes_arrive() {
        let mut bytes = pdu(
            0x04,
            &[pdv(1, 0x03, b"command"), pdv(1, 0x00, b"da")].concat(),
        );
        bytes.extend(pdu(
            0x04,
            &[pdv(1, 0x00, b""), pdv(1, 0x02, b"ta set")].concat(),
        ));
        bytes.extend(pdu(0x04, &[]));
        bytes.extend(pdu(0x05, &[0; 4]));
        let expected = ["1 Command command", "1 Data data set", "ReleaseRQ"];
        for step in [1, 2, 5, 7, 4096] {
            for already in [0, 3, 17, bytes.len()] {
                let (seen, end) = read_all(&bytes, step, already);
                assert_eq!(seen, expected, "{step} at a time, {already} already read");
                assert!(matches!(end, WireError::Closed), "{end:?}");
            }
        }
    }

    #[test]
    fn malformed_pdus_are_refused() {
        let cases = [
            (pdu(0x04, &[0, 0, 0, 1, 1, 3]), "invalid PDV item length 1"),
            (
                pdu(0x04, &[0, 0, 0, 9, 1, 3, 0]),
                "invalid PDV item length 9",
            ),
            (pdu(0x04, &[0, 0, 0]), "ends 3 bytes into a PDV header"),
            (
                [vec![4, 0], 4097u32.to_be_bytes().to_vec()].concat(),
                "PDU too large: length 4097, maximum 4096",
            ),
            (
                [vec![1, 0], u32::MAX.to_be_bytes().to_vec()].concat(),
                "PDU too large: length 4294967295",
            ),
            (pdu(0x01, &[0; 10]), "Invalid PDU field length"),
        ];
        for (bytes, says) in cases {
            let (seen, end) = read_all(&bytes, 3, 0);
            assert!(seen.is_empty(), "{seen:?}");
            match end {
                WireError::Malformed(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{says}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_stream_ending_inside_a_pdu_is_closed() {
        let bytes = pdu(0x04, &pdv(1, 0x02, b"data set"));
        let (seen, end) = read_all(&bytes[..bytes.len() - 2], 4, 0);
        assert!(seen.is_empty(), "{seen:?}");
        assert!(matches!(end, WireError::Closed), "{end:?}");
    }
}
