//! The checks the fuzz targets make, shared with
//! `tests/fuzz_regressions.rs` (which replays the kept corpus through
//! them), so that a fuzz finding and its regression test fail alike.
//!
//! Every check panics with a message saying which invariant broke; the
//! code under test must never panic itself, hang, or allocate wildly.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_core::header::Header as _;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use rx_repack::layout::names::{safe_component, sanitize};
use rx_repack::layout::template::Template;
use rx_repack::layout::{Layout, Location, PYPX, Templates};
use rx_repack::pipeline::wanted_tags;
use rx_repack::reading::pytext::element_text;
use rx_repack::reading::{Header, HeaderError, read_elements, read_whole_header};

/// What the pipeline passes for the hash that makes a name unique.
const UNIQUE: &str = "0123456789abcdef0123456789abcdef";

/// How each of the pipeline's reads of one file ended (the error's text
/// when it refused the file).
#[derive(Debug)]
pub struct Reads {
    /// The per-file read: the elements the layout and per-file records need.
    pub per_file: Result<(), String>,
    /// The identity read of a file found at the name (SOPInstanceUID only).
    pub identity: Result<(), String>,
    /// The whole header, read for the records written once per series.
    pub whole: Result<(), String>,
}

impl Reads {
    /// Whether the pipeline refuses the file: the per-file read fails, or
    /// the whole read that the first instance of a series needs does.
    pub fn refused(&self) -> Option<&str> {
        match (&self.per_file, &self.whole) {
            (Err(why), _) | (Ok(()), Err(why)) => Some(why),
            _ => None,
        }
    }
}

/// Reads the file at `path` as the pipeline does (only the elements the
/// layout and per-file records need, and the whole header), and exercises
/// everything that looks at a header that was read.
pub fn check_header_file(path: &Path) -> Reads {
    let layout = default_layout();
    let wanted = wanted_tags(&layout);
    let whole = read_whole_header(path);
    if let Ok(whole) = &whole {
        exercise(whole, &layout);
    }
    // The per-file read, and the identity read of a file found at the name.
    let per_file = check_part(path, &wanted, &whole, &layout);
    let identity = check_part(path, &[tags::SOP_INSTANCE_UID], &whole, &layout);
    Reads {
        per_file,
        identity,
        whole: whole.map(drop).map_err(|e| e.to_string()),
    }
}

/// The pipeline's reads of one file refuse it alike or read it alike: the
/// walk checks the whole structure whatever a read wants, so a file is not
/// placed or refused depending on whether its series was seen before (the
/// whole read is made for a series' first instance only).
pub fn check_reads_agree(reads: &Reads) {
    let ok = [&reads.per_file, &reads.identity, &reads.whole].map(Result::is_ok);
    assert!(
        ok.iter().all(|&o| o == ok[0]),
        "the reads disagree: {reads:?}"
    );
}

/// Reads `wanted` of the file at `path` as the pipeline does; every element
/// read must be one the whole read has, with the same value.
fn check_part(
    path: &Path,
    wanted: &[Tag],
    whole: &Result<Header, HeaderError>,
    layout: &Layout,
) -> Result<(), String> {
    let part = read_elements(path, wanted).map_err(|e| e.to_string())?;
    exercise(&part, layout);
    // Others only from a deflated data set, read in full up to the last.
    let last = wanted.iter().max().copied().unwrap_or(Tag(0, 0));
    for element in part.dataset().iter() {
        let tag = element.tag();
        assert!(tag <= last, "{tag} was read, after the last one asked for");
        if let Ok(whole) = &whole {
            let big_endian = whole.big_endian();
            assert_eq!(
                whole
                    .dataset()
                    .get(tag)
                    .map(|e| element_text(e, big_endian)),
                Some(element_text(element, big_endian)),
                "{tag}: the per-file read and the whole read differ"
            );
        }
    }
    Ok(())
}

/// Everything the pipeline and the records do with a header.
fn exercise(header: &Header, layout: &Layout) {
    let _ = header.instance_uid();
    // Every element, nested ones too (without recursion: the nesting is
    // the file's to choose).
    let mut pending: Vec<_> = header.dataset().iter().collect();
    while let Some(element) = pending.pop() {
        let _ = element_text(element, header.big_endian());
        if let Value::Sequence(sequence) = element.value() {
            for item in sequence.items() {
                pending.extend(item.iter());
            }
        }
    }
    let location = layout.locate(&|tag| header.text(tag));
    check_location(&location, layout);
    // The hostile values themselves, as whole path components.
    for tag in [
        tags::PATIENT_ID,
        tags::PATIENT_NAME,
        tags::SERIES_DESCRIPTION,
        tags::SOP_INSTANCE_UID,
    ] {
        if let Some(text) = header.text(tag) {
            check_name(&text);
        }
    }
}

