//! What a user reads: one clear line per failure, in the user's terms, and
//! a command line that refuses what would do nothing or go wrong.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use predicates::prelude::*;
use predicates::str::contains;

use crate::common::*;

/// A failing read (EIO from the kernel) is the system's fault, not the
/// file's: "cannot read", never "not a DICOM file", never quarantined.
/// Reading `/proc/self/mem` at offset 0 fails with EIO.
#[test]
fn an_io_error_while_reading_is_not_called_not_dicom() {
    let tmp = tempfile::tempdir().unwrap();
    let quarantine = tmp.path().join("quarantine");
    rx().arg("--xcrdirfile")
        .arg("/proc/self/mem")
        .arg("--datadir")
        .arg(tmp.path().join("data"))
        .arg("--quarantine")
        .arg(&quarantine)
        .assert()
        .code(1)
        .stderr(
            contains("rx-repack: error: /proc/self/mem: cannot read: Input/output error")
                .and(contains("not a DICOM").not())
                .and(contains('\n').count(1)),
        );
    assert!(!quarantine.exists(), "an unreadable file was quarantined");
}

/// A data dir that cannot be written is named as the data dir, with the
/// same words whether the file is copied or moved, and no path inside it.
#[test]
fn an_unwritable_data_dir_reads_the_same_in_copy_and_move_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.dcm");
    std::fs::copy(&sag_anon_files()[0], &src).unwrap();
    for mode in [&[][..], &["--cleanup"][..]] {
        rx().arg("--xcrdirfile")
            .arg(&src)
            .args(["--datadir", "/proc/rx-nowhere"])
            .args(mode)
            .assert()
            .code(1)
            .stderr(
                contains(format!(
                    "rx-repack: error: {}: cannot write into the data dir /proc/rx-nowhere: \
                     No such file or directory",
                    src.display()
                ))
                .and(contains("/proc/rx-nowhere/").not()),
            );
        assert!(src.is_file(), "{mode:?}: the source is gone");
    }
}

#[test]
fn zero_jobs_are_refused() {
    rx().args(["-j", "0", "--datadir", "/tmp/unused", "x.dcm"])
        .assert()
        .code(2)
        .stderr(contains("0 jobs would repack nothing"));
}

/// The data and log dirs are written into pypx's JSON records, which
/// cannot hold other bytes than UTF-8 text.
#[test]
fn data_and_log_dirs_must_be_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let latin1 = tmp.path().join(OsStr::from_bytes(b"M\xfcller"));
    for option in ["--datadir", "--logdir"] {
        let mut cmd = rx();
        cmd.arg("--xcrdirfile").arg(&sag_anon_files()[0]);
        if option == "--logdir" {
            cmd.arg("--datadir").arg(tmp.path().join("data"));
        }
        cmd.arg(option)
            .arg(&latin1)
            .assert()
            .code(2)
            .stderr(contains(format!("{option} ")).and(contains("must be UTF-8")));
    }
    assert!(!latin1.exists());
}

/// -h and -y give the summary; --help and -x the whole help, whose
/// storescp line is the README's.
#[test]
fn help_flags_show_what_they_say() {
    let output = |flag: &str| {
        let out = rx()
            .arg(flag)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let whole = output("--help");
    assert_eq!(output("-x"), whole);
    assert_eq!(output("--desc"), whole);
    assert!(whole.contains("Template functions"), "{whole}");
    assert!(whole.contains("TCP_NODELAY=1 storescp --fork -od /var/incoming -xcr"));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("TCP_NODELAY=1 storescp --fork -od /var/incoming -xcr \\\n"),
        "the README's storescp line changed: change --help's too"
    );
    let summary = output("-h");
    assert_eq!(output("-y"), summary);
    assert_eq!(output("--synopsis"), summary);
    assert!(!summary.contains("Template functions"));
    assert!(summary.len() < whole.len());
}
