//! The files a batch run repacks, found one at a time so that a list of a
//! million paths or a huge tree is streamed, never collected first.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::atomic_file::{TEMP_PREFIX, TEMP_SUFFIX};
use crate::repacker::config::Inputs;

/// A path that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ListError {
    pub path: PathBuf,
    pub source: io::Error,
}

type Visit<'a> = dyn FnMut(Result<PathBuf, ListError>) -> ControlFlow<()> + 'a;

/// Calls `visit` with each file of `inputs`, in a stable order, until it
/// says stop. Lists are split on newlines, or on NULs when `null` is set.
pub fn for_each_input(inputs: &Inputs, null: bool, visit: &mut Visit) -> ControlFlow<()> {
    match inputs {
        Inputs::Paths(paths) => {
            for path in paths {
                if path.as_os_str() == "-" {
                    list(io::stdin().lock(), Path::new("-"), null, visit)?;
                } else {
                    tree(path, usize::MAX, &|_| true, visit)?;
                }
            }
            ControlFlow::Continue(())
        }
        Inputs::List(path) if path.as_os_str() == "-" => {
            list(io::stdin().lock(), path, null, visit)
        }
        Inputs::List(path) => match fs::File::open(path) {
            Ok(file) => list(BufReader::new(file), path, null, visit),
            Err(source) => visit(Err(ListError {
                path: path.clone(),
                source,
            })),
        },
        Inputs::NamesContaining { dir, substrings } => {
            let matches = |name: &OsStr| {
                let name = name.to_string_lossy();
                substrings.iter().any(|s| name.contains(s.as_str()))
            };
            if !dir.is_dir() {
                return visit(Err(ListError {
                    path: dir.clone(),
                    source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                }));
            }
            tree(dir, 1, &matches, visit)
        }
    }
}

/// Visits `root` if it is not a directory, else the files under it (at
/// most `depth` levels down) whose names pass `wanted`, in name order.
/// Symbolic links to directories are not followed (no loops); our own
/// temporary files are skipped.
fn tree(
    root: &Path,
    depth: usize,
    wanted: &dyn Fn(&OsStr) -> bool,
    visit: &mut Visit,
) -> ControlFlow<()> {
    if !root.is_dir() {
        // A missing or odd path is the pipeline's to report, per file.
        return visit(Ok(root.to_path_buf()));
    }
    let entries = WalkDir::new(root)
        .min_depth(1)
        .max_depth(depth)
        .sort_by_file_name();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                // A regular file, or a symbolic link to one.
                let file =
                    entry.file_type().is_file() || (entry.path_is_symlink() && path.is_file());
                if file && wanted(entry.file_name()) && !is_temporary(path) {
                    visit(Ok(entry.into_path()))?;
                }
            }
            Err(error) => {
                let path = error.path().unwrap_or(root).to_path_buf();
                let source = error
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("a file system loop"));
                visit(Err(ListError { path, source }))?;
            }
        }
    }
    ControlFlow::Continue(())
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(TEMP_SUFFIX))
}

/// Visits every path of a list, one per line (or NUL-separated).
fn list(mut reader: impl BufRead, name: &Path, null: bool, visit: &mut Visit) -> ControlFlow<()> {
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
                return visit(Err(ListError {
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

    fn collect(inputs: &Inputs, null: bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let _ = for_each_input(inputs, null, &mut |item| {
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
        let found = collect(&Inputs::Paths(vec![root.to_path_buf()]), false);
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
            collect(&Inputs::List(list_file.clone()), false),
            vec![PathBuf::from("a b"), PathBuf::from("c")]
        );
        fs::write(&list_file, "a\nb\0c").unwrap();
        assert_eq!(
            collect(&Inputs::List(list_file), true),
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
        let source = Inputs::NamesContaining {
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
