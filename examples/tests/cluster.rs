//! The seed job on a cluster of processes on 127.0.0.1: a coordinator and
//! worker slots of the `sensor-average` binary, checkpoints in a `file://`
//! store. Every run must end with the single-process output, row for row:
//! with 1, 2 and 3 workers, and after `kill -9` of a worker (restarted with
//! the same command, or with its state directory gone, or never), and of
//! the coordinator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
mod seed;

use common::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");
const LIMIT: Duration = Duration::from_secs(240);

struct Cluster {
    dir: PathBuf,
    input: PathBuf,
    output: PathBuf,
    store: PathBuf,
    port: u16,
    workers: u16,
    parallelism: usize,
    interval: String,
    extra: Vec<String>,
}

impl Cluster {
    fn new(dir: &Path, input: &Path, workers: u16, parallelism: usize) -> Cluster {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        Cluster {
            dir: dir.to_path_buf(),
            input: input.to_path_buf(),
            output: dir.join("out.csv"),
            store,
            port: free_port(),
            workers,
            parallelism,
            interval: "50ms".into(),
            extra: Vec::new(),
        }
    }

    /// The coordinator's command line, not yet started.
    fn coordinator_command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("coordinator")
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--workers", &self.workers.to_string()])
            .arg("--checkpoint-store")
            .arg(format!("file://{}", self.store.display()))
            .arg("--input")
            .arg(&self.input)
            .arg("--output")
            .arg(&self.output)
            .args(["--parallelism", &self.parallelism.to_string(), "--checkpoint-interval", &self.interval])
            .args(&self.extra);
        cmd
    }

    fn coordinator(&self) -> Child {
        self.coordinator_command().stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    }

    fn state(&self, slot: u16) -> PathBuf {
        self.dir.join(format!("worker-{slot}"))
    }

    fn worker(&self, slot: u16) -> Child {
        Command::new(BIN)
            .arg("worker")
            .args(["--coordinator", &format!("127.0.0.1:{}", self.port), "--slot", &slot.to_string()])
            .arg("--state-dir")
            .arg(self.state(slot))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The latest committed epoch in the store (0: none yet).
    fn latest(&self) -> u64 {
        common::latest_epoch(&self.store)
    }

    fn wait_for_epoch_after(&self, before: u64, procs: &mut [Child]) {
        let start = Instant::now();
        while self.latest() <= before {
            for p in procs.iter_mut() {
                if let Some(st) = p.try_wait().unwrap() {
                    panic!("a process ended early with {st}");
                }
            }
            assert!(start.elapsed() < LIMIT, "no checkpoint committed in {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Waits for `child` to exit, killing everything in `all` on timeout.
fn finish(child: Child, all: &mut [Child]) -> Output {
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            for c in all.iter_mut() {
                let _ = c.kill();
            }
            let out = child.wait_with_output().unwrap();
            panic!("the cluster did not finish in {LIMIT:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn expected(dir: &Path, input: &Path, p: usize) -> Vec<String> {
    let out = dir.join("expected.csv");
    let st = Command::new(BIN)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(&out)
        .args(["--parallelism", &p.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    seed::sorted_rows(&out)
}

fn input(dir: &Path, lines: usize) -> PathBuf {
    let input = dir.join("in.csv");
    seed::write_csv(&input, &seed::synthetic(lines, 400, 11, 9_000, 997));
    input
}

/// Runs the cluster to its end; `chaos` acts on the running processes
/// (coordinator first, then the workers by slot).
fn run(c: &Cluster, chaos: impl FnOnce(&Cluster, &mut Vec<Child>)) -> Output {
    run_with(c, chaos, true)
}

/// [`run`]; with `strict` false a worker started again just as the job
/// finished (it waits for a coordinator that is gone) is stopped instead
/// of failing the test.
fn run_with(c: &Cluster, chaos: impl FnOnce(&Cluster, &mut Vec<Child>), strict: bool) -> Output {
    let mut procs = vec![c.coordinator()];
    for slot in 0..c.workers {
        procs.push(c.worker(slot));
    }
    chaos(c, &mut procs);
    let coordinator = procs.remove(0);
    let out = finish(coordinator, &mut procs);
    assert!(out.status.success(), "coordinator: {}", String::from_utf8_lossy(&out.stderr));
    for mut w in procs.drain(..) {
        if !strict {
            let start = Instant::now();
            while w.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = w.kill();
            w.wait().unwrap();
            continue;
        }
        let o = finish(w, &mut []);
        assert!(o.status.success(), "worker: {}", String::from_utf8_lossy(&o.stderr));
    }
    out
}

#[test]
fn one_two_and_three_workers_give_the_single_process_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 200_000);
    let want = expected(dir.path(), &input, 1);
    assert!(want.len() > 1000);
    for (workers, p) in [(1u16, 1usize), (2, 4), (3, 6)] {
        let sub = dir.path().join(format!("w{workers}"));
        std::fs::create_dir_all(&sub).unwrap();
        let c = Cluster::new(&sub, &input, workers, p);
        run(&c, |_, _| {});
        assert_eq!(seed::sorted_rows(&c.output), want, "{workers} workers, parallelism {p}");
    }
}

#[test]
fn a_worker_killed_and_restarted_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_200_000);
    let want = expected(dir.path(), &input, 1);
    let c = Cluster::new(dir.path(), &input, 3, 6);
    run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        procs[2].kill().unwrap(); // SIGKILL, slot 1
        procs[2].wait().unwrap();
        procs[2] = c.worker(1);
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn a_worker_whose_disk_is_gone_restores_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_200_000);
    let want = expected(dir.path(), &input, 1);
    let c = Cluster::new(dir.path(), &input, 3, 6);
    run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        procs[1].kill().unwrap(); // slot 0: the source and the sink
        procs[1].wait().unwrap();
        std::fs::remove_dir_all(c.state(0)).unwrap();
        procs[1] = c.worker(0);
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn a_worker_that_never_comes_back_leaves_the_job_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_200_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 3, 6);
    c.extra = vec!["--worker-timeout".into(), "1s".into()];
    run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        let mut gone = procs.remove(3); // slot 2
        gone.kill().unwrap();
        gone.wait().unwrap();
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn a_coordinator_killed_and_restarted_resumes_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_200_000);
    let want = expected(dir.path(), &input, 1);
    let c = Cluster::new(dir.path(), &input, 2, 4);
    let out = run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        procs[0].kill().unwrap();
        procs[0].wait().unwrap();
        procs[0] = c.coordinator();
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("finished at epoch"), "{stderr}");
    // Run again: the store says the job finished; the output stays.
    let again = c.coordinator_command().output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn a_store_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_000);
    let out = Command::new(BIN)
        .arg("coordinator")
        .args(["--listen", "127.0.0.1:0", "--workers", "1"])
        .arg("--checkpoint-store")
        .arg(format!("file://{}", dir.path().join("missing").display()))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("out.csv").exists());
}

