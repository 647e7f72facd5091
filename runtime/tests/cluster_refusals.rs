//! Workers that do not belong to a coordinator's job are refused before
//! they get any work: a worker of another job, and a worker whose binary
//! builds another graph for the same job's arguments (a different build
//! of the job). Roles run on threads over real TCP on 127.0.0.1 with a
//! real `file://` checkpoint store; nothing is committed or written until
//! a worker of the right job joins, and then the job runs as usual.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::aggregate::Count;
use rivulet::cluster::{run_coordinator, run_worker, CoordinatorOptions, EnvMaker, WorkerOptions};
use rivulet::source::Generator;
use rivulet::window::Tumbling;
use rivulet::{Env, Error, JobConfig, Sink, Watermarks, Windowed};
use std::path::Path;
use std::time::Duration;

type Ev = (u32, i64);

const JOB: &str = "counts";

/// The job: 20,000 events over 100 keys, counted per 1 s window. `other`
/// builds it with three keyed subtasks instead of two, as another build of
/// the job might.
fn build(args: &[String], maker: EnvMaker<'_>, other: bool) -> Result<Env, String> {
    let mut cfg = JobConfig::new(JOB);
    cfg.parallelism = if other { 3 } else { 2 };
    let env = maker.make(cfg).map_err(|e| e.to_string())?;
    let out = Path::new(&args[0]);
    let sink = Sink::file(out, |w: &Windowed<u32, u64>, b: &mut Vec<u8>| {
        b.extend_from_slice(format!("{},{},{}\n", w.key, w.window.end, w.value).as_bytes())
    });
    let wm = Watermarks::bounded_out_of_orderness(Duration::from_secs(1), |e: &Ev| e.1);
    env.source(Generator::new(Some(20_000), |i| ((i % 100) as u32, i as i64)), wm)
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(1)).unwrap())
        .aggregate(Count)
        .sink(sink);
    Ok(env)
}

fn same_job(args: &[String], maker: EnvMaker<'_>) -> Result<Env, String> {
    build(args, maker, false)
}

fn other_graph(args: &[String], maker: EnvMaker<'_>) -> Result<Env, String> {
    build(args, maker, true)
}

fn worker_options(job: &str, port: u16, slot: u16, state: &Path) -> WorkerOptions {
    WorkerOptions {
        job: job.into(),
        coordinator: format!("127.0.0.1:{port}"),
        slot,
        state_dir: state.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        token: None,
        metrics: std::sync::Arc::new(rivulet::metrics::Metrics::default()),
        http: None,
        liveness: std::sync::Arc::default(),
    }
}

#[test]
fn workers_of_another_job_or_graph_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, out) = (dir.path().join("store"), dir.path().join("out.csv"));
    std::fs::create_dir_all(&store).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = CoordinatorOptions {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        workers: 1,
        store_url: format!("file://{}", store.display()),
        worker_timeout: Duration::from_secs(2),
        token: None,
        job_args: vec![out.display().to_string()],
        from_savepoint: None,
        rollback_to: None,
        pin_savepoints: std::time::Duration::from_secs(86_400),
        view: rivulet::cluster::ClusterView::new(),
        liveness: std::sync::Arc::new(rivulet::cluster::Liveness::at(Some(dir.path().join("alive")))),
    };
    let coordinator = std::thread::spawn(move || run_coordinator(&opts, &same_job));

    // Another job's worker is refused at the handshake.
    let other = worker_options("another-job", port, 0, &dir.path().join("w-other"));
    let err = run_worker(&other, &same_job).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ClusterRefused(_)), "{text}");
    assert!(text.contains("another-job") || text.contains(JOB), "the refusal names the jobs: {text}");

    // The same job built into another graph is refused once it sees the
    // coordinator's graph, before it runs anything.
    let mismatched = worker_options(JOB, port, 0, &dir.path().join("w-graph"));
    let err = run_worker(&mismatched, &other_graph).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ClusterRefused(_)), "{text}");
    assert!(text.contains("another job graph"), "{text}");

    let written = std::fs::metadata(&out).map_or(0, |m| m.len());
    assert_eq!(written, 0, "nothing is written before a worker of the job joins");
    assert!(!store.join(JOB).join("latest").exists(), "nothing is committed before a worker of the job joins");

    // The coordinator waiting for its workers keeps its liveness file.
    let age = rivulet::cluster::liveness_age(&dir.path().join("alive")).unwrap();
    assert!(age < Duration::from_secs(10), "the coordinator's liveness file is {age:?} old");

    // The right worker runs the job to its end, keeping its own.
    let mut good = worker_options(JOB, port, 0, &dir.path().join("w-good"));
    let worker_alive = dir.path().join("worker-alive");
    good.liveness = std::sync::Arc::new(rivulet::cluster::Liveness::at(Some(worker_alive.clone())));
    run_worker(&good, &same_job).unwrap();
    let age = rivulet::cluster::liveness_age(&worker_alive).unwrap();
    assert!(age < Duration::from_secs(10), "the worker's liveness file is {age:?} old");
    let outcome = coordinator.join().unwrap().unwrap();
    assert!(!outcome.already_finished);
    let text = std::fs::read_to_string(&out).unwrap();
    let counted: u64 = text.lines().map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(counted, 20_000, "every event counted once");
}
