//! File names made from tag values: px-repack's sanitising, and names that
//! stay one path component of at most 255 bytes however long the value.

/// Longest file name most file systems take (bytes).
pub const NAME_MAX: usize = 255;

/// The SeaHash of `bytes` in 16 hex digits: a short, stable stand-in for a
/// value too long to use whole, or for an instance's identity.
pub fn hash_hex(bytes: &[u8]) -> String {
    hex(seahash::hash(bytes))
}

/// A 64-bit hash in 16 hex digits.
pub fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// `stem` then `suffix`, if that fits in [`NAME_MAX`] bytes; otherwise as
/// much of `stem` as fits with `~`, the hash of `whole` (what the name
/// stands for, so that long names stay distinct) and `suffix`.
pub fn fit_name(stem: &str, suffix: &str, whole: &[u8]) -> String {
    if stem.len() + suffix.len() <= NAME_MAX {
        return format!("{stem}{suffix}");
    }
    let hash = format!("~{}", hash_hex(whole));
    let mut keep = NAME_MAX.saturating_sub(suffix.len() + hash.len());
    while !stem.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{hash}{suffix}", &stem[..keep])
}

/// px-repack's sanitising: every run of characters outside `[A-Za-z0-9.-]`
/// becomes one `_`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// Makes a sanitised name usable as one path component: never empty, never
/// `.` or `..`, at most 255 bytes. Long names keep their start and their
/// extension, with a hash of the whole name so they stay distinct.
pub fn safe_component(name: &str) -> String {
    if name.is_empty() || name.chars().all(|c| c == '.') {
        return format!("_{name}");
    }
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => name.split_at(dot),
        _ => (name, ""),
    };
    fit_name(stem, extension, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_matches_px_repack() {
        assert_eq!(sanitize("SAG MPRAGE 220 FOV"), "SAG_MPRAGE_220_FOV");
        assert_eq!(sanitize("a//b  c"), "a_b_c");
        assert_eq!(sanitize("Müller^Hans"), "M_ller_Hans");
        assert_eq!(sanitize("../../x"), ".._.._x");
        assert_eq!(sanitize("a\0b"), "a_b");
    }

    #[test]
    fn components_are_always_safe() {
        assert_eq!(safe_component(""), "_");
        assert_eq!(safe_component(".."), "_..");
        assert_eq!(safe_component("."), "_.");
        let long = format!("{}.dcm", "x".repeat(400));
        let safe = safe_component(&long);
        assert_eq!(safe.len(), 255);
        assert!(safe.ends_with(".dcm"));
        let other = safe_component(&format!("{}y.dcm", "x".repeat(399)));
        assert_ne!(safe, other);
    }

    #[test]
    fn long_names_are_cut_on_character_boundaries() {
        let long = fit_name(&"é".repeat(300), "-meta.json", "é".repeat(300).as_bytes());
        assert!(long.len() <= NAME_MAX);
        assert!(long.ends_with("-meta.json"));
        assert_eq!(fit_name("short", ".json", b"short"), "short.json");
    }
}
