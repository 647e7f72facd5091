//! The state directory's own files, outside fjall, which let a start prove
//! that the directory belongs to this job and that its committed data is
//! intact before anything in it is written:
//!
//! - `RIVULET` (the marker): the format, the job's name and its identity,
//!   the `(name, value)` pairs a job declares as defining its state (input,
//!   window, aggregates...). A start whose identity differs is refused.
//! - `RIVULET.epoch`: the last epoch known committed, rewritten (atomically)
//!   after each checkpoint's commit is synced inside fjall. fjall's own
//!   record of the last complete epoch can only be at or past it; below it,
//!   committed data was lost (a truncated or deleted journal) and the
//!   directory is refused. Written at creation, so its absence is damage.
//! - `RIVULET.lock`: held locked (`flock`) by the process using the
//!   directory, so a second process is refused with a sentence.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

pub(super) const EPOCH_FILE: &str = "RIVULET.epoch";
pub(super) const LOCK_FILE: &str = "RIVULET.lock";
/// Marks a state directory whose creation has not finished.
pub(super) const CREATING: &str = "RIVULET.creating";
/// Every keyspace a state directory has from its creation on.
pub(super) const KEYSPACES: [&str; 8] = ["state", "stage", "spill", "outbox", "meta", "ingest", "timers", "undo"];

pub(super) fn refuse(path: &Path, reason: String) -> Error {
    Error::StateRefused { path: path.to_path_buf(), reason }
}

/// Makes sure `path` is (or becomes) a directory this process alone uses:
/// refuses a file, a foreign non-empty directory (before writing anything in
/// it), an unwritable one, and one another process holds. The returned file
/// holds the lock until dropped.
pub(super) fn lock(path: &Path) -> Result<File> {
    match fs::metadata(path) {
        Ok(m) if !m.is_dir() => return Err(refuse(path, "it is a file, not a directory".into())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|e| refuse(path, format!("it cannot be created: {e}")))?;
        }
        Err(e) => return Err(refuse(path, format!("it cannot be read: {e}"))),
    }
    let names = entries(path)?;
    let ours = |n: &String| n == super::store::MARKER || n == CREATING;
    if !names.is_empty() && !names.iter().any(ours) && !names.iter().all(|n| n == LOCK_FILE) {
        return Err(refuse(
            path,
            format!(
                "the directory is not empty and has no {} marker, so it is not a Rivulet state directory",
                super::store::MARKER
            ),
        ));
    }
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| refuse(path, format!("it cannot be written: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(refuse(
            path,
            "another process is using it (a job running on it, or one creating it at the same time)".into(),
        )),
        Err(fs::TryLockError::Error(e)) => Err(refuse(path, format!("it cannot be locked: {e}"))),
    }
}

/// Refuses `path` when a process holds its lock; changes nothing (the lock
/// file is opened read-only and only if it exists).
pub(super) fn check_unlocked(path: &Path) -> Result<()> {
    let file = match File::open(path.join(LOCK_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(path, format!("its {LOCK_FILE} cannot be read: {e}"))),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            Err(refuse(path, "a running job holds it; list its checkpoints once it stopped".into()))
        }
        Err(fs::TryLockError::Error(e)) => Err(refuse(path, format!("it cannot be locked: {e}"))),
    }
}

