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
