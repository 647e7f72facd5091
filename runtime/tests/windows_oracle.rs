//! Every window kind against a naive, one-event-at-a-time model of Flink's
//! rules (per-event watermark `max_ts - delay - 1`, lateness, re-firing on
//! late elements, session merging), for any parallelism and batch size, in memory and with state and timers
//! spilling to a store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use proptest::prelude::*;
use rivulet::aggregate::{Count, Max, Sum};
use rivulet::source::Generator;
use rivulet::window::{Assigner, Count as CountWindow, Session, Sliding, Tumbling};
use rivulet::{Env, JobConfig, Sink, Watermarks, Windowed};
use std::collections::BTreeMap;
use std::time::Duration;

const DELAY: i64 = 1_000;

/// (key, ts, value). Values are small integers so sums are exact whatever
/// order panes or sessions are merged in.
type Ev = (u8, i64, f64);
type Out = Windowed<u8, (u64, f64, Option<f64>)>;

/// How a run is set up: parallelism, batch size, and whether state lives
/// in a store with a cache so small that state and timers spill to disk.
type Setup = (usize, usize, bool);

fn run(events: &[Ev], assigner: Assigner, lateness: i64, (p, batch, spill): Setup) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let mut cfg = JobConfig::new("windows");
    cfg.parallelism = p;
    cfg.batch_size = batch;
    if spill {
        cfg.state_dir = Some(dir.path().join("state"));
        cfg.state_cache_bytes = 0;
        cfg.checkpoint_interval = Duration::from_millis(1);
    }
    let env = Env::new(cfg).unwrap();
    let evs = events.to_vec();
    let src = Generator::new(Some(evs.len() as u64), move |i| evs[i as usize]);
    env.source(src, Watermarks::bounded_out_of_orderness(Duration::from_millis(DELAY as u64), |e: &Ev| e.1))
        .key_by(|e: &Ev| e.0)
        .window(assigner)
        .allowed_lateness(Duration::from_millis(lateness as u64))
        .aggregate((Count, Sum::of(|e: &Ev| e.2), Max::of(|e: &Ev| e.2)))
        .sink(Sink::file(&out, |w: &Out, b: &mut Vec<u8>| {
            let (c, s, m) = w.value;
            b.extend_from_slice(
                format!("{},{},{},{c},{s},{}\n", w.key, w.window.start, w.window.end, m.unwrap_or(f64::NAN)).as_bytes(),
            )
        }));
    env.execute().unwrap();
    let mut rows: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    rows.sort();
    rows
}

#[derive(Default, Clone, Copy)]
struct Acc {
    c: u64,
    s: f64,
    m: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        self.m = if self.c == 0 { v } else { self.m.max(v) };
        self.c += 1;
        self.s += v;
    }
    fn row(&self, k: u8, start: i64, end: i64) -> String {
        format!("{k},{start},{end},{},{},{}", self.c, self.s, self.m)
    }
}

/// Tumbling/sliding with allowed lateness: windows fire once when the
/// watermark passes their end, again for each late element inside the
/// lateness, and are dropped at `end - 1 + lateness`.
fn model_time(events: &[Ev], size: i64, slide: i64, lateness: i64) -> Vec<String> {
    let mut max_ts = i64::MIN + DELAY + 1;
    // (key, start) -> (acc, fired)
    let mut wins: BTreeMap<(u8, i64), (Acc, bool)> = BTreeMap::new();
    let mut rows = Vec::new();
    let advance = |wm: i64, wins: &mut BTreeMap<(u8, i64), (Acc, bool)>, rows: &mut Vec<String>| {
        for (&(k, s), (acc, fired)) in wins.iter_mut() {
            if !*fired && s + size - 1 <= wm {
                rows.push(acc.row(k, s, s + size));
                *fired = true;
            }
        }
        wins.retain(|&(_, s), _| (s + size - 1).saturating_add(lateness) > wm);
    };
    for &(k, ts, v) in events {
        let wm = max_ts.saturating_sub(DELAY).saturating_sub(1);
        advance(wm, &mut wins, &mut rows);
        let last = ts - (ts.rem_euclid(slide));
        let mut s = last;
        while s > ts - size {
            if (s + size - 1).saturating_add(lateness) > wm {
                let e = wins.entry((k, s)).or_insert((Acc::default(), false));
                e.0.add(v);
                if s + size - 1 <= wm {
                    rows.push(e.0.row(k, s, s + size));
                    e.1 = true;
                }
            }
            s -= slide;
        }
        max_ts = max_ts.max(ts);
    }
    advance(i64::MAX, &mut wins, &mut rows);
    rows.sort();
    rows
}

