//! The seed job against a naive model on random out-of-order input with
//! stragglers; batch size, parallelism, checkpointing and a tiny state cache
//! (forcing spills to fjall) never change the result.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use proptest::prelude::*;
use rivulet::JobConfig;
use rivulet_agent::seed::sensor::{run_sensor_average, Input, SensorAverage};
use seed::{model, sorted_rows, write_csv, Line};
use std::time::Duration;

fn run(dir: &std::path::Path, input: &std::path::Path, name: &str, job: JobConfig) -> Vec<String> {
    let out = dir.join(format!("{name}.csv"));
    let cfg = SensorAverage {
        input: Input::Csv(input.to_path_buf()),
        output: out.clone(),
        window: Duration::from_secs(5),
        max_out_of_orderness: Duration::from_secs(2),
        input_rate: None,
        dead_letter: None,
        publish: None,
        job,
    };
    let r = run_sensor_average(&cfg).unwrap();
    assert!(!r.already_finished);
    sorted_rows(&out)
}

fn lines_strategy() -> impl Strategy<Value = Vec<Line>> {
    // (key, step forward, backwards jitter, straggler?) per event
    prop::collection::vec((0u8..6, 0i64..900, 0i64..2500, prop::bool::weighted(0.03), 0u32..12_000), 1..600).prop_map(
        |events| {
            let mut t = 1_700_000_000_000i64;
            events
                .into_iter()
                .map(|(k, step, jitter, straggle, temp)| {
                    t += step;
                    let late = if straggle { 9_000 } else { 0 };
                    Line { id: format!("s{k}"), ts: t - jitter - late, temp_f: f64::from(temp) / 100.0 - 20.0 }
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn equals_model_for_any_batching_and_parallelism(lines in lines_strategy(), p in 1usize..4, batch in prop::sample::select(vec![1usize, 3, 64, 1024])) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        write_csv(&input, &lines);
        let expected = model(&lines, 5000, 2000);
        let mut job = JobConfig::new("oracle");
        job.parallelism = p;
        job.batch_size = batch;
        prop_assert_eq!(run(dir.path(), &input, "mem", job), expected.clone());

        // Checkpointing every millisecond through fjall, with a cache so
        // small that window state spills, gives the same rows.
        let mut job = JobConfig::new("oracle");
        job.parallelism = p;
        job.batch_size = batch;
        job.state_dir = Some(dir.path().join("state"));
        job.checkpoint_interval = Duration::from_millis(1);
        job.state_cache_bytes = 0;
        prop_assert_eq!(run(dir.path(), &input, "cp", job), expected);
    }
}

#[test]
fn many_keys_spill_and_match_the_model() {
    let lines = seed::synthetic(60_000, 3_000, 42, 8_000, 500);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &lines);
    let expected = model(&lines, 5000, 2000);
    let mut job = JobConfig::new("spill");
    job.parallelism = 2;
    job.state_dir = Some(dir.path().join("state"));
    job.checkpoint_interval = Duration::from_millis(5);
    job.state_cache_bytes = 16 << 10; // far below 3000 keys × windows
    assert_eq!(run(dir.path(), &input, "out", job), expected);
}
