//! Reaching a peer by name: the name resolved at every attempt, every
//! address it resolves to tried in turn, the lookup and each connect
//! bounded in time.
//!
//! In a Swarm a restarted task comes back with another address behind the
//! same name (`endpoint_mode: dnsrr`), and a name can resolve to several.
//! A name resolved once, or only its first address, never finds the new
//! task; a connect with no timeout to an address nobody holds any more
//! waits out the kernel's SYN retries (minutes), and a lookup the DNS
//! server does not answer waits out the resolver's retries. Bounded
//! attempts and a short pause between them reconnect within seconds.

use super::error::NetError;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The addresses `target` (`HOST:PORT`) resolves to now, waiting at most
/// `timeout` for the system's resolver.
///
/// The lookup runs in a thread of its own, because `getaddrinfo` has no
/// timeout; a lookup that takes longer is abandoned (its thread ends when
/// the resolver gives up) and the caller tries again later.
///
/// # Errors
/// [`NetError::Io`] naming `target`: the name does not resolve
/// (`NotFound` when it resolves to no address), or the lookup took longer
/// than `timeout` (`TimedOut`).
pub fn resolve(target: &str, timeout: Duration) -> Result<Vec<SocketAddr>, NetError> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = target.to_owned();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        })
        .map_err(|e| NetError::io(target, &e))?;
    let addrs = match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e| NetError::io(target, &e))?,
        Err(_) => return Err(io_error(target, ErrorKind::TimedOut, format!("name lookup took over {timeout:?}"))),
    };
    if addrs.is_empty() {
        return Err(io_error(target, ErrorKind::NotFound, "the name resolves to no address".into()));
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that accepts within `timeout`, trying
/// them in order.
///
/// # Errors
/// [`NetError::Io`] of the last address tried when none accepted (an
/// address that does not answer fails with `TimedOut` after `timeout`).
pub fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), NetError> {
    let mut last = io_error("no address", ErrorKind::NotFound, "nothing to connect to".into());
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok((s, *addr)),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last = NetError::io(&addr.to_string(), &e);
            }
        }
    }
    Err(last)
}

fn io_error(peer: &str, kind: ErrorKind, message: String) -> NetError {
    NetError::Io { peer: peer.to_owned(), kind, message }
}
