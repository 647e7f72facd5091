//! Refusing a job whose outputs would overwrite its inputs, each other, or
//! its state directory.
//!
//! Paths are compared after resolving symlinks (an output that does not
//! exist yet is resolved through its nearest existing parent directory),
//! and existing files also by (device, inode), which catches hard links.
//! A job checks its declared paths with [`check_distinct`] before it opens
//! anything for writing.

use crate::error::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a declared path is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read by a source.
    Input,
    /// Written by the job (an output file, a dead-letter file).
    Output,
    /// The job's state directory.
    StateDir,
}

/// One path a job uses, with the flag (or config key) that named it.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    /// The flag as the user typed it, e.g. `--output`: errors name it.
    pub flag: &'static str,
    /// The path given.
    pub path: &'a Path,
    /// What it is for.
    pub role: Role,
}

impl<'a> Declared<'a> {
    /// `path` named by `flag`, used as `role`.
    pub fn new(flag: &'static str, path: &'a Path, role: Role) -> Self {
        Self { flag, path, role }
    }
}

/// Where a path really leads.
struct Resolved {
    path: PathBuf,
    /// (device, inode) when the file exists.
    id: Option<(u64, u64)>,
}

/// Symlinks followed before giving up on a chain of dangling links.
const MAX_LINKS: usize = 40;

fn resolve(path: &Path) -> Result<Resolved> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let id = std::fs::metadata(&abs).ok().map(|m| (m.dev(), m.ino()));
    Ok(Resolved { path: real_path(&abs, MAX_LINKS), id })
}

/// The canonical form of `abs`, also when it (or a parent) does not exist:
/// the nearest existing ancestor is canonicalised and the rest appended;
/// a dangling symlink is followed to where it would create a file.
fn real_path(abs: &Path, links: usize) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(abs) {
        return p;
    }
    let is_link = std::fs::symlink_metadata(abs).is_ok_and(|m| m.file_type().is_symlink());
    if let (true, Some(parent), Ok(target), true) = (is_link, abs.parent(), std::fs::read_link(abs), links > 0) {
        return real_path(&parent.join(target), links - 1);
    }
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => real_path(parent, links).join(name),
        _ => abs.to_path_buf(),
    }
}

fn same(a: &Resolved, b: &Resolved) -> bool {
    a.path == b.path || a.id.is_some() && a.id == b.id
}

/// Refuses outputs that resolve to an input, to another output, or to a
/// place inside the state directory.
///
/// # Errors
/// [`Error::Config`] naming the output's flag and the flag it collides
/// with; nothing has been opened or changed.
pub fn check_distinct(declared: &[Declared<'_>]) -> Result<()> {
    let resolved: Vec<Resolved> = declared.iter().map(|d| resolve(d.path)).collect::<Result<_>>()?;
    for (i, (out, r)) in declared.iter().zip(&resolved).enumerate() {
        if out.role != Role::Output {
            continue;
        }
        for (j, (other, o)) in declared.iter().zip(&resolved).enumerate() {
            if i == j || other.role == Role::Output && j > i {
                continue;
            }
            let what = match other.role {
                Role::Input if same(r, o) => "is the same file as the input",
                Role::Output if same(r, o) => "is the same file as the output",
                Role::StateDir if r.path.starts_with(&o.path) => "is inside the state directory",
                _ => continue,
            };
            return Err(Error::config(
                out.flag,
                format!(
                    "`{}` {what} given with {} (`{}`): refusing to write there (nothing was opened or changed)",
                    out.path.display(),
                    other.flag,
                    other.path.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn check(d: &[(&'static str, &Path, Role)]) -> Result<()> {
        let v: Vec<Declared<'_>> = d.iter().map(|&(f, p, r)| Declared::new(f, p, r)).collect();
        check_distinct(&v)
    }

    /// Guards output-over-input detection through every alias: the same
    /// path, a relative path, a symlink, a hard link, a dangling symlink
    /// to the input's place, and files inside the state directory.
    #[test]
    fn outputs_resolving_to_inputs_or_state_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in.csv");
        std::fs::write(&input, "a,1\n").unwrap();
        std::os::unix::fs::symlink(&input, d.join("link.csv")).unwrap();
        std::fs::hard_link(&input, d.join("hard.csv")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let state = d.join("state");
        for (out, expect) in [
            (input.clone(), "same file as the input"),
            (d.join("sub/../in.csv"), "same file as the input"),
            (d.join("link.csv"), "same file as the input"),
            (d.join("hard.csv"), "same file as the input"),
            (state.join("out.csv"), "inside the state directory"),
            (state.clone(), "inside the state directory"),
        ] {
            let e = check(&[("--input", &input, Input), ("--state-dir", &state, StateDir), ("--output", &out, Output)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("`--output`") && e.contains(expect), "{}: {e}", out.display());
        }
        let e = check(&[
            ("--input", &input, Input),
            ("--output", &d.join("o.csv"), Output),
            ("--dead-letter", &d.join("sub/../o.csv"), Output),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("`--dead-letter`") && e.contains("--output"), "{e}");
        std::os::unix::fs::symlink(d.join("nowhere/x.csv"), d.join("dangling.csv")).unwrap();
        let e = check(&[("--input", &d.join("nowhere/x.csv"), Input), ("--output", &d.join("dangling.csv"), Output)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("same file as the input"), "{e}");

        check(&[
            ("--input", &input, Input),
            ("--state-dir", &state, StateDir),
            ("--output", &d.join("sub/out.csv"), Output),
            ("--dead-letter", &d.join("dead.txt"), Output),
        ])
        .unwrap();
        assert!(!state.exists() && !d.join("sub/out.csv").exists(), "checking creates nothing");
    }
}
