//! Tumbling-window aggregation through the whole engine (generator source,
//! key-by, window, file sink), in memory and with checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in a benchmark a panic is the failure report
#![allow(missing_docs)] // criterion_group! declares an undocumented `pub fn`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::aggregate::{Avg, Count};
use rivulet::source::Generator;
use rivulet::window::Tumbling;
use rivulet::{Env, JobConfig, Sink, Watermarks, Windowed};
use std::time::Duration;

const EVENTS: u64 = 1_000_000;

type Ev = (u32, i64, f64);

fn job(dir: &std::path::Path, keys: u32, parallelism: usize, checkpoint: bool) {
    let mut cfg = JobConfig::new("bench");
    cfg.parallelism = parallelism;
    if checkpoint {
        cfg.state_dir = Some(dir.join(format!("state-{}", rand_suffix())));
        cfg.checkpoint_interval = Duration::from_millis(100);
    }
    let env = Env::new(cfg).expect("env");
    let src = Generator::new(Some(EVENTS), move |i| ((i % u64::from(keys)) as u32, (i / 4) as i64, (i % 100) as f64));
    env.source(src, Watermarks::bounded_out_of_orderness(Duration::from_secs(2), |e: &Ev| e.1))
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(5)).expect("a 5 s window"))
        .aggregate((Avg::of(|e: &Ev| e.2), Count))
        .sink(Sink::file(dir.join("out.csv"), |w: &Windowed<u32, (f64, u64)>, b: &mut Vec<u8>| {
            b.extend_from_slice(&w.value.1.to_le_bytes())
        }));
    env.execute().expect("run");
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("window_tumbling");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    for (keys, p, cp) in [(1000, 1, false), (1000, 2, false), (100_000, 1, false), (1000, 1, true)] {
        let id = format!("keys={keys}/p={p}/checkpoints={cp}");
        g.bench_function(BenchmarkId::from_parameter(id), |b| b.iter(|| job(dir.path(), keys, p, cp)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
