//! Helpers shared by the seed-job tests: input files, a naive model of the
//! job, and output comparison.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;

/// One input reading.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub id: String,
    pub ts: i64,
    pub temp_f: f64,
}

pub(crate) fn write_csv(path: &Path, lines: &[Line]) {
    let mut s = String::new();
    for l in lines {
        s.push_str(&format!("{},{},{}\n", l.id, l.ts, l.temp_f));
    }
    std::fs::write(path, s).unwrap();
}

/// The seed job computed naively, one event at a time, with Flink's rules:
/// the watermark before an event is `max_ts_seen - delay - 1`; an event is
/// dropped when its window's `end - 1 <= watermark`; every other window
/// fires at the end of input with `sum / count`, summed in arrival order.
pub(crate) fn model(lines: &[Line], window: i64, delay: i64) -> Vec<String> {
    let mut max_ts = i64::MIN + delay + 1;
    let mut acc: BTreeMap<(String, i64), (f64, u64)> = BTreeMap::new();
    for l in lines {
        let wm = max_ts.saturating_sub(delay).saturating_sub(1);
        let start = l.ts - l.ts.rem_euclid(window);
        let end = start + window;
        if end - 1 > wm {
            let e = acc.entry((l.id.clone(), end)).or_insert((0.0, 0));
            e.0 += (l.temp_f - 32.0) * 5.0 / 9.0;
            e.1 += 1;
        }
        max_ts = max_ts.max(l.ts);
    }
    let mut rows: Vec<String> =
        acc.into_iter().map(|((id, end), (sum, n))| format!("{id},{end},{},{n}", sum / n as f64)).collect();
    rows.sort();
    rows
}

/// The rows of an output file, sorted (row order is not part of the contract).
pub(crate) fn sorted_rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
    rows.sort();
    rows
}

/// Deterministic pseudo-random input: `n` readings of `keys` sensors, mostly
/// in order with jitter, plus stragglers `straggle` ms late every `every`.
pub(crate) fn synthetic(n: usize, keys: usize, seed: u64, straggle: i64, every: u64) -> Vec<Line> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let late = if every > 0 && r % every == 0 { straggle } else { 0 };
            Line {
                id: format!("s{:03}", r % keys as u64),
                ts: 1_700_000_000_000 + i as i64 * 7 - (r >> 8) as i64 % 1500 - late,
                temp_f: ((r >> 20) % 10_000) as f64 / 100.0,
            }
        })
        .collect()
}
