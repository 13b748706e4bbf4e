//! The files a batch run repacks, found one at a time so that a list of a
//! million paths or a huge tree is streamed, never collected first.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::unnamed::{TEMP_PREFIX, TEMP_SUFFIX};

/// Where the paths come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Files and directories (searched recursively); `-` reads a list of
    /// paths from standard input.
    Paths(Vec<PathBuf>),
    /// A file listing paths (`-`: standard input).
    List(PathBuf),
    /// px-repack's `--parseAllFilesWithSubStr`: the files directly in `dir`
    /// whose names contain any of `substrings`.
    NamesContaining {
        dir: PathBuf,
        substrings: Vec<String>,
    },
}

/// A path that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Calls `visit` with each file of `source`, in a stable order, until it
/// says stop. Lists are split on newlines, or on NULs when `null` is set.
pub fn walk(
    source: &Source,
    null: bool,
    visit: &mut dyn FnMut(Result<PathBuf, WalkError>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match source {
        Source::Paths(paths) => {
            for path in paths {
                if path.as_os_str() == "-" {
                    list(io::stdin().lock(), Path::new("-"), null, visit)?;
                } else {
                    tree(path, visit)?;
                }
            }
            ControlFlow::Continue(())
        }
        Source::List(path) if path.as_os_str() == "-" => {
            list(io::stdin().lock(), path, null, visit)
        }
        Source::List(path) => match fs::File::open(path) {
            Ok(file) => list(BufReader::new(file), path, null, visit),
            Err(source) => visit(Err(WalkError {
                path: path.clone(),
                source,
            })),
        },
        Source::NamesContaining { dir, substrings } => {
            let matches = |name: &OsStr| {
                let name = name.to_string_lossy();
                substrings.iter().any(|s| name.contains(s.as_str()))
            };
            match sorted_entries(dir) {
                Ok(entries) => {
                    for entry in entries {
                        if entry.path.file_name().is_some_and(matches) && entry.is_file() {
                            visit(Ok(entry.path))?;
                        }
                    }
                    ControlFlow::Continue(())
                }
                Err(source) => visit(Err(WalkError {
                    path: dir.clone(),
                    source,
                })),
            }
        }
    }
}

/// Visits `root` if it is a file, else every file under it, depth first.
/// Symbolic links to directories are not followed (no loops); our own
/// temporary files are skipped.
fn tree(
    root: &Path,
    visit: &mut dyn FnMut(Result<PathBuf, WalkError>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if !root.is_dir() {
        // A missing or odd path is the pipeline's to report, per file.
        return visit(Ok(root.to_path_buf()));
    }
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match sorted_entries(&dir) {
            Ok(entries) => entries,
            Err(source) => {
                visit(Err(WalkError { path: dir, source }))?;
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            if entry.kind.is_dir() {
                subdirs.push(entry.path);
            } else if entry.is_file() && !is_temporary(&entry.path) {
                visit(Ok(entry.path))?;
            }
        }
        // Reversed so that the stack pops them in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    ControlFlow::Continue(())
}

/// A directory entry and its type (not following symbolic links).
struct Entry {
    path: PathBuf,
    kind: fs::FileType,
}

impl Entry {
    /// A regular file, or a symbolic link to one.
    fn is_file(&self) -> bool {
        self.kind.is_file() || (self.kind.is_symlink() && self.path.is_file())
    }
}

/// The entries of `dir` in name order. Their types come with the listing
/// on most file systems, so no file is looked at twice.
fn sorted_entries(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = fs::read_dir(dir)?
        .map(|entry| {
            let entry = entry?;
            Ok(Entry {
                kind: entry.file_type()?,
                path: entry.path(),
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(TEMP_SUFFIX))
}

/// Visits every path of a list, one per line (or NUL-separated).
fn list(
    mut reader: impl BufRead,
    name: &Path,
    null: bool,
    visit: &mut dyn FnMut(Result<PathBuf, WalkError>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let separator = if null { b'\0' } else { b'\n' };
    let mut entry = Vec::new();
    loop {
        entry.clear();
        match (&mut reader)
            .take(64 * 1024)
            .read_until(separator, &mut entry)
        {
            Ok(0) => return ControlFlow::Continue(()),
            Ok(_) => {
                if entry.last() == Some(&separator) {
                    entry.pop();
                }
                if !entry.is_empty() {
                    visit(Ok(PathBuf::from(OsStr::from_bytes(&entry))))?;
                }
            }
            Err(source) => {
                return visit(Err(WalkError {
                    path: name.to_path_buf(),
                    source,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(source: &Source, null: bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let _ = walk(source, null, &mut |item| {
            out.push(item.unwrap());
            ControlFlow::Continue(())
        });
        out
    }

    #[test]
    fn trees_are_walked_in_name_order_without_temporaries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for path in [
            "b/2.dcm",
            "b/1.dcm",
            "a.dcm",
            "c/d/e.dcm",
            "c/.rx-repack-x1.tmp",
        ] {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let found = collect(&Source::Paths(vec![root.to_path_buf()]), false);
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        let expected: Vec<PathBuf> = ["a.dcm", "b/1.dcm", "b/2.dcm", "c/d/e.dcm"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn lists_split_on_newlines_or_nuls() {
        let tmp = tempfile::tempdir().unwrap();
        let list_file = tmp.path().join("list");
        fs::write(&list_file, "a b\n\nc\n").unwrap();
        assert_eq!(
            collect(&Source::List(list_file.clone()), false),
            vec![PathBuf::from("a b"), PathBuf::from("c")]
        );
        fs::write(&list_file, "a\nb\0c").unwrap();
        assert_eq!(
            collect(&Source::List(list_file), true),
            vec![PathBuf::from("a\nb"), PathBuf::from("c")]
        );
    }

    #[test]
    fn names_containing_any_substring() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["x1.dcm", "y2.dcm", "z3.txt"] {
            fs::write(tmp.path().join(name), "x").unwrap();
        }
        fs::create_dir(tmp.path().join("sub1.dcm")).unwrap();
        let source = Source::NamesContaining {
            dir: tmp.path().to_path_buf(),
            substrings: vec!["1".into(), ".dcm".into()],
        };
        let names: Vec<_> = collect(&source, false)
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["x1.dcm", "y2.dcm"]);
    }
}
