//! The checkpoint store on file://: uploading a 10 k-entry key-group delta,
//! and restoring that key group (a materialisation plus one delta).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in a benchmark a panic is the failure report
#![allow(missing_docs)] // criterion_group! declares an undocumented `pub fn`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rivulet::checkpoint::store::{CheckpointStore, Entry, KeyGroups};

const ENTRIES: u32 = 10_000;

fn entries(round: u8) -> Vec<Entry> {
    (0..ENTRIES)
        .map(|k| {
            let mut key = vec![0, 7, 0, 1];
            key.extend_from_slice(&k.to_be_bytes());
            Entry { key, value: Some(vec![round; 24]) }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checkpoint_store");
    g.throughput(Throughput::Elements(u64::from(ENTRIES)));
    g.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let store = CheckpointStore::open(&url, "bench").expect("open");
    let gen = store.claim_generation().expect("claim");
    let kg = KeyGroups::one(7);
    let delta = entries(1);

    let mut epoch = 0u64;
    g.bench_function("put_delta_10k_entries", |b| {
        b.iter(|| {
            epoch += 1;
            store.put_delta(gen, epoch, kg, &delta).expect("put_delta")
        })
    });

    let d = store.put_delta(gen, epoch + 1, kg, &delta).expect("put_delta");
    store.commit_epoch(gen, epoch + 1, vec![d], vec![]).expect("commit");
    store.materialise(7, epoch + 1).expect("materialise");
    let d = store.put_delta(gen, epoch + 2, kg, &entries(2)).expect("put_delta");
    store.commit_epoch(gen, epoch + 2, vec![d], vec![]).expect("commit");
    g.bench_function("restore_10k_entries_materialised_plus_delta", |b| {
        b.iter(|| store.restore(kg, epoch + 2).expect("restore"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
