//! Issue 6, duplicates and collisions: the same instance delivered again
//! (identical or changed) replaces the earlier copy at the same path; two
//! different instances whose tags sanitise to the same names are both
//! kept, the second under a distinct name; a directory where the file
//! should go makes the call fail cleanly with the source kept.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use assert_cmd::assert::OutputAssertExt;

use crate::common::*;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;

type Edits<'a> = &'a [(Tag, VR, &'a str)];

#[test]
fn the_same_instance_twice_is_kept_once() {
    let site = Site::new();
    let a = site.variant(&[]);
    let dsts: Vec<PathBuf> = [false, false, true]
        .into_iter()
        .map(|cleanup| site.deliver(&a, cleanup))
        .collect();
    assert!(dsts.iter().all(|d| d == &dsts[0]), "{dsts:?}");
    assert_eq!(site.placed(), [(site.relative(&dsts[0]), a)]);
    assert_eq!(site.image_records(), 1);
}

#[test]
fn a_changed_redelivery_replaces_the_earlier_copy() {
    let site = Site::new();
    let a = site.variant(&[]);
    let changed = site.variant(&[(tags::IMAGE_COMMENTS, VR::LT, "sent again")]);
    assert_ne!(a, changed);
    let first = site.deliver(&a, false);
    let second = site.deliver(&changed, true);
    assert_eq!(first, second, "the re-delivery went elsewhere");
    assert_eq!(site.placed(), [(site.relative(&first), changed)]);
    assert_eq!(site.image_records(), 1);
}

/// Each pair differs only in characters that sanitising maps to `_`.
#[test]
fn different_instances_whose_names_sanitise_alike_are_both_kept() {
    let pairs: [(Edits, Edits); 2] = [
        (
            &[(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                "1.2.826.0.1.3680043.10.543.7+1",
            )],
            &[(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                "1.2.826.0.1.3680043.10.543.7_1",
            )],
        ),
        (
            &[
                (tags::PATIENT_ID, VR::LO, "a b"),
                (
                    tags::SOP_INSTANCE_UID,
                    VR::UI,
                    "1.2.826.0.1.3680043.10.543.8/1",
                ),
            ],
            &[
                (tags::PATIENT_ID, VR::LO, "a_b"),
                (
                    tags::SOP_INSTANCE_UID,
                    VR::UI,
                    "1.2.826.0.1.3680043.10.543.8_1",
                ),
            ],
        ),
    ];
    for (edits_a, edits_b) in pairs {
        let site = Site::new();
        let (a, b) = (site.variant(edits_a), site.variant(edits_b));
        let (at_a, new) = site.deliver_reported(&a, false);
        let (at_b, renamed) = site.deliver_reported(&b, false);
        assert_eq!((new.as_str(), renamed.as_str()), ("new", "renamed"));
        let first = [at_a, at_b];
        // Each delivered again: each replaces its own copy, not the other.
        let (again_a, replaced) = site.deliver_reported(&a, true);
        assert_eq!(replaced, "replaced");
        let again = [again_a, site.deliver(&b, true)];
        assert_eq!(first, again, "{edits_b:?}: re-deliveries went elsewhere");
        let [at_a, at_b] = first;
        assert_eq!(at_a.parent(), at_b.parent(), "{edits_b:?}: no collision");
        assert_ne!(at_a, at_b, "{edits_b:?}: one name for two instances");
        let mut expected = vec![(site.relative(&at_a), a), (site.relative(&at_b), b)];
        expected.sort();
        assert_eq!(site.placed(), expected, "{edits_b:?}");
        assert_eq!(site.image_records(), 2, "{edits_b:?}");
    }
}

/// The instance that got the distinct name, delivered again with changed
/// content, replaces its own copy (same SOPInstanceUID: the same
/// instance), and the other instance is untouched.
#[test]
fn a_changed_redelivery_of_a_renamed_instance_replaces_it() {
    let site = Site::new();
    let a = site.variant(&[(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.10.543.9+1",
    )]);
    let b_edits = [(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.10.543.9_1",
    )];
    let b = site.variant(&b_edits);
    let changed_b = site.variant(&[b_edits[0], (tags::IMAGE_COMMENTS, VR::LT, "sent again")]);
    let at_a = site.deliver(&a, false);
    let at_b = site.deliver(&b, false);
    let at_changed_b = site.deliver(&changed_b, false);
    let mut expected = vec![(site.relative(&at_a), a), (site.relative(&at_b), changed_b)];
    expected.sort();
    let placed = site.placed();
    assert!(
        placed == expected && at_changed_b == at_b,
        "B re-delivered with changed content did not replace B at {}: it went to {}, \
         and the data dir holds {:?}",
        at_b.display(),
        at_changed_b.display(),
        placed.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert_eq!(site.image_records(), 2);
}

#[test]
fn a_directory_in_the_way_is_refused() {
    let mut problems = Vec::new();
    for cleanup in [false, true] {
        // Where the instance goes, learnt from a delivery elsewhere.
        let scratch = Site::new();
        let a = scratch.variant(&[]);
        let rel = scratch.relative(&scratch.deliver(&a, false));

        let site = Site::new();
        let in_the_way = site.datadir.join(&rel);
        std::fs::create_dir_all(&in_the_way).unwrap();
        std::fs::write(in_the_way.join("keep"), "kept").unwrap();
        let src = site.receive(&a);
        let extra: &[&str] = if cleanup { &["--cleanup"] } else { &[] };
        let out = deliver(&src, &site.datadir, &site.logdir, extra);
        problems.extend(refusal_problems(&out, &src, "a directory is in the way"));
        problems.extend(source_problems(&src, &a));
        problems.extend(log_problems(&site.logdir));
        let (files, temps) = split_temps(&site.datadir);
        let untouched = vec![(rel.join("keep"), b"kept".to_vec())];
        if files != untouched || !temps.is_empty() {
            problems.push(format!(
                "cleanup {cleanup}: the data dir holds {:?}, temporary {temps:?}",
                files.iter().map(|(p, _)| p).collect::<Vec<_>>()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A data dir and a log dir, and numbered incoming dirs: each delivery
/// comes from a fresh copy, as from storescp.
struct Site {
    tmp: tempfile::TempDir,
    datadir: PathBuf,
    logdir: PathBuf,
    received: Cell<usize>,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let (datadir, logdir) = (tmp.path().join("data"), tmp.path().join("log"));
        Site {
            tmp,
            datadir,
            logdir,
            received: Cell::new(0),
        }
    }

    /// The first example instance with `edits` applied.
    fn variant(&self, edits: Edits) -> Vec<u8> {
        let path = self.tmp.path().join("variant.dcm");
        write_variant(&sag_anon_files()[0], &path, edits);
        std::fs::read(path).unwrap()
    }

    /// Receives `bytes` in a fresh incoming dir; returns its path.
    fn receive(&self, bytes: &[u8]) -> PathBuf {
        let n = self.received.replace(self.received.get() + 1);
        let incoming = self.tmp.path().join(format!("incoming-{n}"));
        std::fs::create_dir_all(&incoming).unwrap();
        let src = incoming.join("received.dcm");
        std::fs::write(&src, bytes).unwrap();
        src
    }

    /// Receives and delivers `bytes`, which must succeed and leave the
    /// source gone (`cleanup`) or intact; returns where it was placed.
    fn deliver(&self, bytes: &[u8], cleanup: bool) -> PathBuf {
        self.deliver_reported(bytes, cleanup).0
    }

    /// [`Site::deliver`], and the outcome the NDJSON line reports.
    fn deliver_reported(&self, bytes: &[u8], cleanup: bool) -> (PathBuf, String) {
        let src = self.receive(bytes);
        let extra: &[&str] = if cleanup {
            &["--log-ndjson", "--cleanup"]
        } else {
            &["--log-ndjson"]
        };
        let out = deliver(&src, &self.datadir, &self.logdir, extra)
            .assert()
            .success();
        assert_eq!(src.exists(), !cleanup, "source after the delivery");
        if !cleanup {
            assert_eq!(std::fs::read(&src).unwrap(), bytes, "source changed");
        }
        let line: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let outcome = line["outcome"].as_str().unwrap().to_string();
        (PathBuf::from(line["dst"].as_str().unwrap()), outcome)
    }

    fn relative(&self, dst: &Path) -> PathBuf {
        dst.strip_prefix(&self.datadir).unwrap().to_path_buf()
    }

    /// The final files of the data dir; there must be no temporary ones.
    fn placed(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let (files, temps) = split_temps(&self.datadir);
        assert!(temps.is_empty(), "temporary files left: {temps:?}");
        files
    }

    /// The number of `-img` records, checking every record parses.
    fn image_records(&self) -> usize {
        let problems = log_problems(&self.logdir);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        json_files(&self.logdir)
            .iter()
            .filter(|(p, _)| {
                p.parent()
                    .is_some_and(|d| d.to_string_lossy().ends_with("-img"))
            })
            .count()
    }
}
