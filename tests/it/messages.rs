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

/// -h and -y give the summary; --help and -x the whole help, with the
/// storescp line the storescp tests run (`storescp::Site::xcr_command`).
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
    assert!(whole.contains(
        "\"rx-repack --xcrdir #p --xcrfile #f --datadir /data/dicom --logdir /data/log --cleanup\""
    ));
    let summary = output("-h");
    assert_eq!(output("-y"), summary);
    assert_eq!(output("--synopsis"), summary);
    assert!(!summary.contains("Template functions"));
    assert!(summary.len() < whole.len());
}

/// Each binary names itself at the start of every line it prints: an
/// instance rx-listen cannot file is reported as `rx-listen: error:` with
/// where it came from (calling AE title, peer, SOP instance UID), never as
/// `rx-repack:`.
#[test]
fn each_binary_names_itself_in_its_lines() {
    let lines_all_start = |stderr: &str, prefix: &str| {
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(!lines.is_empty(), "nothing said");
        for line in &lines {
            assert!(line.starts_with(prefix), "not {prefix:?}: {line}\n{stderr}");
        }
    };

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.dcm");
    std::fs::write(&bad, b"This is not a DICOM file.\n".repeat(40)).unwrap();
    let batch = rx()
        .arg("--datadir")
        .arg(tmp.path().join("data"))
        .arg(&bad)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&batch.get_output().stderr).into_owned();
    lines_all_start(&stderr, "rx-repack: ");
    assert!(
        stderr.contains(&format!(
            "rx-repack: error: {}: not a DICOM file",
            bad.display()
        )),
        "{stderr}"
    );

    let mut listener = crate::listener::Listener::start(&[]);
    let uid = "1.2.826.0.1.3680043.8.498.56";
    let garbage = b"This is not a DICOM data set.\n".repeat(40);
    let statuses = crate::raw_scu::send(
        listener.port,
        crate::listener::AE_TITLE,
        &[(uid.into(), garbage)],
    );
    assert_eq!(statuses, [0xC000], "statuses");
    let out = listener.stop();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    lines_all_start(&stderr, "rx-listen: ");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("rx-listen: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        error.starts_with("rx-listen: error: RXRAWSCU@127.0.0.1:")
            && error.contains(&format!("/{uid}: corrupt or cut short: ")),
        "{error}"
    );
}
