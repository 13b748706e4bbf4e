//! What pydicom's dictionaries say, as it prints a sequence's text: a
//! standard element's name and VR, a UID's registry name (`UID.name`), a
//! private element's name and VR under its creator. Answered by binary
//! search over the generated [`tables`](super::tables); nothing is built
//! at start-up or on first use.

use dicom_core::Tag;

use super::tables;

/// The name and VR of a standard element or repeating-group element
/// (pydicom's `get_entry`).
pub fn standard_entry(tag: Tag) -> Option<(&'static str, &'static str)> {
    let key = tag_number(tag);
    if let Ok(at) = tables::ELEMENTS.binary_search_by_key(&key, |&(t, _)| t) {
        let start = at.checked_sub(1).map_or(0, |i| tables::ELEMENTS[i].1);
        let end = tables::ELEMENTS[at].1;
        let name = &tables::ELEMENT_NAMES[start as usize..end as usize];
        return Some((name, tables::VRS[usize::from(tables::ELEMENT_VRS[at])]));
    }
    if tag.group() % 2 == 1 {
        return None;
    }
    let at = tables::REPEATERS
        .iter()
        .position(|&(bits, mask, ..)| (key ^ bits) & mask == 0)?;
    let start = at.checked_sub(1).map_or(0, |i| tables::REPEATERS[i].2);
    let (_, _, end, vr) = tables::REPEATERS[at];
    let name = &tables::REPEATER_NAMES[start as usize..end as usize];
    Some((name, tables::VRS[usize::from(vr)]))
}

fn tag_number(tag: Tag) -> u32 {
    u32::from(tag.group()) << 16 | u32::from(tag.element())
}

/// The registry name of `uid`, if pydicom knows it.
pub fn uid_name(uid: &str) -> Option<&'static str> {
    let ends = &tables::UID_ENDS;
    let start = |i: usize| i.checked_sub(1).map_or((0, 0), |j| ends[j]);
    let at = search(ends.len(), |i| {
        tables::UIDS[start(i).0 as usize..ends[i].0 as usize].cmp(uid)
    })?;
    Some(&tables::UID_NAMES[start(at).1 as usize..ends[at].1 as usize])
}

/// pydicom's private dictionary entry for `tag` under `creator`.
pub struct PrivateEntry {
    pub vr: &'static str,
    pub name: &'static str,
}

/// The entry pydicom finds for `tag` under `creator`: the keys
/// `ggggeeee`, then `ggggxxee`, then `ggxxxxee`.
pub fn private_entry(tag: Tag, creator: &str) -> Option<PrivateEntry> {
    let creator = creator_index(creator)? as u64;
    let (group, element) = (u64::from(tag.group()), u64::from(tag.element()));
    let keys = [
        (0, group, element),
        (1, group, element & 0xFF),
        (2, group & 0xFF00, element & 0xFF),
    ];
    keys.into_iter().find_map(|(kind, group, element)| {
        let key = creator << 40 | kind << 32 | group << 16 | element;
        let at = tables::PRIVATE
            .binary_search_by_key(&key, |&(k, ..)| k)
            .ok()?;
        let (_, vr, start, len) = tables::PRIVATE[at];
        Some(PrivateEntry {
            vr: tables::VRS[usize::from(vr)],
            name: &tables::PRIVATE_NAMES[start as usize..start as usize + usize::from(len)],
        })
    })
}

fn creator_index(creator: &str) -> Option<usize> {
    let ends = &tables::CREATOR_ENDS;
    let text = |i: usize| {
        let start = i.checked_sub(1).map_or(0, |j| ends[j]);
        &tables::CREATORS[start as usize..ends[i] as usize]
    };
    search(ends.len(), |i| text(i).cmp(creator))
}

/// Binary search over `0..len` with `probe` ordering entry `i` against
/// the target.
fn search(len: usize, probe: impl Fn(usize) -> std::cmp::Ordering) -> Option<usize> {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        match probe(mid) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pydicom 2.4.5's `get_entry`, `get_private_entry` and
    /// `UID.name` answer for the same look-ups.
    #[test]
    fn the_tables_answer_as_pydicom_does() {
        let name = standard_entry;
        assert_eq!(name(Tag(0x0010, 0x0010)), Some(("Patient's Name", "PN")));
        assert_eq!(
            name(Tag(0x6000, 0x3000)),
            Some(("Overlay Data", "OB or OW"))
        );
        assert_eq!(
            name(Tag(0x60EE, 0x3000)),
            Some(("Overlay Data", "OB or OW"))
        );
        assert_eq!(name(Tag(0x5020, 0x0005)), Some(("Curve Dimensions", "US")));
        assert_eq!(
            name(Tag(0x1000, 0x1235)),
            Some(("Shift Table Triplet", "US"))
        );
        assert_eq!(
            name(Tag(0x0028, 0x0412)),
            Some(("Coefficient Coding", "LO"))
        );
        assert_eq!(
            name(Tag(0xFFFC, 0xFFFC)),
            Some(("Data Set Trailing Padding", "OB"))
        );
        assert_eq!(name(Tag(0x0009, 0x1001)), None);
        assert_eq!(name(Tag(0x0008, 0x0000)), None);

        let private = |tag, creator| private_entry(tag, creator).map(|e| (e.name, e.vr));
        // ggggeeee, ggggxxee (any block), ggxxxxee.
        assert_eq!(
            private(Tag(0x0009, 0x0001), "DicomUtils 20100512"),
            Some(("DICOMUTILS_PROCESSING_METHODS", "SQ"))
        );
        assert_eq!(
            private(Tag(0x0019, 0x100C), "SIEMENS MR HEADER"),
            Some(("B_value", "IS"))
        );
        assert_eq!(
            private(Tag(0x0019, 0x120C), "SIEMENS MR HEADER"),
            Some(("B_value", "IS"))
        );
        assert_eq!(
            private(Tag(0x7012, 0x1004), "DLX_ANNOT_01"),
            Some(("Text_annotation", "ST"))
        );
        assert_eq!(private(Tag(0x0019, 0x100C), "SIEMENS MR HEADER "), None);
        assert_eq!(private(Tag(0x0019, 0x10FF), "SIEMENS MR HEADER"), None);

        assert_eq!(
            uid_name("1.2.840.10008.1.2.4.50"),
            Some("JPEG Baseline (Process 1)")
        );
        assert_eq!(
            uid_name("1.2.840.10008.1.2.1.99"),
            Some("Deflated Explicit VR Little Endian")
        );
        assert_eq!(uid_name("1.2.840.10008.1.2.4.5"), None);
    }
}