pub fn default_layout() -> Layout {
    Layout::new(&PYPX, &[]).expect("the default templates parse")
}

/// Splits fuzz input into up to four templates and the values of the
/// elements they name (NUL-separated), then parses, renders, sanitises and
/// places, checking the invariants of every result.
pub fn check_template_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut chunks = text.split('\0');
    let templates: Vec<&str> = chunks.by_ref().take(4).collect();
    let values: Vec<&str> = chunks.collect();
    // Each element gets one of the values, or is absent from the "file".
    let value = |tag: Tag| -> Option<String> {
        let slot =
            (usize::from(tag.group()) * 31 + usize::from(tag.element())) % (values.len() + 1);
        values.get(slot).map(|v| v.to_string())
    };
    for (i, template) in templates.iter().enumerate() {
        let Ok(parsed) = Template::parse(template) else {
            continue;
        };
        let keywords: BTreeSet<_> = parsed.fields().map(|field| field.keyword).collect();
        let mut missing = Vec::new();
        let rendered = parsed.render(&value, &mut missing);
        let unique: BTreeSet<_> = missing.iter().collect();
        assert_eq!(
            unique.len(),
            missing.len(),
            "missing repeats a keyword: {missing:?}"
        );
        for keyword in &missing {
            assert!(
                keywords.contains(keyword),
                "{keyword} reported missing but not in the template"
            );
        }
        assert_eq!(
            parsed.render(&value, &mut Vec::new()),
            rendered,
            "template {i} renders differently twice"
        );
        check_name(&rendered);
    }
    for value in &values {
        check_name(value);
    }
    let pick = |i: usize, default: &'static str| templates.get(i).copied().unwrap_or(default);
    let templates = Templates {
        base: "",
        root: pick(0, PYPX.root),
        study: pick(1, PYPX.study),
        series: pick(2, PYPX.series),
        image: pick(3, PYPX.image),
    };
    if let Ok(layout) = Layout::new(&templates, &[]) {
        let _ = wanted_tags(&layout);
        check_location(&layout.locate(&value), &layout);
        check_location(&layout.locate(&|_| None), &layout);
    }
}

/// `sanitize` then `safe_component` on any text: a usable, stable path
/// component.
pub fn check_name(text: &str) {
    let sanitized = sanitize(text);
    assert!(
        sanitized
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
        "sanitize({text:?}) left other characters: {sanitized:?}"
    );
    assert!(
        !sanitized.contains("__"),
        "sanitize({text:?}) = {sanitized:?} has a run of _"
    );
    assert_eq!(
        sanitize(&sanitized),
        sanitized,
        "sanitize is not idempotent on {text:?}"
    );
    let component = safe_component(&sanitized);
    check_component(&component, &format!("safe_component(sanitize({text:?}))"));
    if sanitized.len() <= 255 && !sanitized.chars().all(|c| c == '.') {
        assert_eq!(component, sanitized, "a short, usable name was changed");
    }
    assert_eq!(
        safe_component(&component),
        component,
        "safe_component is not idempotent on {text:?}"
    );
}

/// Every name a location gives is a usable path component.
fn check_location(location: &Location, layout: &Layout) {
    let components: Vec<_> = location.series_dir.iter().collect();
    assert_eq!(
        components.len(),
        3,
        "series dir {:?} is not root/study/series ({layout:?})",
        location.series_dir
    );
    for component in components {
        let component = component.to_str().expect("components are ASCII");
        check_component(component, "a series dir component");
    }
    let name = location.file_name();
    check_component(&name, "file_name()");
    let unique = location.unique_file_name(UNIQUE);
    check_component(&unique, "unique_file_name()");
    assert_ne!(unique, name, "unique_file_name() is the plain file name");
    let missing: BTreeSet<_> = location.missing.iter().collect();
    assert_eq!(
        missing.len(),
        location.missing.len(),
        "missing repeats a keyword: {:?}",
        location.missing
    );
}

fn check_component(component: &str, what: &str) {
    assert!(!component.is_empty(), "{what} is empty");
    assert!(
        component != "." && component != "..",
        "{what} is {component:?}"
    );
    assert!(
        !component.contains(['/', '\0']),
        "{what} = {component:?} holds / or NUL"
    );
    assert!(
        component.len() <= 255,
        "{what} is {} bytes: {component:?}",
        component.len()
    );
}

/// A file for the inputs of one fuzzing process of `target`, on tmpfs when
/// there is one.
pub fn scratch_file(target: &str) -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let dir = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    dir.join(format!(
        "rx-repack-fuzz-{target}-{}.dcm",
        std::process::id()
    ))
}
