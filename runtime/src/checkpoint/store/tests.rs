//! Tests of the store on real files (`file://` in temporary directories).

use super::format::{self, Kind};
use super::model::Committed;
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn url_of(dir: &tempfile::TempDir) -> String {
    format!("file://{}", dir.path().display())
}

fn key(kg: u16, k: u32) -> Vec<u8> {
    let mut v = kg.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&k.to_be_bytes());
    v
}

fn put(kg: u16, k: u32, v: &[u8]) -> Entry {
    Entry { key: key(kg, k), value: Some(v.to_vec()) }
}

fn del(kg: u16, k: u32) -> Entry {
    Entry { key: key(kg, k), value: None }
}

fn all() -> KeyGroups {
    KeyGroups { first: 0, last: u16::MAX }
}

fn task(n: u8) -> TaskRecord {
    TaskRecord { task: format!("t{n}"), source_positions: vec![n, 1], sink_commits: vec![n, 2] }
}

/// The file of an object of the job `j`.
fn file(dir: &tempfile::TempDir, rel: &str) -> std::path::PathBuf {
    dir.path().join("j").join(rel)
}

// Guards the basic contract: what is put and committed is what latest,
// epoch_meta and restore give back, also after reopening.
#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    assert_eq!(store.latest().unwrap(), None);
    let g = store.claim_generation().unwrap();
    assert_eq!(g, 1);
    let a = store.put_delta(g, 1, KeyGroups::new(0, 3).unwrap(), &[put(0, 1, b"a"), put(3, 2, b"b")]).unwrap();
    let b = store.put_delta(g, 1, KeyGroups::new(4, 7).unwrap(), &[put(5, 1, b"c")]).unwrap();
    let at = store.commit_epoch(g, 1, vec![a.clone(), b.clone()], vec![task(1)]).unwrap();
    assert_eq!(at, Committed { epoch: 1, generation: 1 });
    let d = store.put_delta(g, 2, KeyGroups::new(0, 3).unwrap(), &[del(0, 1), put(3, 2, b"B")]).unwrap();
    store.commit_epoch(g, 2, vec![d], vec![task(2)]).unwrap();

    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    assert_eq!(store.latest().unwrap(), Some(Committed { epoch: 2, generation: 1 }));
    let meta = store.epoch_meta(1).unwrap();
    assert_eq!((meta.deltas, meta.tasks, meta.parent), (vec![a, b], vec![task(1)], None));
    assert_eq!(store.epoch_meta(2).unwrap().parent, Some(at));
    assert_eq!(store.restore(all(), 2).unwrap(), vec![(key(3, 2), b"B".to_vec()), (key(5, 1), b"c".to_vec())]);
    assert_eq!(store.restore(KeyGroups::one(0), 1).unwrap(), vec![(key(0, 1), b"a".to_vec())]);
    assert!(matches!(store.restore(all(), 3), Err(Error::Invalid { .. })));
}

// Guards that put_delta refuses what restore could not apply in order.
#[test]
fn unsorted_or_foreign_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g = store.claim_generation().unwrap();
    let r = KeyGroups::new(0, 1).unwrap();
    assert!(matches!(store.put_delta(g, 1, r, &[put(1, 1, b"x"), put(0, 1, b"y")]), Err(Error::Invalid { .. })));
    assert!(matches!(store.put_delta(g, 1, r, &[put(2, 1, b"x")]), Err(Error::Invalid { .. })));
    assert!(matches!(
        store.commit_epoch(g, 0, vec![], vec![]).and_then(|_| store.commit_epoch(g, 0, vec![], vec![])),
        Err(Error::Invalid { .. })
    ));
}

