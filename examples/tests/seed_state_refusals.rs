//! State directories that must not be resumed are refused with exit 3 and a
//! sentence saying why, and `--list-checkpoints` never changes a byte:
//! another job's inputs or settings, damaged committed data (journal
//! truncated or deleted, a keyspace removed), a file, a directory another
//! process uses. A SIGTERM stop is told apart from a finished job.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

fn job(input: &Path, output: &Path, state: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--input").arg(input).arg("--output").arg(output).arg("--state-dir").arg(state);
    c.args(["--checkpoint-interval", "20ms"]).args(extra);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn refused(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(3), "exit 3 expected: {}", stderr(o));
    assert!(stderr(o).contains(what), "`{what}` expected in: {}", stderr(o));
}

/// The last committed epoch in `RIVULET.epoch` (read only).
fn committed(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state.join("RIVULET.epoch")).unwrap_or_default();
    text.split_whitespace().nth(1).and_then(|e| e.parse().ok()).unwrap_or(0)
}

/// Starts the job and waits until it committed an epoch past `after`.
fn run_past(c: &mut Command, state: &Path, after: u64) -> Child {
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    while committed(state) <= after {
        assert!(child.try_wait().unwrap().is_none(), "the job ended before its checkpoint {}", after + 1);
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn list(state: &Path) -> Output {
    Command::new(BIN).arg("--list-checkpoints").arg("--state-dir").arg(state).output().unwrap()
}

fn copy(from: &Path, to: &Path) {
    assert!(Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success());
}

/// A killed run's state directory (committed epoch >= 1) and its output.
fn killed_run(dir: &Path, input: &Path) -> (PathBuf, PathBuf) {
    let (out, state) = (dir.join("out.csv"), dir.join("state"));
    let mut child = run_past(&mut job(input, &out, &state, &[]), &state, 1);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    (out, state)
}

fn input(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("in.csv");
    seed::write_csv(&p, &seed::synthetic(n, 200, 3, 9_000, 997));
    p
}

/// Regression (issue 12 §3): a killed run's state resumed with another
/// --window or another --input exited 0 with mixed rows.
#[test]
fn another_window_or_input_is_refused_naming_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600_000);
    let (out, state) = killed_run(dir.path(), &input);
    let other = dir.path().join("other.csv");
    seed::write_csv(&other, &seed::synthetic(1_000, 20, 99, 0, 1_000));
    refused(&job(&input, &out, &state, &["--window", "10s"]).output().unwrap(), "`--window` was 5s, now 10s");
    refused(
        &job(&input, &out, &state, &["--max-out-of-orderness", "3s"]).output().unwrap(),
        "`--max-out-of-orderness`",
    );
    refused(&job(&other, &out, &state, &[]).output().unwrap(), "`--input` was");
    // The same path rewritten with other data.
    let saved = std::fs::read(&input).unwrap();
    std::fs::copy(&other, &input).unwrap();
    refused(&job(&input, &out, &state, &[]).output().unwrap(), "`--input first line` was");
    std::fs::write(&input, saved).unwrap();
    // Legal changes: parallelism and checkpoint retention; the same file.
    let o = job(&input, &out, &state, &["--parallelism", "2", "--retain-checkpoints", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumed from epoch"), "{}", stderr(&o));
}

/// Regression (issue 12 §4): a truncated or deleted journal or a deleted
/// keyspace resumed with duplicated rows or restarted from scratch, and
/// --list-checkpoints on such a directory deleted keyspaces. Each is now
/// refused by a start and by a listing, and a listing changes no byte.
#[test]
fn damaged_state_is_refused_and_listing_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600_000);
    let (out, state) = killed_run(dir.path(), &input);
    let journal = std::fs::read_dir(state.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".jnl"))
        .expect("a journal in db/");
    type Damage = fn(&Path, &str);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "truncated-journal",
            |s, j| std::fs::File::options().write(true).open(s.join("db").join(j)).unwrap().set_len(100).unwrap(),
            "committed data is missing",
        ),
        ("deleted-journal", |s, j| std::fs::remove_file(s.join("db").join(j)).unwrap(), "committed data is missing"),
        ("deleted-keyspace", |s, _| std::fs::remove_dir_all(s.join("db/keyspaces/3")).unwrap(), "lacks the keyspace"),
        (
            "deleted-epoch-file",
            |s, _| std::fs::remove_file(s.join("RIVULET.epoch")).unwrap(),
            "RIVULET.epoch is missing",
        ),
    ];
    for (name, damage, why) in cases {
        let d = dir.path().join(name);
        copy(&state, &d);
        damage(&d, &journal);
        let before = snapshot(&d);
        refused(&list(&d), why);
        assert_eq!(snapshot(&d), before, "{name}: the listing changed the directory");
        let o = dir.path().join(format!("{name}.csv"));
        std::fs::copy(&out, &o).unwrap();
        refused(&job(&input, &o, &d, &[]).output().unwrap(), why);
        // The refusal persists: committed data is never silently reset.
        refused(&job(&input, &o, &d, &[]).output().unwrap(), why);
    }
    // An intact directory is listed without a byte changing, then resumes.
    let before = snapshot(&state);
    let l = list(&state);
    assert!(l.status.success(), "{}", stderr(&l));
    assert!(String::from_utf8_lossy(&l.stdout).contains("(last complete)"));
    assert_eq!(snapshot(&state), before, "the listing changed an intact directory");
    let o = job(&input, &out, &state, &[]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Regression (issue 12 §11): a state dir that is a file, or one another
/// process is using, failed with exit 1 and raw fjall errors.
#[test]
fn a_file_or_a_busy_directory_is_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600_000);
    let file = dir.path().join("state-file");
    std::fs::write(&file, "mine").unwrap();
    let out = dir.path().join("out.csv");
    refused(&job(&input, &out, &file, &[]).output().unwrap(), "it is a file, not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");

    // Two processes creating the same directory at once: one is refused.
    let fresh = dir.path().join("fresh");
    let mut both = [
        job(&input, &dir.path().join("a.csv"), &fresh, &[]).spawn().unwrap(),
        job(&input, &dir.path().join("b.csv"), &fresh, &[]).spawn().unwrap(),
    ];
    let start = Instant::now();
    let ended = loop {
        if let Some(i) = (0..2).find(|&i| both[i].try_wait().unwrap().is_some()) {
            break i;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "neither process ended");
        std::thread::sleep(Duration::from_millis(5));
    };
    let [a, b] = both;
    let (loser, mut winner) = if ended == 0 { (a, b) } else { (b, a) };
    refused(&loser.wait_with_output().unwrap(), "another process is using it");
    assert!(winner.try_wait().unwrap().is_none(), "the other one runs on");
    winner.kill().unwrap();
    winner.wait().unwrap();

    let state = dir.path().join("state");
    let mut first = run_past(&mut job(&input, &out, &state, &[]), &state, 0);
    let second = job(&input, &dir.path().join("out2.csv"), &state, &[]).output().unwrap();
    refused(&second, "another process is using it");
    refused(&list(&state), "a running job holds it");
    first.kill().unwrap();
    first.wait().unwrap();
}

