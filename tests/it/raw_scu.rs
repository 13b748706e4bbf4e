//! A minimal C-STORE SCU: the DICOM upper layer (PS3.8) spoken directly,
//! to send data sets as they are (storescu parses and re-encodes every
//! file) and to misbehave on purpose.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
pub const PRESENTATION_CONTEXT_ID: u8 = 1;
/// Data PDVs stay far below any maximum PDU length a peer may ask for.
const FRAGMENT: usize = 4000;
/// How long a peer may take to answer.
const PATIENCE: Duration = Duration::from_secs(120);

pub fn pdu(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0];
    out.extend(u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend(body);
    out
}

fn item(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0];
    out.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend(body);
    out
}

fn ae_title(title: &str) -> [u8; 16] {
    let mut out = [b' '; 16];
    out[..title.len()].copy_from_slice(title.as_bytes());
    out
}

/// A UID value, NUL-padded to even length.
fn uid_value(uid: &str) -> Vec<u8> {
    let mut out = uid.as_bytes().to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A-ASSOCIATE-RQ to `called` proposing `abstract_syntax` in explicit VR
/// little endian.
pub fn associate_rq(called: &str, abstract_syntax: &str) -> Vec<u8> {
    associate_rq_from("RXRAWSCU", called, abstract_syntax)
}

/// [`associate_rq`] from the calling AE title `calling`.
pub fn associate_rq_from(calling: &str, called: &str, abstract_syntax: &str) -> Vec<u8> {
    let mut context = vec![PRESENTATION_CONTEXT_ID, 0, 0, 0];
    context.extend(item(0x30, abstract_syntax.as_bytes()));
    context.extend(item(0x40, EXPLICIT_VR_LITTLE_ENDIAN.as_bytes()));
    let mut user = item(0x51, &16384u32.to_be_bytes());
    user.extend(item(0x52, b"1.2.826.0.1.3680043.8.498.1"));
    let mut body = vec![0, 1, 0, 0];
    body.extend(ae_title(called));
    body.extend(ae_title(calling));
    body.extend([0; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    body.extend(item(0x20, &context));
    body.extend(item(0x50, &user));
    pdu(0x01, &body)
}

/// A P-DATA-TF holding one fragment; `control` is 3 for the last command
/// fragment, 2 for the last data fragment, 0 for others.
pub fn p_data(control: u8, fragment: &[u8]) -> Vec<u8> {
    p_data_on(PRESENTATION_CONTEXT_ID, control, fragment)
}

/// [`p_data`] on presentation context `context`.
pub fn p_data_on(context: u8, control: u8, fragment: &[u8]) -> Vec<u8> {
    let mut body = u32::try_from(fragment.len() + 2)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    body.extend([context, control]);
    body.extend(fragment);
    pdu(0x04, &body)
}

/// The elements of a C-STORE-RQ command set for an MR image, by element
/// number (group 0000), without the group length.
pub fn c_store_rq_fields(message_id: u16, sop_instance_uid: &str) -> Vec<(u16, Vec<u8>)> {
    vec![
        (0x0002, uid_value(MR_IMAGE_STORAGE)),
        (0x0100, 0x0001u16.to_le_bytes().to_vec()), // C-STORE-RQ
        (0x0110, message_id.to_le_bytes().to_vec()),
        (0x0700, 0u16.to_le_bytes().to_vec()), // medium priority
        (0x0800, 0u16.to_le_bytes().to_vec()), // a data set follows
        (0x1000, uid_value(sop_instance_uid)),
    ]
}

/// A C-STORE-RQ command set (implicit VR little endian, group 0000) for
/// an MR image.
pub fn c_store_rq(message_id: u16, sop_instance_uid: &str) -> Vec<u8> {
    command_set(&c_store_rq_fields(message_id, sop_instance_uid))
}

/// A command set of `fields` (element number, value), behind its group
/// length.
pub fn command_set(fields: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let element = |number: u16, value: &[u8]| {
        let mut out = vec![0, 0];
        out.extend(number.to_le_bytes());
        out.extend(u32::try_from(value.len()).unwrap().to_le_bytes());
        out.extend(value);
        out
    };
    let rest: Vec<u8> = fields.iter().flat_map(|(n, v)| element(*n, v)).collect();
    let mut out = element(0x0000, &u32::try_from(rest.len()).unwrap().to_le_bytes());
    out.extend(rest);
    out
}

pub fn read_pdu(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    try_read_pdu(stream).expect("a PDU from the SCP")
}

/// [`read_pdu`], which may fail (the SCP went away).
pub fn try_read_pdu(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0; 6];
    stream.read_exact(&mut header)?;
    let len = u32::from_be_bytes(header[2..6].try_into().unwrap());
    let mut body = vec![0; len as usize];
    stream.read_exact(&mut body)?;
    Ok((header[0], body))
}

/// Whether the A-ASSOCIATE-AC accepts our presentation context.
pub fn context_accepted(ac_body: &[u8]) -> bool {
    let mut items = &ac_body[68..];
    while items.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([items[2], items[3]]));
        if items[0] == 0x21 {
            return items[6] == 0;
        }
        items = &items[4 + len..];
    }
    false
}