/// The names in directory `path`.
pub(super) fn entries(path: &Path) -> Result<Vec<String>> {
    let rd = fs::read_dir(path).map_err(|e| refuse(path, format!("it cannot be read: {e}")))?;
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(|e| refuse(path, format!("it cannot be read: {e}")))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

/// The marker's text for job `job` with `identity`.
pub(super) fn marker_text(head: &str, identity: &[(String, String)]) -> String {
    let mut s = format!("{head}\n");
    for (name, value) in identity {
        s.push_str(&format!("identity\t{}\t{}\n", escape(name), escape(value)));
    }
    s
}

/// The identity pairs recorded in a marker's text (escaped as written).
fn recorded(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            (parts.next() == Some("identity")).then_some(())?;
            Some((parts.next()?.to_string(), parts.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// What differs between the identity recorded in `found` and `identity`,
/// one clause per name (`` `window` was 5s, now 10s ``); empty when equal.
pub(super) fn identity_diff(found: &str, identity: &[(String, String)]) -> Vec<String> {
    let was = recorded(found);
    let now: Vec<(String, String)> = identity.iter().map(|(n, v)| (escape(n), escape(v))).collect();
    let lookup = |list: &[(String, String)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut names: Vec<&String> = now.iter().map(|(n, _)| n).collect();
    names.extend(was.iter().map(|(n, _)| n).filter(|n| !now.iter().any(|(m, _)| m == *n)));
    let mut out = Vec::new();
    for name in names {
        let (a, b) = (lookup(&was, name), lookup(&now, name));
        if a == b {
            continue;
        }
        let show = |v: Option<String>| v.unwrap_or_else(|| "not recorded".into());
        out.push(format!("`{name}` was {}, now {}", show(a), show(b)));
    }
    out
}

/// What `RIVULET.epoch` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Committed {
    /// The last epoch known committed.
    pub complete: Option<u64>,
    /// A rollback to this epoch was begun: fjall's record may go back to it.
    pub restoring: Option<u64>,
}

impl Committed {
    /// The least last complete epoch fjall may hold.
    fn floor(self) -> Option<u64> {
        self.restoring.or(self.complete)
    }
}

fn committed_text(c: Committed) -> String {
    let complete = c.complete.map_or("none".to_string(), |e| e.to_string());
    match c.restoring {
        Some(t) => format!("complete {complete} restoring {t}\n"),
        None => format!("complete {complete}\n"),
    }
}

/// Writes `RIVULET.epoch` by a synced temporary file renamed over it. With
/// `sync_dir` the rename itself is made durable; without it a power loss
/// may leave the previous (lower) epoch, which only weakens the check.
pub(super) fn write_committed(path: &Path, c: Committed, sync_dir: bool) -> Result<()> {
    let tmp = path.join(format!("{EPOCH_FILE}.tmp"));
    let dest = path.join(EPOCH_FILE);
    fs::write(&tmp, committed_text(c)).map_err(|e| Error::io(&tmp, e))?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    if sync_dir {
        File::open(path).and_then(|d| d.sync_all()).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Reads `RIVULET.epoch`; a missing or garbled one is damage.
pub(super) fn read_committed(path: &Path) -> Result<Committed> {
    let file = path.join(EPOCH_FILE);
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(refuse(
                path,
                format!("its {EPOCH_FILE} is missing, so its committed checkpoints cannot be proven intact"),
            ))
        }
        Err(e) => return Err(refuse(path, format!("its {EPOCH_FILE} cannot be read: {e}"))),
    };
    let garbled = || refuse(path, format!("its {EPOCH_FILE} is damaged (`{}`)", text.trim()));
    let words: Vec<&str> = text.split_whitespace().collect();
    let epoch = |w: &str| w.parse::<u64>().map_err(|_| garbled());
    match words[..] {
        ["complete", "none"] => Ok(Committed::default()),
        ["complete", c] => Ok(Committed { complete: Some(epoch(c)?), restoring: None }),
        ["complete", c, "restoring", t] => Ok(Committed { complete: Some(epoch(c)?), restoring: Some(epoch(t)?) }),
        _ => Err(garbled()),
    }
}

/// Refuses when fjall's last complete epoch `found` is below what
/// `RIVULET.epoch` proves was committed.
pub(super) fn verify_committed(path: &Path, committed: Committed, found: Option<u64>) -> Result<()> {
    let Some(floor) = committed.floor() else { return Ok(()) };
    if found.is_some_and(|f| f >= floor) {
        return Ok(());
    }
    let found = found.map_or("none".to_string(), |f| format!("epoch {f}"));
    Err(refuse(
        path,
        format!(
            "its database's last complete checkpoint is {found}, but {EPOCH_FILE} records that epoch {floor} was \
             committed: committed data is missing (a truncated or deleted journal, or files removed from db/)"
        ),
    ))
}

/// Refuses when a keyspace every state directory has is missing from `db`.
pub(super) fn verify_keyspaces(path: &Path, db: &fjall::Database) -> Result<()> {
    let missing: Vec<&str> = KEYSPACES.iter().copied().filter(|k| !db.keyspace_exists(k)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(refuse(
        path,
        format!(
            "its database lacks the keyspace(s) {} (files removed from db/?), so its committed data is not intact",
            missing.join(", ")
        ),
    ))
}

/// Copies directory `from` to `to` recursively (files and directories only).
pub(super) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_differences_are_named() {
        let id = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let text = marker_text("head", &id(&[("window", "5s"), ("input", "a\tb"), ("old", "x")]));
        assert!(identity_diff(&text, &id(&[("window", "5s"), ("input", "a\tb"), ("old", "x")])).is_empty());
        let d = identity_diff(&text, &id(&[("window", "10s"), ("input", "a\tb"), ("new", "y")]));
        assert_eq!(d, ["`window` was 5s, now 10s", "`new` was not recorded, now y", "`old` was x, now not recorded"]);
    }

    #[test]
    fn committed_round_trips_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for c in [
            Committed::default(),
            Committed { complete: Some(7), restoring: None },
            Committed { complete: Some(7), restoring: Some(3) },
        ] {
            write_committed(dir.path(), c, true).unwrap();
            assert_eq!(read_committed(dir.path()).unwrap(), c);
        }
        fs::write(dir.path().join(EPOCH_FILE), "complete x").unwrap();
        assert!(read_committed(dir.path()).unwrap_err().to_string().contains("damaged"));
        let c = Committed { complete: Some(7), restoring: None };
        assert!(verify_committed(dir.path(), c, Some(7)).is_ok());
        assert!(verify_committed(dir.path(), c, Some(8)).is_ok());
        assert!(verify_committed(dir.path(), c, Some(6)).is_err());
        assert!(verify_committed(dir.path(), c, None).is_err());
        assert!(verify_committed(dir.path(), Committed { complete: Some(7), restoring: Some(3) }, Some(3)).is_ok());
    }
}
