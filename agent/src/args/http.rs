//! `--http ADDR`, `--http-token FILE` and `--http-linger D`: where a job
//! serves its metrics, JSON API and page, and who may read them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The environment variable that holds the bearer token when no
/// `--http-token` file is given.
pub const TOKEN_ENV: &str = "RIVULET_HTTP_TOKEN";

/// Where and how the HTTP endpoint listens, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// The bearer token every request must carry, if any.
    pub token: Option<String>,
    /// How long the endpoint keeps serving the final figures after the
    /// job ended.
    pub linger: Duration,
}

/// Parses `--http`: `HOST:PORT`, `[V6]:PORT`, or a bare `PORT` (on
/// 127.0.0.1). Port 0 picks a free port (printed at start).
///
/// # Errors
/// A message saying what is expected.
pub fn http_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| format!("`{t}`: the port is not a number from 0 to 65535"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse::<SocketAddr>()
        .map_err(|_| format!("`{t}` is not an address: give IP:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464) or a port"))
}

/// Parses `--url`: `http://HOST:PORT/` (a path after the port is
/// ignored; `https` is not served), resolved to an address.
///
/// # Errors
/// A message saying what is expected.
pub fn http_url(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let rest = t.strip_prefix("http://").ok_or_else(|| {
        format!("`{t}` is not an http:// URL: give http://HOST:PORT/ (the endpoint serves plain HTTP)")
    })?;
    let hostport = rest.split('/').next().unwrap_or("");
    if hostport.is_empty() {
        return Err(format!("`{t}` names no host: give http://HOST:PORT/"));
    }
    let hostport = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&hostport)
        .map_err(|e| format!("`{t}`: cannot resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("`{t}`: {hostport} resolves to no address"))
}

/// Reads the token from `file` (its first line), or from [`TOKEN_ENV`]
/// when no file is given, and decides whether `addr` may be served.
///
/// # Errors
/// [`rivulet::Error::Config`] naming `--http-token`: the file cannot be
/// read or holds no token, or `addr` is not a loopback address and there
/// is no token.
pub fn resolve(addr: SocketAddr, file: Option<&Path>, linger: Duration) -> Result<HttpConfig, rivulet::Error> {
    let bad = |reason: String| rivulet::Error::Config { field: "--http-token", reason };
    let token = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| bad(format!("cannot read `{}`: {e}", f.display())))?;
            let t = text.lines().next().unwrap_or("").trim().to_string();
            if t.is_empty() {
                return Err(bad(format!("`{}` holds no token (its first line is empty)", f.display())));
            }
            Some(t)
        }
        None => std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
    };
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(bad(format!(
            "required when --http is not a loopback address ({addr}): give a file holding the token, or set {TOKEN_ENV}"
        )));
    }
    Ok(HttpConfig { addr, token, linger })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(http_addr("9464"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(http_addr("localhost:80"), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(http_addr("0.0.0.0:9464"), Ok("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(http_addr("[::1]:1"), Ok("[::1]:1".parse().unwrap()));
        assert!(http_addr("host").is_err());
        assert!(http_addr("70000").is_err());
        assert_eq!(http_url("http://127.0.0.1:9464/"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(http_url("http://127.0.0.1:1/api"), Ok("127.0.0.1:1".parse().unwrap()));
        assert!(http_url("https://127.0.0.1:1/").is_err());
        assert!(http_url("127.0.0.1:1").is_err());
    }

    #[test]
    fn a_public_address_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let public: SocketAddr = "0.0.0.0:1".parse().unwrap();
        // The environment variable is not set in the test process.
        if std::env::var(TOKEN_ENV).is_err() {
            let e = resolve(public, None, Duration::ZERO).unwrap_err();
            assert!(e.to_string().contains("--http-token"), "{e}");
        }
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        let c = resolve(public, Some(&f), Duration::ZERO).unwrap();
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        std::fs::write(&f, "\n").unwrap();
        assert!(resolve(public, Some(&f), Duration::ZERO).is_err());
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(resolve(local, None, Duration::ZERO).is_ok());
    }
}
