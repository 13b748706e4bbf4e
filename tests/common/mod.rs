//! Shared helpers for the integration tests: where the example data and
//! the px-repack oracle are, and how to run both tools.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory `get_examples.sh` fills (override with RX_REPACK_EXAMPLES).
pub fn examples_dir() -> PathBuf {
    std::env::var_os("RX_REPACK_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-data"))
}

/// The 192-instance SAG-anon series; fails with instructions if absent.
pub fn sag_anon() -> PathBuf {
    let dir = examples_dir().join("SAG-anon");
    let count = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).count())
        .unwrap_or(0);
    assert!(
        count >= 192,
        "the SAG-anon example series is missing from {}: run `./get_examples.sh examples-data` first",
        dir.display()
    );
    dir
}

/// The SAG-anon files, sorted by name.
pub fn sag_anon_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sag_anon())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

/// px-repack 3.12.6 from the venv `get_examples.sh` makes.
pub fn px_repack() -> PathBuf {
    let path = examples_dir().join("pypx-venv/bin/px-repack");
    assert!(
        path.exists(),
        "px-repack (the format oracle) is missing at {}: run `./get_examples.sh examples-data` first",
        path.display()
    );
    path
}

/// Our binary.
pub fn rx_repack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rx-repack"))
}

/// Copies `files` into a fresh directory `dir` (writable copies).
pub fn copy_files(files: &[PathBuf], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in files {
        let dst = dir.join(f.file_name().unwrap());
        std::fs::copy(f, &dst).unwrap();
        let mut perms = std::fs::metadata(&dst).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&dst, perms).unwrap();
    }
}

/// Runs a command and returns its output, failing with its stderr if it
/// did not succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `root` as (relative path, bytes), sorted.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Runs px-repack once per file, as storescp would.
pub fn px_repack_each(files: &[PathBuf], datadir: &Path, logdir: &Path, extra: &[&str]) {
    for f in files {
        run_ok(
            Command::new(px_repack())
                .arg("--xcrdir")
                .arg(f.parent().unwrap())
                .arg("--xcrfile")
                .arg(f.file_name().unwrap())
                .arg("--datadir")
                .arg(datadir)
                .arg("--logdir")
                .arg(logdir)
                .args(["--verbosity", "0"])
                .args(extra),
        );
    }
}

/// Runs our binary once per file, as storescp would.
pub fn rx_repack_each(files: &[PathBuf], datadir: &Path, logdir: Option<&Path>, extra: &[&str]) {
    for f in files {
        let mut cmd = rx_repack();
        cmd.arg("--xcrdir")
            .arg(f.parent().unwrap())
            .arg("--xcrfile")
            .arg(f.file_name().unwrap())
            .arg("--datadir")
            .arg(datadir)
            .args(extra);
        if let Some(logdir) = logdir {
            cmd.arg("--logdir").arg(logdir);
        }
        run_ok(&mut cmd);
    }
}

/// Writes a copy of the DICOM file `src` to `dst` with some text elements
/// set to new values (VR from the dictionary's usual one for each tag).
pub fn write_variant(src: &Path, dst: &Path, edits: &[(dicom_core::Tag, dicom_core::VR, &str)]) {
    use dicom_core::{DataElement, PrimitiveValue};
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let mut obj = dicom_object::open_file(src).expect("example file opens");
    for (tag, vr, value) in edits {
        obj.put(DataElement::new(*tag, *vr, PrimitiveValue::from(*value)));
        if *tag == dicom_dictionary_std::tags::SOP_INSTANCE_UID {
            obj.meta_mut().media_storage_sop_instance_uid = value.to_string();
        }
    }
    obj.write_to_file(dst).expect("variant writes");
}

/// Parses every JSON file under `root` (skipping our `.rx-repack` work
/// dir), failing on the first that does not parse. Returns them by
/// relative path.
pub fn json_files(root: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".rx-repack"))
        .map(|(p, bytes)| {
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p, value)
        })
        .collect()
}
