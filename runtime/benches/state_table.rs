//! Keyed state access: cache hits, and a working set larger than the cache
//! (evictions to fjall's spill keyspace and reads back).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in a benchmark a panic is the failure report
#![allow(missing_docs)] // criterion_group! declares an undocumented `pub fn`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rivulet::state::{Backing, Store, StoreConfig, Table};
use std::sync::Arc;

const OPS: u64 = 100_000;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_table");
    g.throughput(Throughput::Elements(OPS));
    g.sample_size(10);

    g.bench_function("upsert_hit_1k_keys_memory", |b| {
        let mut t: Table<u64, i64, (f64, u64)> = Table::new(1, 128, usize::MAX, None, 1);
        b.iter(|| {
            for i in 0..OPS {
                let acc = t.upsert(&(i % 1000), 0, || (0.0, 0)).expect("upsert");
                acc.0 += 1.0;
                acc.1 += 1;
            }
        })
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(&dir.path().join("s"), "bench", &StoreConfig::default()).expect("store");
    let backing = Backing::new(Arc::new(store), false);
    g.bench_function("upsert_100k_keys_64KiB_cache_spilling", |b| {
        let mut t: Table<u64, i64, (f64, u64)> = Table::new(2, 128, 64 << 10, Some(backing.clone()), 1);
        let mut k = 0u64;
        b.iter(|| {
            for _ in 0..OPS {
                k = (k + 7919) % 100_000;
                let acc = t.upsert(&k, 0, || (0.0, 0)).expect("upsert");
                acc.1 += 1;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