/// The Status (0000,0900) of the next C-STORE-RSP.
pub fn response_status(stream: &mut TcpStream) -> u16 {
    try_response_status(stream).unwrap()
}

/// [`response_status`], which may fail (the SCP went away, or sent
/// something else).
pub fn try_response_status(stream: &mut TcpStream) -> io::Result<u16> {
    let mut command = Vec::new();
    loop {
        let (kind, body) = try_read_pdu(stream)?;
        if kind != 0x04 {
            return Err(io::Error::other(format!(
                "expected P-DATA-TF, got PDU type {kind:#04x}"
            )));
        }
        let mut pdvs = &body[..];
        while !pdvs.is_empty() {
            let len = u32::from_be_bytes(pdvs[..4].try_into().unwrap()) as usize;
            let control = pdvs[5];
            command.extend(&pdvs[6..4 + len]);
            pdvs = &pdvs[4 + len..];
            if control == 3 {
                return Ok(command_status(&command));
            }
        }
    }
}

fn command_status(mut command: &[u8]) -> u16 {
    while command.len() >= 8 {
        let element = u16::from_le_bytes([command[2], command[3]]);
        let len = u32::from_le_bytes(command[4..8].try_into().unwrap()) as usize;
        if element == 0x0900 {
            return u16::from_le_bytes([command[8], command[9]]);
        }
        command = &command[8 + len..];
    }
    panic!("C-STORE-RSP without a status");
}

/// Connects to the SCP on `port` and associates with `called` for MR
/// images; the context must be accepted.
pub fn associate(port: u16, called: &str) -> TcpStream {
    try_associate(port, called).unwrap()
}

/// [`associate`], which may fail (no SCP, or not accepted).
pub fn try_associate(port: u16, called: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.write_all(&associate_rq(called, MR_IMAGE_STORAGE))?;
    let (kind, body) = try_read_pdu(&mut stream)?;
    if kind == 0x02 && context_accepted(&body) {
        Ok(stream)
    } else {
        Err(io::Error::other(format!(
            "association not accepted (PDU type {kind:#04x})"
        )))
    }
}

/// Asks the SCP on `port` for an association with `called`, which it must
/// reject: the rejection's result, source and reason (PS3.8 9.3.4).
pub fn rejection(port: u16, called: &str) -> (u8, u8, u8) {
    rejection_of(port, &associate_rq(called, MR_IMAGE_STORAGE))
}

/// The rejection of the association `request` by the SCP on `port`.
pub fn rejection_of(port: u16, request: &[u8]) -> (u8, u8, u8) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    let (kind, body) = read_pdu(&mut stream);
    assert_eq!(
        kind, 0x03,
        "expected A-ASSOCIATE-RJ, got PDU type {kind:#04x}"
    );
    (body[1], body[2], body[3])
}

/// Sends one C-STORE of `data_set` as `uid` (message `id`) on `stream`;
/// returns the status.
pub fn store(stream: &mut TcpStream, id: u16, uid: &str, data_set: &[u8]) -> u16 {
    try_store(stream, id, uid, data_set).unwrap()
}

/// [`store`], which may fail (the SCP went away).
pub fn try_store(stream: &mut TcpStream, id: u16, uid: &str, data_set: &[u8]) -> io::Result<u16> {
    stream.write_all(&p_data(3, &c_store_rq(id, uid)))?;
    let fragments: Vec<&[u8]> = data_set.chunks(FRAGMENT).collect();
    for (i, fragment) in fragments.iter().enumerate() {
        let last = i + 1 == fragments.len();
        stream.write_all(&p_data(if last { 2 } else { 0 }, fragment))?;
    }
    try_response_status(stream)
}

/// Releases the association on `stream`.
pub fn release(stream: TcpStream) {
    try_release(stream).unwrap();
}

/// [`release`], which may fail (the SCP went away).
pub fn try_release(mut stream: TcpStream) -> io::Result<()> {
    stream.write_all(&pdu(0x05, &[0; 4]))?; // A-RELEASE-RQ
    match try_read_pdu(&mut stream)? {
        (0x06, _) => Ok(()),
        (kind, _) => Err(io::Error::other(format!(
            "expected A-RELEASE-RP, got PDU type {kind:#04x}"
        ))),
    }
}

/// Sends each (SOPInstanceUID, data set bytes) as one C-STORE in a single
/// association to `called` on `port`; returns the statuses.
pub fn send(port: u16, called: &str, instances: &[(String, Vec<u8>)]) -> Vec<u16> {
    let mut stream = associate(port, called);
    let statuses = (1..)
        .zip(instances)
        .map(|(id, (uid, data_set))| store(&mut stream, id, uid, data_set))
        .collect();
    release(stream);
    statuses
}
