//! The generated sources are what their generators make from pydicom
//! 2.4.5 now: each generator is run into a scratch file and the result
//! compared byte for byte with the file in the tree. A generator refuses
//! to run on another pydicom, so a difference is a generator or a file
//! edited without the other.

use std::path::Path;
use std::process::Command;

use crate::common::venv_python;

/// (generator, the file it writes) from the top of the repository.
const GENERATED: [(&str, &str); 2] = [
    (
        "tools/gen_pydicom_tables.py",
        "src/reading/pytext/tables.rs",
    ),
    (
        "tools/gen_storage_classes.py",
        "src/listener/storage_classes.rs",
    ),
];

#[test]
fn generated_files_are_what_their_generators_make() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (generator, file) in GENERATED {
        let made = scratch.path().join(Path::new(file).file_name().unwrap());
        let run = Command::new(venv_python())
            .arg(top.join(generator))
            .arg(&made)
            .current_dir(top)
            .output()
            .unwrap();
        if !run.status.success() {
            problems.push(format!(
                "{generator} failed: {}",
                String::from_utf8_lossy(&run.stderr)
            ));
            continue;
        }
        let committed = std::fs::read(top.join(file)).unwrap();
        if std::fs::read(&made).unwrap() != committed {
            problems.push(format!(
                "{file} is not what {generator} makes: run \
                 `examples-data/pypx-venv/bin/python {generator}` and commit the result"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