// Guards generation fencing: a second claim gets g+1 and every write of g
// after that is refused with exit code 3, leaving latest untouched.
#[test]
fn older_generation_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let first = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let second = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g1 = first.claim_generation().unwrap();
    let d = first.put_delta(g1, 1, KeyGroups::one(0), &[put(0, 1, b"a")]).unwrap();
    first.commit_epoch(g1, 1, vec![d], vec![]).unwrap();
    let g2 = second.claim_generation().unwrap();
    assert_eq!(g2, g1 + 1);
    let err = first.put_delta(g1, 2, KeyGroups::one(0), &[put(0, 1, b"b")]).unwrap_err();
    assert!(matches!(err, Error::Fenced { generation: 1, newest: 2 }), "{err}");
    let err = first.commit_epoch(g1, 2, vec![], vec![]).unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert_eq!(second.latest().unwrap(), Some(Committed { epoch: 1, generation: 1 }));
    let d = second.put_delta(g2, 2, KeyGroups::one(0), &[put(0, 1, b"c")]).unwrap();
    second.commit_epoch(g2, 2, vec![d], vec![]).unwrap();
    assert_eq!(second.restore(all(), 2).unwrap(), vec![(key(0, 1), b"c".to_vec())]);
    assert!(matches!(second.commit_epoch(7, 3, vec![], vec![]), Err(Error::Invalid { .. })));
}

// Guards that metadata written but never made latest (a coordinator that
// died between the two writes) is never part of a restore.
#[test]
fn metadata_never_made_latest_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g1 = store.claim_generation().unwrap();
    let d = store.put_delta(g1, 1, KeyGroups::one(0), &[put(0, 1, b"a")]).unwrap();
    let one = store.commit_epoch(g1, 1, vec![d], vec![]).unwrap();
    let orphan = store.put_delta(g1, 2, KeyGroups::one(0), &[put(0, 2, b"orphan")]).unwrap();
    let meta = EpochMeta { epoch: 2, generation: g1, parent: Some(one), deltas: vec![orphan], tasks: vec![] };
    let at = Committed { epoch: 2, generation: g1 };
    store.io.put_overwrite(&paths::meta(at), format::encode(Kind::Meta, &meta).unwrap()).unwrap();
    let g2 = store.claim_generation().unwrap();
    let d = store.put_delta(g2, 3, KeyGroups::one(0), &[put(0, 3, b"c")]).unwrap();
    store.commit_epoch(g2, 3, vec![d], vec![]).unwrap();
    assert_eq!(store.restore(all(), 3).unwrap(), vec![(key(0, 1), b"a".to_vec()), (key(0, 3), b"c".to_vec())]);
    assert_eq!(store.gc(&[]).unwrap(), 2, "the orphan meta and delta are collected; epoch 1 is still needed");
    assert_eq!(store.restore(all(), 3).unwrap(), vec![(key(0, 1), b"a".to_vec()), (key(0, 3), b"c".to_vec())]);
}

/// A store with two committed epochs; returns the delta and meta names of
/// epoch 2 (the latest).
fn two_epochs(dir: &tempfile::TempDir) -> (String, String) {
    let store = CheckpointStore::open(&url_of(dir), "j").unwrap();
    let g = store.claim_generation().unwrap();
    let d = store.put_delta(g, 1, KeyGroups::one(0), &[put(0, 1, b"a")]).unwrap();
    store.commit_epoch(g, 1, vec![d], vec![]).unwrap();
    let d = store.put_delta(g, 2, KeyGroups::one(0), &[put(0, 2, b"b")]).unwrap();
    store.commit_epoch(g, 2, vec![d.clone()], vec![]).unwrap();
    (paths::delta(g, 2, d.groups, 0), paths::meta(Committed { epoch: 2, generation: g }))
}

fn damage(path: &std::path::Path, how: &str) {
    match how {
        "flip" => {
            let mut bytes = std::fs::read(path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            std::fs::write(path, bytes).unwrap();
        }
        "truncate" => {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() - 3]).unwrap();
        }
        _ => std::fs::remove_file(path).unwrap(),
    }
}

