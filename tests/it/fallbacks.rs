//! The slower paths give the same result as the fast ones: the same tree,
//! the same record files, nothing left over.
//!
//! - Files that cannot be written unnamed (`O_TMPFILE` needs
//!   `/proc/self/fd` to give them a name) are written under temporary
//!   names. The tool runs in a mount namespace of its own with an empty
//!   tmpfs over `/proc`.
//! - A data dir on another file system: no hard links from the source, no
//!   copy inside the kernel (`copy_file_range` refuses between different
//!   kinds of file system), so the bytes go through user memory.
//!
//! Both need root (to mount), as the fault tests do; they fail saying so
//! without.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Our binary, run where `/proc` is empty.
fn rx_repack_without_proc() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /proc && exec "$0" "$@""#)
        .arg(rx_path());
    cmd
}

fn batch(mut cmd: Command, input: &Path, data: &Path, log: &Path, extra: &[&str]) {
    let out = cmd
        .arg("--datadir")
        .arg(data)
        .arg("--logdir")
        .arg(log)
        .args(["-v", "0"])
        .args(extra)
        .arg(input)
        .output()
        .expect("unshare (util-linux) runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {} (this test needs root to mount over /proc)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Relative paths of the files under `root`.
fn names(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

#[test]
fn across_file_systems_the_result_is_the_same() {
    let files = &sag_anon_files()[..24];
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name);
    copy_files(files, &at("in"));
    batch(rx_process(), &at("in"), &at("data"), &at("log"), &[]);

    let other = Mount::tmpfs(&at("tmpfs"), "size=64m");
    let data = other.dir.join("data");
    batch(rx_process(), &at("in"), &data, &at("log-copy"), &[]);
    assert!(tree(&data) == tree(&at("data")), "the copy differs");
    std::fs::remove_dir_all(&data).unwrap();
    batch(
        rx_process(),
        &at("in"),
        &data,
        &at("log-move"),
        &["--cleanup"],
    );
    assert!(tree(&data) == tree(&at("data")), "the move differs");
    assert!(names(&at("in")).is_empty(), "the move left sources");
    for log in ["log-copy", "log-move"] {
        assert_eq!(
            names(&at(log)),
            names(&at("log")),
            "{log}: other record files"
        );
    }
}

#[test]
fn without_unnamed_files_the_result_is_the_same() {
    let files = &sag_anon_files()[..24];
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name);
    copy_files(files, &at("in"));
    batch(rx_process(), &at("in"), &at("data"), &at("log"), &[]);

    // Copy, then the same files again (each replaces its earlier delivery).
    for _ in 0..2 {
        batch(
            rx_repack_without_proc(),
            &at("in"),
            &at("data-fallback"),
            &at("log-fallback"),
            &[],
        );
    }
    // Move within one file system (linked) ...
    copy_files(files, &at("in-move"));
    batch(
        rx_repack_without_proc(),
        &at("in-move"),
        &at("data-move"),
        &at("log-move"),
        &["--cleanup"],
    );
    // ... and a move that replaces the copies made above.
    copy_files(files, &at("in-move-again"));
    batch(
        rx_repack_without_proc(),
        &at("in-move-again"),
        &at("data-fallback"),
        &at("log-fallback"),
        &["--cleanup"],
    );

    let expected = tree(&at("data"));
    assert_eq!(expected.len(), files.len());
    for data in ["data-fallback", "data-move"] {
        assert!(
            tree(&at(data)) == expected,
            "{data} differs from the normal run"
        );
    }
    for input in ["in-move", "in-move-again"] {
        assert!(
            names(&at(input)).is_empty(),
            "{input} not emptied by the move"
        );
    }
    let expected = names(&at("log"));
    for log in ["log-fallback", "log-move"] {
        assert_eq!(names(&at(log)), expected, "{log}: other record files");
        let problems = log_problems(&at(log));
        assert!(problems.is_empty(), "{log}: {problems:?}");
    }
}