/// Regression (issue 12 §11): a SIGTERM stop exited 0 like a finished job.
/// It exits 143 with a message, also when the signal arrives before the
/// job runs; the next run goes on to exactly the uninterrupted output.
#[test]
fn sigterm_is_told_apart_from_a_finished_job() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600_000);
    let expected_out = dir.path().join("expected.csv");
    let e = Command::new(BIN).arg("--input").arg(&input).arg("--output").arg(&expected_out).output().unwrap();
    assert!(e.status.success(), "{}", stderr(&e));
    let (out, state) = (dir.path().join("out.csv"), dir.path().join("state"));
    for early in [true, false] {
        let child = if early {
            let c = job(&input, &out, &state, &[]).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            c
        } else {
            let c = committed(&state);
            run_past(&mut job(&input, &out, &state, &[]), &state, c)
        };
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let o = child.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        // A signal before the handlers exist ends the process by SIGTERM.
        let by_signal = o.status.signal() == Some(15);
        assert!(by_signal || o.status.code() == Some(143), "early={early}: {:?} {}", o.status, stderr(&o));
        if !by_signal {
            assert!(stderr(&o).contains("stopped by SIGTERM"), "{}", stderr(&o));
        }
    }
    let o = job(&input, &out, &state, &[]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("stopped by"), "{}", stderr(&o));
    assert_eq!(seed::sorted_rows(&out), seed::sorted_rows(&expected_out));
}

/// Regression (issue 12 §3) for MQTT input: a state directory (whose ingest
/// log and positions belong to one broker session) resumed with another
/// topic or client id is refused before anything connects. No broker is
/// needed: the identity is checked when the state directory is opened.
#[test]
fn another_topic_or_client_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out.csv");
    let mqtt = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["--mqtt", "mqtt://127.0.0.1:1", "--stop-after-idle", "1s"]).args(extra);
        c.arg("--output").arg(&out).arg("--state-dir").arg(&state);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    // Nothing listens on port 1: the first run keeps trying to connect,
    // with its state directory created; it is killed once that exists.
    let mut first = mqtt(&[]).spawn().unwrap();
    let start = Instant::now();
    while !state.join("RIVULET").is_file() {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before creating its state");
        assert!(start.elapsed() < Duration::from_secs(60), "no state directory after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let mqtt = |extra: &[&str]| mqtt(extra).output().unwrap();
    refused(&mqtt(&["--topic", "other/{sensor_id}"]), "`--topic` was sensors/{sensor_id}/temp, now other/{sensor_id}");
    refused(&mqtt(&["--client-id", "someone-else"]), "`--client-id` was rivulet-sensor-average, now someone-else");
    refused(&mqtt(&["--share-group", "g"]), "`--share-group` was none, now g");
}
