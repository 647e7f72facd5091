//! The HTTP endpoint of a running job (`--http ADDR`, cargo feature
//! `http`): Prometheus metrics at `/metrics`, the JSON API under
//! `/api/v1/` and the job's page at `/`, served by one thread from the
//! job's counters. It only reads them: nothing here changes the job.
//!
//! With a token, every request must carry `Authorization: Bearer TOKEN`
//! (the page, which holds no data itself, also takes `/?token=TOKEN` and
//! sends the header on its own requests); others get 401.

mod api;
mod page;
mod process;
mod prom;
mod view;

use crate::args::HttpConfig;
use rivulet::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// What a job is doing, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JobState {
    /// Running.
    Running = 0,
    /// Ran to its end (or stopped after a final checkpoint).
    Finished = 1,
    /// Failed.
    Failed = 2,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => JobState::Finished,
            2 => JobState::Failed,
            _ => JobState::Running,
        }
    }
}

/// What the endpoint shows about the job.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// The job's counters.
    pub metrics: Arc<Metrics>,
    /// Names of the columns of the rows the sink writes (CSV), for
    /// `/api/v1/results`.
    pub result_columns: Vec<&'static str>,
    /// Which process of the job this is.
    pub role: crate::role::Role,
}

/// Shared by the server thread and the job's side.
pub(crate) struct Shared {
    pub(crate) job: JobInfo,
    pub(crate) state: AtomicU8,
    pub(crate) started: Instant,
    pub(crate) started_wall: SystemTime,
    pub(crate) token: Option<String>,
}

impl Shared {
    pub(crate) fn state(&self) -> JobState {
        JobState::from_u8(self.state.load(Ordering::Relaxed))
    }
}

/// A running endpoint; dropping it stops the server thread.
pub struct Endpoint {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
    linger: Duration,
}

/// How often rates are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

impl Endpoint {
    /// Binds `cfg.addr` and starts serving `job` on a thread of its own;
    /// prints `http: serving on http://ADDR/` to stderr.
    ///
    /// # Errors
    /// [`rivulet::Error::Config`] naming `--http` when the address cannot
    /// be bound (in use, not this machine's).
    pub fn start(cfg: &HttpConfig, job: JobInfo) -> Result<Endpoint, rivulet::Error> {
        let server = tiny_http::Server::http(cfg.addr).map_err(|e| rivulet::Error::Config {
            field: "--http",
            reason: format!("cannot listen on {}: {e}", cfg.addr),
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(cfg.addr);
        job.metrics.results.enable();
        let shared = Arc::new(Shared {
            job,
            state: AtomicU8::new(JobState::Running as u8),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            token: cfg.token.clone(),
        });
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, server, stop) = (shared.clone(), server.clone(), stop.clone());
            std::thread::Builder::new().name("http".into()).spawn(move || serve(&shared, &server, &stop)).map_err(
                |e| rivulet::Error::Config { field: "--http", reason: format!("cannot start its thread: {e}") },
            )?
        };
        eprintln!("http: serving on http://{addr}/ (metrics at /metrics, API at /api/v1/job)");
        Ok(Endpoint { shared, server, stop, thread: Some(thread), addr, linger: cfg.linger })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Records how the job ended.
    pub fn finish(&self, state: JobState) {
        self.shared.state.store(state as u8, Ordering::Relaxed);
    }

    /// Serves the final figures for the `--http-linger` time, or until
    /// `interrupted` is set.
    pub fn linger(&self, interrupted: &AtomicBool) {
        let until = Instant::now() + self.linger;
        while Instant::now() < until && !interrupted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(shared: &Shared, server: &tiny_http::Server, stop: &AtomicBool) {
    let mut rates = api::Rates::default();
    rates.sample(&view::now(shared));
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    while !stop.load(Ordering::Relaxed) {
        let wait = next_sample.saturating_duration_since(Instant::now());
        match server.recv_timeout(wait) {
            Ok(Some(req)) => respond(shared, &rates, req),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "http: the listener failed; the endpoint stops");
                return;
            }
        }
        if Instant::now() >= next_sample {
            rates.sample(&view::now(shared));
            next_sample = Instant::now() + SAMPLE_EVERY;
        }
    }
}

/// One response: status, content type, body.
pub(crate) struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(v: &serde_json::Value) -> Reply {
        Reply { status: 200, content_type: "application/json", body: v.to_string().into_bytes() }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::json!({ "error": message }).to_string().into_bytes(),
        }
    }
}

fn respond(shared: &Shared, rates: &api::Rates, req: tiny_http::Request) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let reply = if *req.method() != tiny_http::Method::Get && *req.method() != tiny_http::Method::Head {
        Reply::error(405, "only GET is served: this endpoint changes nothing")
    } else if !authorized(shared, &req, path, query) {
        Reply::error(401, "a bearer token is required (Authorization: Bearer TOKEN)")
    } else {
        route(shared, rates, path)
    };
    let mut headers = vec![
        header("Content-Type", reply.content_type),
        header("Cache-Control", "no-store"),
        header("X-Content-Type-Options", "nosniff"),
    ];
    if reply.status == 401 {
        headers.push(header("WWW-Authenticate", "Bearer"));
    }
    let len = reply.body.len();
    let resp = tiny_http::Response::new(
        tiny_http::StatusCode(reply.status),
        headers.into_iter().flatten().collect(),
        std::io::Cursor::new(reply.body),
        Some(len),
        None,
    );
    // A client that went away is not the job's problem.
    let _ = req.respond(resp);
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn route(shared: &Shared, rates: &api::Rates, path: &str) -> Reply {
    match path {
        "/" | "/index.html" => page::index(),
        "/metrics" => match prom::render(shared) {
            Ok(text) => Reply { status: 200, content_type: prom::CONTENT_TYPE, body: text.into_bytes() },
            Err(_) => Reply::error(500, "encoding the metrics failed"),
        },
        "/api/v1/job" => Reply::json(&api::job(shared, rates)),
        "/api/v1/checkpoints" => Reply::json(&api::checkpoints(shared)),
        "/api/v1/results" => Reply { status: 200, content_type: "application/json", body: api::results(shared) },
        "/api/v1/nodes" => Reply::json(&api::nodes(shared)),
        _ => Reply::error(
            404,
            "not found: try /, /metrics, /api/v1/job, /api/v1/checkpoints, /api/v1/results, /api/v1/nodes",
        ),
    }
}

/// True when no token is set, or the request carries it (the page also
/// in its query).
fn authorized(shared: &Shared, req: &tiny_http::Request, path: &str, query: &str) -> bool {
    let Some(token) = &shared.token else { return true };
    let bearer = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
        .map(str::trim);
    if bearer.is_some_and(|b| same(b, token)) {
        return true;
    }
    let page = path == "/" || path == "/index.html";
    page && query.split('&').filter_map(|kv| kv.strip_prefix("token=")).any(|q| same(&percent_decode(q), token))
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert_eq!(percent_decode("a%2Bb+c"), "a+b c");
    }
}
