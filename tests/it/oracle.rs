//! px-repack's output on the SAG-anon series, made once and kept by
//! `get_oracle.sh` in `examples-data/px-oracle/` (see that script for what
//! each case holds). The tests never run px-repack themselves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{examples_dir, files_under};

/// The first line of `px-oracle/STAMP` that these tests are written for;
/// `get_oracle.sh` writes it (its `recipe` variable).
const RECIPE: &str = "recipe 1";

/// One case of the oracle: what px-repack made with one set of options.
pub struct Case {
    dir: PathBuf,
}

/// The oracle's case `name`; fails, saying how to make the oracle, when it
/// is missing or was made by another recipe.
pub fn case(name: &str) -> Case {
    let oracle = examples_dir().join("px-oracle");
    let make = "run `./get_oracle.sh examples-data` (after `./get_examples.sh examples-data`)";
    let stamp = std::fs::read_to_string(oracle.join("STAMP")).unwrap_or_else(|e| {
        panic!(
            "px-repack's output (the format oracle) is missing from {} ({e}): {make}",
            oracle.display()
        )
    });
    assert_eq!(
        stamp.lines().next(),
        Some(RECIPE),
        "{} was made by another recipe of get_oracle.sh: {make}",
        oracle.display()
    );
    let dir = oracle.join(name);
    assert!(
        dir.join("tree.md5").is_file() && dir.join("log").is_dir(),
        "the oracle's case {} is incomplete: {make}",
        dir.display()
    );
    Case { dir }
}

impl Case {
    /// px-repack's options in this case (besides the data and log dirs).
    pub fn args(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("args")).unwrap();
        text.lines().map(String::from).collect()
    }

    /// px-repack's log dir, as it wrote it.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The data dir px-repack wrote to, as its records name it.
    pub fn datadir(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("datadir")).unwrap();
        text.trim_end_matches('\n').to_string()
    }

    /// px-repack's data dir: the MD5 of each file, by relative path.
    pub fn tree(&self) -> BTreeMap<PathBuf, String> {
        let manifest = std::fs::read_to_string(self.dir.join("tree.md5")).unwrap();
        manifest
            .lines()
            .map(|line| {
                let (md5, path) = line
                    .split_once("  ")
                    .unwrap_or_else(|| panic!("not an md5sum line: {line:?}"));
                (PathBuf::from(path), md5.to_string())
            })
            .collect()
    }

    /// Fails unless the files under `root` are px-repack's data dir: the
    /// same relative paths, the same bytes.
    pub fn assert_same_tree(&self, root: &Path) {
        let px = self.tree();
        let rx = tree_md5(root);
        assert_eq!(px.len(), 192, "px-repack placed {} files", px.len());
        let px_paths: Vec<_> = px.keys().collect();
        let rx_paths: Vec<_> = rx.keys().collect();
        assert_eq!(rx_paths, px_paths, "relative paths differ");
        let differing: Vec<_> = px
            .iter()
            .filter(|(path, md5)| rx[*path] != **md5)
            .map(|(path, _)| path)
            .collect();
        assert!(
            differing.is_empty(),
            "same paths, but some bytes differ: {differing:?}"
        );
    }
}

/// The MD5 of each file under `root`, by relative path (what the oracle's
/// `tree.md5` holds for px-repack's data dir).
pub fn tree_md5(root: &Path) -> BTreeMap<PathBuf, String> {
    files_under(root)
        .into_iter()
        .map(|path| {
            let md5 = md5::compute(std::fs::read(&path).unwrap());
            (
                path.strip_prefix(root).unwrap().to_path_buf(),
                format!("{md5:x}"),
            )
        })
        .collect()
}