/// Sessions with gap `gap` and no lateness, merged as Flink merges them.
fn model_session(events: &[Ev], gap: i64) -> Vec<String> {
    let mut max_ts = i64::MIN + DELAY + 1;
    let mut sessions: BTreeMap<u8, Vec<(i64, i64, Acc)>> = BTreeMap::new();
    let mut rows = Vec::new();
    let fire = |wm: i64, sessions: &mut BTreeMap<u8, Vec<(i64, i64, Acc)>>, rows: &mut Vec<String>| {
        for (&k, list) in sessions.iter_mut() {
            list.retain(|(s, e, acc)| {
                if e - 1 <= wm {
                    rows.push(acc.row(k, *s, *e));
                    false
                } else {
                    true
                }
            });
        }
    };
    for &(k, ts, v) in events {
        let wm = max_ts.saturating_sub(DELAY).saturating_sub(1);
        fire(wm, &mut sessions, &mut rows);
        let list = sessions.entry(k).or_default();
        let (mut s, mut e) = (ts, ts + gap);
        let mut acc = Acc::default();
        let mut keep = Vec::new();
        let mut merged = Vec::new();
        for w in list.drain(..) {
            if w.0 <= e && w.1 >= s {
                s = s.min(w.0);
                e = e.max(w.1);
                merged.push(w);
            } else {
                keep.push(w);
            }
        }
        if e - 1 <= wm {
            keep.extend(merged);
        } else {
            for w in &merged {
                acc.c += w.2.c;
                acc.s += w.2.s;
                acc.m = if acc.c == w.2.c { w.2.m } else { acc.m.max(w.2.m) };
            }
            acc.add(v);
            keep.push((s, e, acc));
        }
        *list = keep;
        max_ts = max_ts.max(ts);
    }
    fire(i64::MAX, &mut sessions, &mut rows);
    rows.sort();
    rows
}

fn model_count(events: &[Ev], n: u64) -> Vec<String> {
    let mut open: BTreeMap<u8, (Acc, i64, i64)> = BTreeMap::new();
    let mut rows = Vec::new();
    for &(k, ts, v) in events {
        let e = open.entry(k).or_insert((Acc::default(), ts, ts));
        e.0.add(v);
        e.1 = e.1.min(ts);
        e.2 = e.2.max(ts);
        if e.0.c == n {
            rows.push(e.0.row(k, e.1, e.2 + 1));
            open.remove(&k);
        }
    }
    rows.sort();
    rows
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0u8..4, 0i64..700, 0i64..1800, prop::bool::weighted(0.05), 0u8..50), 1..300).prop_map(|v| {
        let mut t = 0i64;
        v.into_iter()
            .map(|(k, step, jitter, straggle, val)| {
                t += step;
                (k, t - jitter - if straggle { 6_000 } else { 0 }, f64::from(val))
            })
            .collect()
    })
}

