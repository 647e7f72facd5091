//! The job's page in a real browser: headless Chromium (Debian's
//! `chromium`) loads it from a running `rivulet run --generated`, and the
//! rendered DOM shows the job graph's operators, a results chart with
//! points and the latest window's table, and values that change between
//! two loads. A phone-sized screenshot is kept in the target directory.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod support;

use std::process::Command;
use support::http::{chromium, dump_dom, phone_screenshot, Job};

/// The text of the element with id `id`.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the DOM"));
    let rest = &dom[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    rest[open..open + close].to_string()
}

#[test]
fn the_page_renders_the_job_and_its_results() {
    chromium();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rivulet"));
    cmd.args(["run", "--generated", "--events", "100000000000", "--sensors", "12", "--http", "127.0.0.1:0"])
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--checkpoint-interval", "200ms"]);
    let job = Job::start(cmd);
    let url = format!("http://{}/", job.addr);

    let first = dump_dom(&url, &dir.path().join("profile"));
    assert!(first.contains("data-operator=\"source-1\""), "no source in the graph:\n{first}");
    assert!(first.contains("data-operator=\"window-"), "no window operator in the graph:\n{first}");
    assert!(first.contains("data-operator=\"sink-"), "no sink in the graph:\n{first}");
    let chart_start = first.find("id=\"results-chart\"").unwrap();
    let chart = &first[chart_start..first[chart_start..].find("</div>").map_or(first.len(), |e| chart_start + e)];
    assert!(chart.contains("<polyline"), "the results chart has no lines:\n{chart}");
    assert!(chart.matches("class=\"pt\"").count() >= 1, "the results chart has no points:\n{chart}");
    assert!(first.contains("<td>s000"), "no rows in the latest window's table:\n{first}");
    assert_eq!(text_of(&first, "job-state"), "running");

    let second = dump_dom(&url, &dir.path().join("profile"));
    let (a, b) = (text_of(&first, "events-in"), text_of(&second, "events-in"));
    assert_ne!(a, b, "the events counter did not change between two loads");

    // A phone-sized screenshot, kept as the test's artifact.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rivulet-page.png");
    phone_screenshot(&url, &dir.path().join("profile"), &shot);
}
