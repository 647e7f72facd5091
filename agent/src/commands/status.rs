//! `rivulet status`: reads a running job's `/api/v1/job` over HTTP and
//! prints it. No job answering is exit 4 ([`rivulet_agent::exit::NO_JOB`]).
//! With `-f MANIFEST` (feature `deploy`), first the Swarm's view of the
//! deployed job; a service without a running task is exit 5
//! ([`rivulet_agent::exit::DEGRADED`]).

use crate::cli::StatusArgs;
use anyhow::Context;
use rivulet_agent::exit::NoJob;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn run(a: &StatusArgs) -> anyhow::Result<std::process::ExitCode> {
    match &a.file {
        Some(f) => swarm(a, f),
        None => coordinator(a, a.url.unwrap_or(a.http)).map(|()| std::process::ExitCode::SUCCESS),
    }
}

#[cfg(feature = "deploy")]
fn swarm(a: &StatusArgs, file: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    let m = rivulet_agent::deploy::Manifest::load(file)?;
    let view = rivulet_agent::deploy::status::view(&m.job.name, m.ports.http)?;
    println!("job {} on the swarm:", m.job.name);
    for s in &view.services {
        let now = match &s.current {
            Some((node, state, err)) => {
                format!("{state} on {node}{}", err.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())
            }
            None => "no task".into(),
        };
        let last = s.last_end.as_ref().map(|(st, why)| format!("; last replaced task: {st} {why}")).unwrap_or_default();
        println!("  {:<28} {now}, {} restarts{last}  [{}]", s.name, s.restarts, s.image);
    }
    let healthy = view.healthy();
    if !healthy {
        println!("not every service has a task running");
    }
    if let Some(addr) = a.url.or(view.coordinator_http) {
        println!("the coordinator at http://{addr}/:");
        if let Err(e) = coordinator(a, addr) {
            println!("  unreachable: {}", rivulet_agent::exit::message(&e));
        }
    }
    Ok(if healthy {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(rivulet_agent::exit::DEGRADED)
    })
}

#[cfg(not(feature = "deploy"))]
fn swarm(_: &StatusArgs, file: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    rivulet_agent::deploy::Manifest::load(file)?;
    Err(rivulet_agent::deploy::no_client())
}

fn coordinator(a: &StatusArgs, addr: SocketAddr) -> anyhow::Result<()> {
    let token = match &a.http_token {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| rivulet::Error::Config {
                field: "--http-token",
                reason: format!("cannot read `{}`: {e}", f.display()),
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        None => std::env::var(rivulet_agent::args::TOKEN_ENV).ok(),
    };
    let body = get(addr, "/api/v1/job", token.as_deref())?;
    if a.json {
        println!("{body}");
        return Ok(());
    }
    let job: Value = serde_json::from_str(&body).context("the endpoint's answer is not JSON")?;
    print!("{}", render(&job));
    Ok(())
}

/// GET `path` from `addr`: the body of a 200 answer.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let no_job = |reason: String| NoJob { addr: addr.to_string(), reason };
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| no_job(e.to_string()))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
        .map_err(|e| no_job(e.to_string()))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| no_job(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| no_job("not an HTTP answer".into()))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    match status {
        "200" => Ok(body.to_string()),
        "401" => Err(rivulet::Error::Config {
            field: "--http-token",
            reason: format!(
                "the endpoint at {addr} wants a bearer token (give --http-token FILE or set RIVULET_HTTP_TOKEN)"
            ),
        }
        .into()),
        "404" => Err(no_job("something answers there, but it is not a Rivulet job (404)".into()).into()),
        other => anyhow::bail!("the endpoint at {addr} answered {other}: {body}"),
    }
}

fn f64_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn rate(v: &Value) -> String {
    f64_of(v).map_or("–".into(), |r| format!("{r:.0}/s"))
}

fn render(job: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let n = |v: &Value| v.as_u64().map_or("–".to_string(), |n| n.to_string());
    let secs = |v: &Value| f64_of(v).map_or("–".to_string(), |x| format!("{x:.1} s"));
    out.push_str(&format!("job {}: {}, up {}\n", s(&job["name"]), s(&job["state"]), secs(&job["uptime_seconds"])));
    let e = &job["events"];
    out.push_str(&format!(
        "events: {} in ({}), {} out ({}), {} late, {} malformed\n",
        n(&e["in"]),
        rate(&job["rates"]["in_per_second"]),
        n(&e["out"]),
        rate(&job["rates"]["out_per_second"]),
        n(&e["late"]),
        n(&e["malformed"])
    ));
    out.push_str(&format!(
        "watermark: {} (lag {})\n",
        job["watermark_ms"].as_i64().map_or("none yet".to_string(), |w| format!("{w} ms")),
        secs(&job["watermark_lag_seconds"])
    ));
    if let Some(cl) = job.get("cluster").filter(|c| c.is_object()) {
        out.push_str(&format!(
            "workers: {} of {} alive, generation {}\n",
            n(&cl["workers_alive"]),
            n(&cl["slots"]),
            n(&cl["generation"])
        ));
    }
    let c = &job["checkpoints"];
    let last = match c["last_complete_ms"].as_i64() {
        Some(ms) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            format!("last complete {:.1} s ago", (now - ms).max(0) as f64 / 1e3)
        }
        None => "none complete yet".to_string(),
    };
    out.push_str(&format!("checkpoints: {} complete, {} failed, {last}\n", n(&c["completed"]), n(&c["failed"])));
    out.push_str("operators:\n");
    for o in job["operators"].as_array().into_iter().flatten() {
        let slot = o["slot"].as_u64().map_or(String::new(), |s| format!(" slot {s}"));
        out.push_str(&format!(
            "  {:<12} subtask {:<3}{slot} in {:>12} ({:>10})  out {:>12} ({:>10})\n",
            s(&o["operator"]),
            n(&o["subtask"]),
            n(&o["records_in"]),
            rate(&o["in_per_second"]),
            n(&o["records_out"]),
            rate(&o["out_per_second"])
        ));
    }
    out
}
