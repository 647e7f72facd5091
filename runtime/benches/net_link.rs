//! One edge over a loopback link: records/s and bytes on the wire per
//! record, for the seed job's record type (sensor id, timestamp, value).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in a benchmark a panic is the failure report
#![allow(missing_docs)] // criterion_group! declares an undocumented `pub fn`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rivulet::net::{ClusterToken, EdgeId, HandshakeConfig, Identity, Link, LinkConfig, NetMetrics};
use rivulet::{Message, Record};
use serde::{Deserialize, Serialize};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// The seed job's reading, as it crosses a key-by.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor_id: heapless::String<32>,
    ts_ms: i64,
    temp: f64,
}

const BATCH: usize = 256;
const BATCHES: usize = 400;

fn config() -> LinkConfig {
    LinkConfig::new(HandshakeConfig {
        identity: Identity { job: "bench".into(), graph_hash: 1, generation: 1 },
        token: ClusterToken::new(b"bench-token".to_vec()),
        timeout: Duration::from_secs(10),
    })
}

fn batch(base: i64) -> Vec<Record<Reading>> {
    (0..BATCH as i64)
        .map(|i| {
            let mut sensor_id = heapless::String::new();
            let _ = sensor_id.push_str(&format!("sensor-{}", i % 1000));
            Record {
                ts: base + i,
                wm: base - 2000,
                value: Reading { sensor_id, ts_ms: base + i, temp: 20.0 + (i % 50) as f64 * 0.1 },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let rx_metrics = Arc::new(NetMetrics::default());
    let m2 = rx_metrics.clone();
    let acceptor =
        std::thread::spawn(move || Link::accept(l.accept().expect("accept").0, &config(), m2).expect("accept link"));
    let a = Link::dial(addr, &config(), Arc::new(NetMetrics::default())).expect("dial");
    let b = acceptor.join().expect("acceptor");
    let edge = EdgeId::new(0, 0, 1, 0).expect("edge");
    let out = a.outbox::<Reading>(edge).expect("outbox");
    let mut inbox = b.inbox::<Reading>(edge, 32).expect("inbox");
    let data = batch(1_700_000_000_000);
    let one = rivulet::net::frame::encode_message(&Message::Data(data.clone()), edge.0, 1).expect("encode");
    eprintln!(
        "net_link: {:.1} bytes on the wire per record ({} per batch of {BATCH})",
        one.len() as f64 / BATCH as f64,
        one.len()
    );

    let mut g = c.benchmark_group("net_link");
    g.throughput(Throughput::Elements((BATCH * BATCHES) as u64));
    g.sample_size(10);
    g.bench_function("reading_batches_256", |bch| {
        bch.iter(|| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..BATCHES {
                        out.send(&Message::Data(data.clone())).expect("send");
                    }
                });
                for _ in 0..BATCHES {
                    inbox.recv().expect("recv");
                }
            });
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
