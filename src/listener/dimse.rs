//! DIMSE command sets (PS3.7 section 9.3): the C-ECHO and C-STORE
//! requests a storage SCP reads, and the responses it writes.
//!
//! A command set is a small implicit-VR little-endian data set of group
//! 0000. It is parsed here, with every length checked against the bytes
//! at hand, rather than by dicom-rs, which would allocate whatever length
//! a hostile peer declares before finding that the bytes are not there.

use dicom_core::Tag;

use crate::pipeline::Fault;

const COMMAND_GROUP_LENGTH: Tag = Tag(0x0000, 0x0000);
const AFFECTED_SOP_CLASS_UID: Tag = Tag(0x0000, 0x0002);
const COMMAND_FIELD: Tag = Tag(0x0000, 0x0100);
const MESSAGE_ID: Tag = Tag(0x0000, 0x0110);
const MESSAGE_ID_BEING_RESPONDED_TO: Tag = Tag(0x0000, 0x0120);
const COMMAND_DATA_SET_TYPE: Tag = Tag(0x0000, 0x0800);
const STATUS: Tag = Tag(0x0000, 0x0900);
const ERROR_COMMENT: Tag = Tag(0x0000, 0x0902);
const AFFECTED_SOP_INSTANCE_UID: Tag = Tag(0x0000, 0x1000);

/// CommandDataSetType when no data set follows the command.
const NO_DATA_SET: u16 = 0x0101;

/// The commands a storage SCP serves.
pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;

/// Status codes (PS3.7 annex C).
pub const SUCCESS: u16 = 0x0000;
/// Refused: out of resources (a full or unwritable disk).
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: cannot understand (the data set cannot be parsed).
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

/// The status of a C-STORE whose instance could not be kept, by whose
/// fault it was.
pub fn failure_status(fault: Fault) -> u16 {
    match fault {
        Fault::Content => CANNOT_UNDERSTAND,
        Fault::Resources => OUT_OF_RESOURCES,
    }
}

/// ErrorComment is LO: 64 characters at most.
const ERROR_COMMENT_MAX: usize = 64;

/// A request's command set, as far as a storage SCP needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub field: u16,
    pub message_id: u16,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    /// Whether a data set follows.
    pub has_data_set: bool,
}

/// Parses a command set.
pub fn parse(bytes: &[u8]) -> Result<Command, String> {
    let mut field = None;
    let mut message_id = None;
    let mut sop_class_uid = None;
    let mut sop_instance_uid = None;
    let mut data_set_type = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((header, after)) = rest.split_first_chunk::<8>() else {
            return Err("the command set ends inside an element header".into());
        };
        let group = u16::from_le_bytes([header[0], header[1]]);
        let element = u16::from_le_bytes([header[2], header[3]]);
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let tag = Tag(group, element);
        if group != 0 {
            return Err(format!("element {tag} in a command set"));
        }
        let Some((value, after)) = after.split_at_checked(length) else {
            return Err(format!(
                "element {tag} declares {length} bytes, more than the command set holds"
            ));
        };
        match tag {
            AFFECTED_SOP_CLASS_UID => sop_class_uid = Some(uid(value)),
            AFFECTED_SOP_INSTANCE_UID => sop_instance_uid = Some(uid(value)),
            COMMAND_FIELD => field = Some(us(tag, value)?),
            MESSAGE_ID => message_id = Some(us(tag, value)?),
            COMMAND_DATA_SET_TYPE => data_set_type = Some(us(tag, value)?),
            _ => {}
        }
        rest = after;
    }
    Ok(Command {
        field: field.ok_or("the command set has no CommandField")?,
        message_id: message_id.ok_or("the command set has no MessageID")?,
        sop_class_uid: sop_class_uid.filter(|uid| !uid.is_empty()),
        sop_instance_uid: sop_instance_uid.filter(|uid| !uid.is_empty()),
        has_data_set: data_set_type.ok_or("the command set has no CommandDataSetType")?
            != NO_DATA_SET,
    })
}

fn us(tag: Tag, value: &[u8]) -> Result<u16, String> {
    match value {
        [a, b] => Ok(u16::from_le_bytes([*a, *b])),
        _ => Err(format!("element {tag} is not one US value")),
    }
}