fn setup() -> impl Strategy<Value = Setup> {
    (1usize..4, prop::sample::select(vec![1usize, 5, 256]), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn tumbling(ev in events(), setup in setup()) {
        let a = Tumbling::of(Duration::from_secs(2)).unwrap().into();
        prop_assert_eq!(run(&ev, a, 0, setup), model_time(&ev, 2000, 2000, 0));
    }

    #[test]
    fn tumbling_with_allowed_lateness(ev in events(), setup in setup()) {
        let a = Tumbling::of(Duration::from_secs(2)).unwrap().into();
        prop_assert_eq!(run(&ev, a, 3000, setup), model_time(&ev, 2000, 2000, 3000));
    }

    #[test]
    fn sliding(ev in events(), setup in setup()) {
        let a = Sliding::of(Duration::from_secs(3), Duration::from_secs(1)).unwrap().into();
        prop_assert_eq!(run(&ev, a, 0, setup), model_time(&ev, 3000, 1000, 0));
    }

    #[test]
    fn sliding_not_a_multiple_with_lateness(ev in events(), setup in setup()) {
        let a = Sliding::of(Duration::from_millis(2500), Duration::from_millis(1000)).unwrap().into();
        prop_assert_eq!(run(&ev, a, 1500, setup), model_time(&ev, 2500, 1000, 1500));
    }

    #[test]
    fn session(ev in events(), setup in setup()) {
        let a = Session::with_gap(Duration::from_millis(1200)).unwrap().into();
        prop_assert_eq!(run(&ev, a, 0, setup), model_session(&ev, 1200));
    }

    #[test]
    fn count(ev in events(), setup in setup()) {
        prop_assert_eq!(run(&ev, CountWindow(3).into(), 0, setup), model_count(&ev, 3));
    }
}

/// Thousands of keys with a cache of nothing: window state and the timers
/// of every window kind live mostly in the store, and results equal the
/// in-memory run's.
#[test]
fn many_keys_spill_state_and_timers_to_the_store() {
    type E = (u32, i64, f64);
    type O = Windowed<u32, (u64, f64, Option<f64>)>;
    let events: Vec<E> = (0..60_000u32)
        .map(|i| {
            let k = (i * 7919) % 3000;
            let jitter = i64::from((i * 31) % 1500);
            (k, i64::from(i) * 2 - jitter, f64::from(i % 17))
        })
        .collect();
    let run = |assigner: Assigner, lateness: u64, spill: bool| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.csv");
        let mut cfg = JobConfig::new("many-keys");
        cfg.parallelism = 2;
        if spill {
            cfg.state_dir = Some(dir.path().join("state"));
            cfg.state_cache_bytes = 0;
            cfg.checkpoint_interval = Duration::from_millis(5);
        }
        let env = Env::new(cfg).unwrap();
        let evs = events.clone();
        let src = Generator::new(Some(evs.len() as u64), move |i| evs[i as usize]);
        env.source(src, Watermarks::bounded_out_of_orderness(Duration::from_millis(DELAY as u64), |e: &E| e.1))
            .key_by(|e: &E| e.0)
            .window(assigner)
            .allowed_lateness(Duration::from_millis(lateness))
            .aggregate((Count, Sum::of(|e: &E| e.2), Max::of(|e: &E| e.2)))
            .sink(Sink::file(&out, |w: &O, b: &mut Vec<u8>| {
                let (c, s, m) = w.value;
                b.extend_from_slice(format!("{},{},{},{c},{s},{m:?}\n", w.key, w.window.start, w.window.end).as_bytes())
            }));
        env.execute().unwrap();
        let mut rows: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
        rows.sort();
        rows
    };
    let kinds: [(Assigner, u64); 3] = [
        (Tumbling::of(Duration::from_secs(5)).unwrap().into(), 0),
        (Sliding::of(Duration::from_secs(6), Duration::from_secs(2)).unwrap().into(), 1_000),
        (Session::with_gap(Duration::from_millis(1_500)).unwrap().into(), 0),
    ];
    for (assigner, lateness) in kinds {
        let memory = run(assigner, lateness, false);
        assert!(memory.len() > 3000, "{assigner:?}: {} rows", memory.len());
        assert_eq!(run(assigner, lateness, true), memory, "{assigner:?}");
    }
}