// Guards that a store whose committed data cannot be proven intact is
// refused (exit 3) naming the damaged object, never silently reset: for a
// flipped byte, a truncation and a deletion of the latest delta and meta.
#[test]
fn damaged_latest_epoch_is_refused_naming_the_object() {
    for how in ["flip", "truncate", "delete"] {
        for which in [0, 1] {
            let dir = tempfile::tempdir().unwrap();
            let (delta, meta) = two_epochs(&dir);
            let object = if which == 0 { delta } else { meta };
            damage(&file(&dir, &object), how);
            let err = CheckpointStore::open(&url_of(&dir), "j").unwrap_err();
            assert!(matches!(err, Error::Damaged { .. }), "{how} {object}: {err}");
            assert!(err.to_string().contains(&object), "{how}: {err}");
            assert_eq!(err.exit_code(), 3);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    two_epochs(&dir);
    std::fs::write(file(&dir, paths::LATEST), b"this is not a Rivulet checkpoint object at all").unwrap();
    let err = CheckpointStore::open(&url_of(&dir), "j").unwrap_err();
    assert!(err.to_string().contains("latest") && err.to_string().contains("magic"), "{err}");
}

// Guards that a store whose volume goes away under an open handle (the
// mount point emptied, or no directory at all) reads as an outage to wait
// out, never as damage that ends the job, and reads as before once the
// volume is back. Found by the cluster's store-outage test: `latest` read
// just before the volume went, its metadata just after.
#[test]
fn a_store_whose_volume_went_away_is_unavailable_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    two_epochs(&dir);
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let at = store.latest().unwrap().unwrap();
    let job = dir.path().join("j");
    let away = dir.path().join("j.away");
    let meta = paths::meta(at);
    for gone in ["empty", "file"] {
        std::fs::rename(&job, &away).unwrap();
        if gone == "empty" {
            std::fs::create_dir(&job).unwrap();
        } else {
            std::fs::write(&job, b"not mounted").unwrap();
        }
        let err = store.meta_of(at, paths::LATEST).unwrap_err();
        assert!(err.is_transient() && err.to_string().contains(&meta), "{gone}: {err}");
        if gone == "empty" {
            std::fs::remove_dir(&job).unwrap();
        } else {
            std::fs::remove_file(&job).unwrap();
        }
        std::fs::rename(&away, &job).unwrap();
        assert_eq!(store.epoch_meta(at.epoch).unwrap().epoch, at.epoch, "{gone}: back");
    }
    // With the volume in place, a missing object is still damage.
    damage(&file(&dir, &meta), "delete");
    assert!(matches!(store.meta_of(at, paths::LATEST), Err(Error::Damaged { .. })));
}

// Guards that damage to an older epoch's delta is found by the restore
// that reads it, naming the object, and never misread as state.
#[test]
fn damaged_older_delta_fails_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    two_epochs(&dir);
    let old = paths::delta(1, 1, KeyGroups::one(0), 0);
    damage(&file(&dir, &old), "flip");
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let err = store.restore(all(), 2).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }) && err.to_string().contains(&old), "{err}");
}