fn uid(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// The response to `request`: `field` (C-STORE-RSP, C-ECHO-RSP) with
/// `status`, and `comment` as the ErrorComment of a failure.
pub fn response(request: &Command, field: u16, status: u16, comment: Option<&str>) -> Vec<u8> {
    let mut elements = Vec::new();
    if let Some(uid) = &request.sop_class_uid {
        put(&mut elements, AFFECTED_SOP_CLASS_UID, &padded(uid, 0));
    }
    put(&mut elements, COMMAND_FIELD, &field.to_le_bytes());
    put(
        &mut elements,
        MESSAGE_ID_BEING_RESPONDED_TO,
        &request.message_id.to_le_bytes(),
    );
    put(
        &mut elements,
        COMMAND_DATA_SET_TYPE,
        &NO_DATA_SET.to_le_bytes(),
    );
    put(&mut elements, STATUS, &status.to_le_bytes());
    if let Some(comment) = comment.filter(|_| status != SUCCESS) {
        put(
            &mut elements,
            ERROR_COMMENT,
            &padded(&error_comment(comment), b' '),
        );
    }
    if let Some(uid) = &request.sop_instance_uid {
        put(&mut elements, AFFECTED_SOP_INSTANCE_UID, &padded(uid, 0));
    }
    command_set(elements)
}

/// A command set of `elements` (encoded), behind its group length.
fn command_set(elements: Vec<u8>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(elements.len() + 12);
    put(
        &mut bytes,
        COMMAND_GROUP_LENGTH,
        &(elements.len() as u32).to_le_bytes(),
    );
    bytes.extend(elements);
    bytes
}

/// An ErrorComment: one line of printable ASCII, at most 64 characters.
fn error_comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .take(ERROR_COMMENT_MAX)
        .collect()
}

/// `text`'s bytes, padded to an even length with `pad`.
fn padded(text: &str, pad: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(pad);
    }
    bytes
}

fn put(out: &mut Vec<u8>, tag: Tag, value: &[u8]) {
    out.extend(tag.group().to_le_bytes());
    out.extend(tag.element().to_le_bytes());
    out.extend((value.len() as u32).to_le_bytes());
    out.extend(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_rq(instance: Option<&str>) -> Vec<u8> {
        let mut elements = Vec::new();
        put(
            &mut elements,
            AFFECTED_SOP_CLASS_UID,
            &padded("1.2.840.10008.5.1.4.1.1.4", 0),
        );
        put(&mut elements, COMMAND_FIELD, &C_STORE_RQ.to_le_bytes());
        put(&mut elements, MESSAGE_ID, &7u16.to_le_bytes());
        put(&mut elements, Tag(0x0000, 0x0700), &0u16.to_le_bytes());
        put(&mut elements, COMMAND_DATA_SET_TYPE, &0u16.to_le_bytes());
        if let Some(uid) = instance {
            put(&mut elements, AFFECTED_SOP_INSTANCE_UID, &padded(uid, 0));
        }
        command_set(elements)
    }

    #[test]
    fn requests_parse_and_responses_echo_them() {
        let request = parse(&store_rq(Some("1.2.3.4.5"))).unwrap();
        assert_eq!(
            request,
            Command {
                field: C_STORE_RQ,
                message_id: 7,
                sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.4".into()),
                sop_instance_uid: Some("1.2.3.4.5".into()),
                has_data_set: true,
            }
        );
        let failure = response(
            &request,
            C_STORE_RSP,
            OUT_OF_RESOURCES,
            Some("disk full\nnow"),
        );
        let back = parse(
            &[failure.clone(), {
                let mut id = Vec::new();
                put(&mut id, MESSAGE_ID, &1u16.to_le_bytes());
                id
            }]
            .concat(),
        )
        .unwrap();
        assert_eq!(back.field, C_STORE_RSP);
        assert!(!back.has_data_set);
        assert_eq!(back.sop_instance_uid.as_deref(), Some("1.2.3.4.5"));
        let text = String::from_utf8_lossy(&failure);
        assert!(text.contains("disk full?now"), "{text}");
    }

    #[test]
    fn hostile_command_sets_are_refused() {
        let mut cut = store_rq(None);
        cut.truncate(cut.len() - 1);
        assert!(parse(&cut).unwrap_err().contains("declares"));
        let mut huge = store_rq(None);
        huge.extend([0, 0, 0, 0x10, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(
            parse(&huge)
                .unwrap_err()
                .contains("declares 4294967295 bytes")
        );
        let mut not_command = store_rq(None);
        not_command.extend([8, 0, 0x18, 0, 0, 0, 0, 0]);
        assert!(
            parse(&not_command)
                .unwrap_err()
                .contains("in a command set")
        );
        assert_eq!(parse(&store_rq(None)).unwrap().sop_instance_uid, None);
    }
}