fn generations(c: &Cluster) -> usize {
    std::fs::read_dir(c.store.join("sensor-average/generations")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_paused_worker_is_fenced_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_500_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 3, 6);
    c.extra = vec!["--worker-timeout".into(), "1s".into()];
    run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        let pid = procs[2].id().to_string(); // slot 1
        assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        // The coordinator declares it lost (no heartbeat), fences its
        // generation with a new one, and goes on without it.
        let start = Instant::now();
        while generations(c) < 2 {
            assert!(start.elapsed() < LIMIT, "the paused worker was never declared lost");
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = c.latest();
        c.wait_for_epoch_after(after, &mut procs[..2]);
        assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn the_job_goes_on_after_the_checkpoint_store_was_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_500_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 2, 4);
    // Paced to take at least 15 s: the store goes away while it runs.
    c.extra = vec!["--input-rate".into(), "100000".into()];
    run(&c, |c, procs| {
        c.wait_for_epoch_after(0, procs);
        // The shared volume goes away: its mount point is not a directory.
        let away = c.dir.join("store.away");
        std::fs::rename(&c.store, &away).unwrap();
        std::fs::write(&c.store, b"not mounted").unwrap();
        std::thread::sleep(Duration::from_secs(2));
        std::fs::remove_file(&c.store).unwrap();
        std::fs::rename(&away, &c.store).unwrap();
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
}

#[test]
fn rescaling_three_to_two_to_four_workers_from_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_500_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 3, 6);
    for (workers, p) in [(3u16, 6usize), (2, 4)] {
        c.workers = workers;
        c.parallelism = p;
        c.port = free_port();
        let mut procs = vec![c.coordinator()];
        for slot in 0..workers {
            procs.push(c.worker(slot));
        }
        let before = c.latest();
        c.wait_for_epoch_after(before, &mut procs);
        for mut p in procs {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }
    c.workers = 4;
    c.parallelism = 8;
    c.port = free_port();
    run(&c, |_, _| {});
    assert_eq!(seed::sorted_rows(&c.output), want);
}

fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, token).unwrap();
    p
}

