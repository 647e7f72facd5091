//! Two engines share one subscription (`$share/<group>/...`): every
//! message is processed by exactly one of them, so their counts add up to
//! the messages sent and both got work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::sensor::{Reading, SensorId};
use std::time::Duration;

fn count_sum(path: &std::path::Path) -> u64 {
    sorted_rows(path).iter().map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum()
}

#[test]
fn two_engines_split_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    // In order, no stragglers: neither engine drops anything as late.
    let data: Vec<Reading> = (0..6_000u64)
        .map(|i| Reading {
            sensor_id: SensorId::try_from(format!("s{}", i % 20).as_str()).unwrap(),
            ts_ms: 1_700_000_000_000 + (i / 20 * 10) as i64,
            temp: 60.0 + (i % 13) as f64,
        })
        .collect();
    let url = m.url();
    let args = ["--stop-after-idle", "2s", "--share-group", "avg"];
    let a = engine(&url, dir.path(), "eng-a", &args).spawn().unwrap();
    let b = engine(&url, dir.path(), "eng-b", &args).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng-a", "eng-b"]);
    std::thread::sleep(Duration::from_millis(500));
    publish(&url, "pub-share", &data, 20_000.0);
    let (ok_a, err_a) = finish(a, Duration::from_secs(60));
    let (ok_b, err_b) = finish(b, Duration::from_secs(60));
    assert!(ok_a && ok_b, "{err_a}\n{err_b}");
    let (na, nb) = (count_sum(&dir.path().join("eng-a.csv")), count_sum(&dir.path().join("eng-b.csv")));
    assert_eq!(na + nb, data.len() as u64, "a={na} b={nb}");
    assert!(na > 0 && nb > 0, "both engines should get messages: a={na} b={nb}");
}
