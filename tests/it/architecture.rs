//! docs/architecture.md, the contributors' map of the code, names every
//! file under `src/` (by its path, or by its folder's path, each in
//! backticks) and nothing that is not there, and its table lists the
//! modules in layers: each uses only those listed below it. A room added,
//! moved or removed without the map, or a use that goes up a layer, fails
//! here.

use std::collections::BTreeSet;
use std::path::Path;

use walkdir::WalkDir;

#[test]
fn the_architecture_page_maps_every_room_of_src() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = top.join("docs/architecture.md");
    let text = std::fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()));
    // Every `src/...` in backticks, a folder with its trailing slash.
    let named: BTreeSet<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.starts_with("src/"))
        .map(str::to_string)
        .collect();
    let mut problems = Vec::new();
    for entry in WalkDir::new(top.join("src")) {
        let entry = entry.unwrap();
        if entry.file_type().is_dir() {
            continue;
        }
        let relative = entry.path().strip_prefix(top).unwrap();
        let path = relative.display().to_string();
        // A file is named itself or through one of its folders.
        let covered = relative
            .ancestors()
            .skip(1)
            .filter(|dir| dir.starts_with("src/"))
            .any(|dir| named.contains(&format!("{}/", dir.display())));
        if !covered && !named.contains(&path) {
            problems.push(format!("{path} is not named"));
        }
    }
    for path in &named {
        if !top.join(path).exists() {
            problems.push(format!("{path} is named but does not exist"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} does not match src/ (name each file or folder in backticks, e.g. \
         `src/listener/wire.rs` or `src/reading/pytext/`):\n{}",
        page.display(),
        problems.join("\n")
    );
}

/// The top-level module a path under `src/` belongs to (`reading` for
/// `src/reading/pytext/`, `filing` for `src/filing.rs`).
fn module_of(path: &str) -> &str {
    let rest = path.trim_start_matches("src/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.trim_end_matches(".rs")
}

#[test]
fn each_module_uses_only_those_below_it_on_the_architecture_page() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(top.join("docs/architecture.md")).unwrap();
    // The table's rows, top to bottom: `| `src/...` | ... |`.
    let mut layers: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line
            .strip_prefix("| `")
            .and_then(|rest| rest.split('`').next())
            .filter(|path| path.starts_with("src/"))
        {
            let module = module_of(path);
            if !layers.contains(&module) {
                layers.push(module);
            }
        }
    }
    assert!(
        layers.len() > 5,
        "docs/architecture.md has no table of the modules: {layers:?}"
    );
    let mut problems = Vec::new();
    for entry in WalkDir::new(top.join("src")) {
        let entry = entry.unwrap();
        let relative = entry
            .path()
            .strip_prefix(top)
            .unwrap()
            .display()
            .to_string();
        if !relative.ends_with(".rs") || relative == "src/lib.rs" {
            continue;
        }
        let module = module_of(&relative);
        let Some(layer) = layers.iter().position(|m| *m == module) else {
            problems.push(format!(
                "{relative}: its module {module} is not in the table"
            ));
            continue;
        };
        let source = std::fs::read_to_string(entry.path()).unwrap();
        for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for used in line.split("crate::").skip(1) {
                let used: String = used
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                match layers.iter().position(|m| *m == used) {
                    Some(at) if at > layer || used == module => {}
                    _ => problems.push(format!(
                        "{relative} ({module}) uses crate::{used}, which is not below it"
                    )),
                }
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