#[test]
fn workers_without_the_right_token_or_slot_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 50_000);
    let good = token_file(dir.path(), "good", "s3cret-token-1234");
    let bad = token_file(dir.path(), "bad", "another-token-5678");
    let mut c = Cluster::new(dir.path(), &input, 1, 1);
    c.extra = vec!["--cluster-token-file".into(), good.display().to_string()];
    let coordinator = c.coordinator();
    let worker = |slot: &str, token: Option<&Path>| {
        let mut cmd = Command::new(BIN);
        cmd.arg("worker").args(["--coordinator", &format!("127.0.0.1:{}", c.port), "--slot", slot]);
        cmd.arg("--state-dir").arg(dir.path().join(format!("w-{slot}")));
        if let Some(t) = token {
            cmd.arg("--cluster-token-file").arg(t);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        finish(child, &mut [])
    };
    let wrong = worker("0", Some(&bad));
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(3), "{text}");
    assert!(text.contains("wrong cluster token") && !text.contains("another-token"), "{text}");
    let missing = worker("0", None);
    let text = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(3), "{text}");
    assert!(text.contains("token"), "{text}");
    let slot = worker("5", Some(&good));
    let text = String::from_utf8_lossy(&slot.stderr);
    assert_eq!(slot.status.code(), Some(3), "{text}");
    assert!(text.contains("slot 5"), "{text}");
    assert!(!c.output.exists() || std::fs::read(&c.output).unwrap().is_empty());
    // The right worker still runs the job.
    let ok = worker("0", Some(&good));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let out = finish(coordinator, &mut []);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seed::sorted_rows(&c.output), expected(dir.path(), &input, 1));
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p, suffix)
            } else {
                usize::from(p.to_string_lossy().contains(suffix))
            }
        })
        .sum()
}

/// Files under `epochs/` of the job's store whose names contain `suffix`,
/// in the directory of `epoch`.
fn epoch_files(c: &Cluster, epoch: u64, suffix: &str) -> usize {
    count_files(&c.store.join(format!("sensor-average/epochs/{epoch:020}")), suffix)
}

#[test]
fn the_store_keeps_what_restores_need_and_restores_from_materialisations() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_000_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 2, 4);
    c.interval = "10ms".into();
    // Paced to take at least 25 s, so that maintenance has its rounds
    // while the job runs however slowly its checkpoints go.
    c.extra = vec!["--input-rate".into(), "40000".into()];
    run(&c, |c, procs| {
        // The first round of maintenance (after 10 commits) materialises
        // the key groups and then collects what the last 3 checkpoints no
        // longer need: epoch 1 among it. A worker then restores from the
        // copies.
        let start = Instant::now();
        while count_files(&c.store.join("sensor-average/materialised"), "-g") == 0 || epoch_files(c, 1, "meta-") > 0 {
            for p in procs.iter_mut() {
                assert!(p.try_wait().unwrap().is_none(), "the job ended before a round of maintenance");
            }
            assert!(start.elapsed() < LIMIT, "no round of maintenance in {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let now = c.latest();
        c.wait_for_epoch_after(now, procs);
        procs[2].kill().unwrap();
        procs[2].wait().unwrap();
        procs[2] = c.worker(1);
    });
    assert_eq!(seed::sorted_rows(&c.output), want);
    let job = c.store.join("sensor-average");
    let latest = c.latest();
    assert!(latest >= 10, "{latest} epochs: maintenance ran, so there were at least 10");
    assert_eq!(epoch_files(&c, 1, "meta-") + epoch_files(&c, 1, ".out"), 0, "epoch 1 was kept");
    assert!(count_files(&job.join("materialised"), "-g") > 0, "nothing was materialised");
    // What maintenance every 10 epochs keeps: the last 3 checkpoints and
    // those committed since the last round (or two, with one under way
    // as the job ended).
    let metas = count_files(&job.join("epochs"), "meta-");
    assert!(metas <= 3 + 2 * 10, "{metas} epochs' metadata kept of {latest}");
    let outs = count_files(&job.join("epochs"), ".out");
    assert!(outs <= (3 + 2 * 10) * 4, "{outs} epochs' results kept of {latest}");
}

#[test]
fn rescaling_from_a_savepoint_to_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_500_000);
    let want = expected(dir.path(), &input, 1);
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    let c = Cluster::new(&first, &input, 3, 6);
    let mut procs = vec![c.coordinator()];
    for slot in 0..3 {
        procs.push(c.worker(slot));
    }
    c.wait_for_epoch_after(0, &mut procs);
    let sp = common::take_savepoint(c.port, dir.path());
    for mut p in procs {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    // Another store, two workers, the same output file.
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let mut c2 = Cluster::new(&second, &input, 2, 4);
    c2.output = c.output.clone();
    c2.extra = vec!["--from-savepoint".into(), sp.display().to_string()];
    run(&c2, |_, _| {});
    assert_eq!(seed::sorted_rows(&c2.output), want);
}