// Guards the documented URL errors: exit 2 naming --checkpoint-store for
// a malformed, relative or foreign-scheme URL; exit 3 for a missing dir.
#[test]
fn bad_urls_give_the_documented_errors() {
    for url in ["ftp://host/x", "relative/path", "file://relative/path", "/abs/without/scheme"] {
        let err = CheckpointStore::open(url, "j").unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{url}: {err}");
        assert!(err.to_string().contains("--checkpoint-store"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("file://{}/not-mounted", dir.path().display());
    let err = CheckpointStore::open(&missing, "j").unwrap_err();
    assert!(matches!(err, Error::Refused { .. }) && err.to_string().contains("does not exist"), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert!(!dir.path().join("not-mounted").exists(), "a missing directory is not created");
    let err = CheckpointStore::open(&url_of(&dir), "../x").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    #[cfg(not(feature = "s3"))]
    {
        let err = CheckpointStore::open("s3://bucket/prefix", "j").unwrap_err();
        assert!(err.to_string().contains("feature `s3`"), "{err}");
    }
    #[cfg(feature = "s3")]
    {
        let err = CheckpointStore::open("s3:///prefix", "j").unwrap_err();
        assert!(err.to_string().contains("needs a bucket") && err.exit_code() == 2, "{err}");
    }
}

// Guards GC: every retained epoch stays restorable, everything else at or
// below latest that no retained restore reads is deleted.
#[test]
fn gc_keeps_retained_epochs_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g = store.claim_generation().unwrap();
    for e in 1..=6u64 {
        let d = store
            .put_delta(g, e, KeyGroups::new(0, 1).unwrap(), &[put(0, e as u32, b"v"), put(1, 0, &[e as u8])])
            .unwrap();
        store.commit_epoch(g, e, vec![d], vec![]).unwrap();
    }
    let want5 = store.restore(all(), 5).unwrap();
    let want6 = store.restore(all(), 6).unwrap();
    store.materialise(0, 4).unwrap();
    store.materialise(1, 4).unwrap();
    store.materialise(0, 2).unwrap();
    // Left: deltas 5 and 6, materialisations at 4, metas 4..=6.
    let deleted = store.gc(&[5]).unwrap();
    assert_eq!(deleted, 4 + 3 + 1, "deltas 1-4, metas 1-3, materialisation 0@2");
    assert_eq!(store.restore(all(), 5).unwrap(), want5);
    assert_eq!(store.restore(all(), 6).unwrap(), want6);
    assert!(!file(&dir, &paths::delta(g, 4, KeyGroups::new(0, 1).unwrap(), 0)).exists());
    assert!(file(&dir, &paths::delta(g, 5, KeyGroups::new(0, 1).unwrap(), 0)).exists());
    assert!(store.restore(all(), 3).is_err(), "epoch 3 was not retained");
    assert!(CheckpointStore::open(&url_of(&dir), "j").is_ok());
    assert_eq!(store.gc(&[5]).unwrap(), 0, "a second gc has nothing left to delete");
}

// Guards a restart after maintenance: when every key group was
// materialised at the latest checkpoint and GC took that epoch's own
// deltas, the store still opens (a coordinator killed before the next
// commit came back refusing it) and restores the same state; a delta no
// materialisation covers is still required.
#[test]
fn a_store_whose_latest_deltas_were_materialised_and_collected_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g = store.claim_generation().unwrap();
    for e in 1..=3u64 {
        let a = store.put_delta(g, e, KeyGroups::new(0, 1).unwrap(), &[put(0, e as u32, b"v")]).unwrap();
        let b = store.put_delta(g, e, KeyGroups::new(2, 2).unwrap(), &[put(2, 0, &[e as u8])]).unwrap();
        store.commit_epoch(g, e, vec![a, b], vec![]).unwrap();
    }
    let want = store.restore(all(), 3).unwrap();
    store.materialise_all([0, 1, 2], 3).unwrap();
    store.gc(&[]).unwrap();
    let latest_delta = file(&dir, &paths::delta(g, 3, KeyGroups::new(0, 1).unwrap(), 0));
    assert!(!latest_delta.exists(), "GC collects the latest epoch's materialised deltas");
    let reopened = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    assert_eq!(reopened.restore(all(), 3).unwrap(), want);

    // Key group 2's materialisation gone: its delta of epoch 3 is needed,
    // and missing.
    std::fs::remove_file(file(&dir, &paths::materialised(2, Committed { epoch: 3, generation: g }))).unwrap();
    let e = CheckpointStore::open(&url_of(&dir), "j").unwrap_err().to_string();
    assert!(e.contains("kg00002-00002") && e.contains("missing"), "{e}");
}

// Guards the savepoint: export -> open -> restore equals the source, the
// tasks' records travel with it, and a non-empty target is refused.
#[test]
fn export_then_restore_equals_the_source() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&src), "j").unwrap();
    let g = store.claim_generation().unwrap();
    for e in 1..=3u64 {
        let d = store
            .put_delta(g, e, KeyGroups::new(0, 9).unwrap(), &[put(2, 1, &[e as u8]), put(7, e as u32, b"x")])
            .unwrap();
        store.commit_epoch(g, e, vec![d], vec![task(e as u8)]).unwrap();
    }
    store.materialise(7, 2).unwrap();
    let at = store.export(2, &url_of(&dst)).unwrap();
    assert_eq!(at.epoch, 2);
    let copy = CheckpointStore::open(&url_of(&dst), "j").unwrap();
    assert_eq!(copy.latest().unwrap(), Some(at));
    assert_eq!(copy.restore(all(), 2).unwrap(), store.restore(all(), 2).unwrap());
    assert_eq!(copy.restore(KeyGroups::one(7), 2).unwrap(), store.restore(KeyGroups::one(7), 2).unwrap());
    assert_eq!(copy.epoch_meta(2).unwrap().tasks, vec![task(2)]);
    let err = store.export(3, &url_of(&dst)).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    drop(store);
    drop(src);
    assert_eq!(copy.restore(all(), 2).unwrap().len(), 3, "the copy needs nothing of the source");
}

#[derive(Debug, Clone)]
enum Op {
    /// Set key `k` of key group `kg` to `v`, or delete it.
    Write { kg: u16, k: u32, v: Option<u8> },
    /// Commit the epoch being written.
    Commit,
    /// Materialise key group `kg` at the latest epoch.
    Materialise { kg: u16 },
    /// GC keeping the last `keep` committed epochs.
    Gc { keep: usize },
    /// A new coordinator: claim a generation, go on from latest.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..6, 0u32..6, proptest::option::of(any::<u8>())).prop_map(|(kg, k, v)| Op::Write { kg, k, v }),
        3 => Just(Op::Commit),
        1 => (0u16..6).prop_map(|kg| Op::Materialise { kg }),
        1 => (1usize..4).prop_map(|keep| Op::Gc { keep }),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    // Guards restore against a BTreeMap model: after any sequence of puts,
    // deletes, commits, materialisations, restarts and GCs, restoring any
    // retained epoch (whole range and single key groups) equals the model's
    // state at that epoch.
    #[test]
    fn restore_equals_every_delta_applied_in_order(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
        let mut g = store.claim_generation().unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut pending: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut snapshots: BTreeMap<u64, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
        let mut retained: Vec<u64> = Vec::new();
        let mut epoch = 0u64;
        for op in ops.into_iter().chain([Op::Commit]) {
            match op {
                Op::Write { kg, k, v } => { pending.insert(key(kg, k), v.map(|b| vec![b])); }
                Op::Commit => {
                    epoch += 1;
                    let mut refs = Vec::new();
                    for (first, last) in [(0u16, 2u16), (3, 5)] {
                        let range = KeyGroups::new(first, last).unwrap();
                        let entries: Vec<Entry> = pending.iter()
                            .filter(|(k, _)| range.contains(u16::from_be_bytes([k[0], k[1]])))
                            .map(|(k, v)| Entry { key: k.clone(), value: v.clone() })
                            .collect();
                        if !entries.is_empty() {
                            refs.push(store.put_delta(g, epoch, range, &entries).unwrap());
                        }
                    }
                    for (k, v) in std::mem::take(&mut pending) {
                        match v { Some(v) => { model.insert(k, v); } None => { model.remove(&k); } }
                    }
                    store.commit_epoch(g, epoch, refs, vec![]).unwrap();
                    snapshots.insert(epoch, model.clone());
                    retained.push(epoch);
                }
                Op::Materialise { kg } => {
                    if let Some(latest) = store.latest().unwrap() { store.materialise(kg, latest.epoch).unwrap(); }
                }
                Op::Gc { keep } => {
                    let cut = retained.len().saturating_sub(keep);
                    retained.drain(..cut);
                    store.gc(&retained).unwrap();
                }
                Op::Restart => {
                    // The uncommitted epoch is lost, as in a crash.
                    pending.clear();
                    if let Some(latest) = store.latest().unwrap() {
                        model = snapshots[&latest.epoch].clone();
                    }
                    g = store.claim_generation().unwrap();
                }
            }
        }
        let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
        for &e in &retained {
            let want: Vec<_> = snapshots[&e].clone().into_iter().collect();
            prop_assert_eq!(store.restore(all(), e).unwrap(), want.clone());
            for kg in 0u16..6 {
                let one: Vec<_> = want.iter().filter(|(k, _)| k[..2] == kg.to_be_bytes()).cloned().collect();
                prop_assert_eq!(store.restore(KeyGroups::one(kg), e).unwrap(), one);
            }
        }
    }
}

// Guards that a damaged materialisation fails the restore that starts
// from it, naming the object, instead of restoring partial state.
#[test]
fn damaged_materialisation_fails_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    two_epochs(&dir);
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let at = store.materialise(0, 1).unwrap();
    let name = paths::materialised(0, at);
    damage(&file(&dir, &name), "truncate");
    let err = store.restore(KeyGroups::one(0), 2).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }) && err.to_string().contains(&name), "{err}");
}