/// A rollback: a savepoint, more checkpoints, every process killed, then
/// the coordinator started with `--rollback-to` (the workers keep their
/// state directories). The job goes back to the savepoint's state and
/// input position and runs to the end: every result is the single-process
/// one, those of windows fired since the savepoint are published again,
/// and a second start with the same flag does not roll back again.
#[test]
fn a_rollback_to_a_savepoint_processes_again_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1_500_000);
    let want = expected(dir.path(), &input, 1);
    let mut c = Cluster::new(dir.path(), &input, 3, 6);
    let mut procs = vec![c.coordinator()];
    for slot in 0..3 {
        procs.push(c.worker(slot));
    }
    c.wait_for_epoch_after(0, &mut procs);
    let sp = common::take_savepoint(c.port, dir.path());
    let saved = c.latest();
    c.wait_for_epoch_after(saved + 3, &mut procs);
    for p in &mut procs {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    let before = std::fs::read_to_string(&c.output).unwrap().lines().count();
    assert!(before > 0, "nothing was published before the rollback");
    c.extra = vec!["--rollback-to".into(), sp.display().to_string()];
    let out = run(&c, |_, _| {});
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("to the savepoint of epoch"), "{log}");
    let rows = seed::sorted_rows(&c.output);
    let mut unique = rows.clone();
    unique.dedup();
    assert_eq!(unique, want, "a result differs from the single-process run's");
    assert!(rows.len() > want.len(), "no result was published again: the state did not go back");
    // Started again with the same flag: the job has finished, nothing runs.
    let again = c.coordinator_command().output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already rolled back"));
    assert_eq!(seed::sorted_rows(&c.output), rows);
}

/// Bounded chaos: rounds that each wait for a new checkpoint, then kill a
/// random process (the coordinator or a worker, a worker sometimes with
/// its state directory) after a random pause and start it again with the
/// same command. The seed is printed for a rerun (`CHAOS_SEED`).
#[test]
fn chaos_random_kills_at_random_moments() {
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("chaos seed {seed} (rerun with CHAOS_SEED={seed})");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 2_000_000);
    let want = expected(dir.path(), &input, 1);
    let c = Cluster::new(dir.path(), &input, 3, 6);
    let chaos = |c: &Cluster, procs: &mut Vec<Child>| {
        for round in 0..4 {
            let before = c.latest();
            let start = Instant::now();
            while c.latest() <= before {
                if procs.iter_mut().any(|p| p.try_wait().unwrap().is_some()) {
                    return; // the job finished
                }
                assert!(start.elapsed() < LIMIT, "round {round}: no checkpoint in {LIMIT:?} (seed {seed})");
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(next() % 300));
            let victim = (next() % 4) as usize;
            if procs[victim].try_wait().unwrap().is_some() {
                return;
            }
            procs[victim].kill().unwrap();
            procs[victim].wait().unwrap();
            procs[victim] = if victim == 0 {
                c.coordinator()
            } else {
                let slot = victim as u16 - 1;
                if next() % 2 == 0 {
                    let _ = std::fs::remove_dir_all(c.state(slot));
                }
                c.worker(slot)
            };
        }
    };
    run_with(&c, chaos, false);
    assert_eq!(seed::sorted_rows(&c.output), want, "chaos seed {seed}");
}