// Guards the coordinator's memory during maintenance: whether the copies
// are built in one pass (the state fits the budget) or in runs of key
// groups that fit it (down to one key group a run), each key group's copy
// holds exactly its state at the epoch, deletions applied and other key
// groups left out, and an empty key group gets an empty copy.
#[test]
fn key_groups_are_copied_alike_within_any_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let g = store.claim_generation().unwrap();
    for e in 1..=4u64 {
        let entries = if e == 3 {
            vec![del(0, 1), put(1, e as u32, b"one"), del(3, 7)]
        } else {
            vec![put(0, 1, &[e as u8; 9]), put(1, e as u32, b"one"), put(3, 7, &[e as u8])]
        };
        let d = store.put_delta(g, e, KeyGroups::new(0, 3).unwrap(), &entries).unwrap();
        let s = store.put_delta(g, e, KeyGroups::new(6, 6).unwrap(), &[put(6, 0, &[e as u8; 20])]).unwrap();
        store.commit_epoch(g, e, vec![d, s], vec![]).unwrap();
    }
    let groups = [0u16, 1, 2, 3, 6];
    let want: Vec<_> = groups.iter().map(|&kg| store.restore(KeyGroups::one(kg), 4).unwrap()).collect();
    assert!(want[2].is_empty() && !want[3].is_empty() && want[1].len() == 4, "{want:?}");
    let at = Committed { epoch: 4, generation: g };
    for budget in [usize::MAX, 60, 0] {
        let copies = file(&dir, paths::MATERIALISED);
        let _ = std::fs::remove_dir_all(&copies);
        // What a savepoint copies: the runs, in order, are the state. Read
        // from the deltas (no copies yet), 60 bytes cut them at 0 (59
        // bytes written) | 1, 2 (44) | 3 (35) | 6 (112).
        let mut runs = Vec::new();
        store
            .state_in_runs(KeyGroups::new(0, 9).unwrap(), 4, budget, |run, entries| {
                runs.push((run, entries));
                Ok(())
            })
            .unwrap();
        assert_eq!(runs.len(), if budget == usize::MAX { 1 } else { 4 }, "{budget}: {runs:?}");
        assert!(runs.windows(2).all(|w| w[0].0.last < w[1].0.first), "{budget}: {runs:?}");
        let all: Vec<_> = runs.into_iter().flat_map(|(_, e)| e).collect();
        assert_eq!(all, want.concat(), "budget {budget}");

        assert_eq!(store.materialise_within(groups, 4, budget).unwrap(), at);
        for (kg, want) in groups.iter().zip(&want) {
            let name = paths::materialised(*kg, at);
            let copy: model::Materialised = store.read_required(&name, Kind::Materialised, "the test").unwrap();
            assert_eq!(&copy.entries, want, "key group {kg}, budget {budget}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    // Guards the rollback against a model: after any writes before and
    // after the savepoint, the rollback epoch restores exactly the
    // savepoint's state (whole range and each key group, whether the
    // latest state is read in one run or a run per key group), carries
    // its source positions without its sink records, and a second
    // rollback to the same savepoint changes nothing.
    #[test]
    fn a_rollback_epoch_restores_the_savepoints_state(
        before in proptest::collection::vec((0u16..6, 0u32..8, proptest::option::of(any::<u8>())), 0..40),
        after in proptest::collection::vec((0u16..6, 0u32..8, proptest::option::of(any::<u8>())), 0..40),
        budget in prop_oneof![Just(1usize), Just(1usize << 20)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sp = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
        let g = store.claim_generation().unwrap();
        let mut epoch = 0u64;
        let mut commit = |writes: &[(u16, u32, Option<u8>)]| {
            epoch += 1;
            let mut m: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for (kg, k, v) in writes {
                m.insert(key(*kg, *k), v.map(|b| vec![b]));
            }
            let entries: Vec<Entry> = m.into_iter().map(|(key, value)| Entry { key, value }).collect();
            let refs = if entries.is_empty() {
                vec![]
            } else {
                vec![store.put_delta(g, epoch, KeyGroups::new(0, 5).unwrap(), &entries).unwrap()]
            };
            store.commit_epoch(g, epoch, refs, vec![task(epoch as u8)]).unwrap();
            epoch
        };
        let (half, rest) = before.split_at(before.len() / 2);
        commit(half);
        let saved = commit(rest);
        store.export(saved, &url_of(&sp)).unwrap();
        let (half, rest) = after.split_at(after.len() / 2);
        commit(half);
        let latest = commit(rest);
        let done = store.rollback(&url_of(&sp), budget).unwrap();
        prop_assert!(!done.already);
        prop_assert_eq!(done.from.epoch, latest);
        prop_assert_eq!(done.at.epoch, latest + 1);
        prop_assert_eq!(done.savepoint.epoch, saved);
        let want = store.restore(all(), saved).unwrap();
        let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
        prop_assert_eq!(store.restore(all(), latest + 1).unwrap(), want.clone());
        for kg in 0u16..6 {
            let one: Vec<_> = want.iter().filter(|(k, _)| k[..2] == kg.to_be_bytes()).cloned().collect();
            prop_assert_eq!(store.restore(KeyGroups::one(kg), latest + 1).unwrap(), one);
        }
        let tasks = store.epoch_meta(latest + 1).unwrap().tasks;
        prop_assert_eq!(tasks, vec![TaskRecord { sink_commits: vec![], ..task(saved as u8) }]);
        let again = store.rollback_to(&url_of(&sp)).unwrap();
        prop_assert!(again.already);
        prop_assert_eq!(again.at, done.at);
        prop_assert_eq!(store.latest().unwrap(), Some(done.at));
    }
}

// Guards the pins: a job that mirrors ingest logs is rolled back only to
// a pinned checkpoint (its sources kept the messages since); a store
// without a checkpoint, or a savepoint without one, is refused and left
// as it was; a finished job is running again after a rollback.
#[test]
fn rollbacks_are_refused_where_messages_may_be_gone() {
    let dir = tempfile::tempdir().unwrap();
    let sp = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(&url_of(&dir), "j").unwrap();
    let err = store.rollback_to(&url_of(&sp)).unwrap_err();
    assert!(err.to_string().contains("holds no checkpoint of job j"), "{err}");
    let g = store.claim_generation().unwrap();
    for e in 1..=3u64 {
        let d = store.put_delta(g, e, KeyGroups::one(1), &[put(1, 1, &[e as u8])]).unwrap();
        store.commit_epoch(g, e, vec![d], vec![task(e as u8)]).unwrap();
    }
    let err = store.rollback_to(&url_of(&sp)).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }) && err.to_string().contains("holds no checkpoint"), "{err}");
    let fresh = CheckpointStore::open(&url_of(&empty), "j").unwrap();
    store.export(2, &url_of(&sp)).unwrap();
    let err = fresh.rollback_to(&url_of(&sp)).unwrap_err();
    assert!(err.to_string().contains("--from-savepoint"), "{err}");
    store.put_ingest(g, 0, 0, &[b"m0", b"m1"]).unwrap();
    store.mark_finished(Committed { epoch: 3, generation: g }).unwrap();
    let err = store.rollback_to(&url_of(&sp)).unwrap_err();
    assert!(err.to_string().contains("epoch 2) is not pinned"), "{err}");
    assert_eq!(store.newest_generation().unwrap(), g, "a refused rollback claims nothing");
    store.pin(1, 100).unwrap();
    store.pin(2, 200).unwrap();
    assert_eq!(store.pins().unwrap(), vec![1, 2]);
    assert_eq!((store.pinned_at(2).unwrap(), store.pinned_at(3).unwrap()), (Some(200), None));
    store.unpin(1).unwrap();
    assert_eq!(store.pins().unwrap(), vec![2]);
    let done = store.rollback_to(&url_of(&sp)).unwrap();
    assert_eq!((done.at.epoch, done.set, done.deleted), (4, 1, 0));
    assert_eq!(store.restore(all(), 4).unwrap(), vec![(key(1, 1), vec![2])]);
    assert_eq!(store.finished().unwrap(), None, "the job runs again from the rollback epoch");
}
