//! `rivulet health`: a container's healthcheck. A coordinator or worker is
//! alive while its control loop keeps its liveness file fresh; a broker
//! while it accepts an MQTT connection.

use crate::cli::HealthArgs;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

pub(crate) fn run(a: &HealthArgs) -> anyhow::Result<ExitCode> {
    let verdict = match (&a.file, &a.mqtt) {
        (Some(path), _) => rivulet::cluster::liveness_age(path).and_then(|age| {
            if age <= a.max_age {
                Ok(format!("alive: {} written {} ms ago", path.display(), age.as_millis()))
            } else {
                Err(format!(
                    "{} was last written {} s ago (more than --max-age {} s): the process's control loop is stuck",
                    path.display(),
                    age.as_secs(),
                    a.max_age.as_secs()
                ))
            }
        }),
        (None, Some(addr)) => {
            mqtt_connects(addr, a.timeout).map(|()| format!("alive: the broker at {addr} accepts connections"))
        }
        (None, None) => unreachable!("clap requires --file or --mqtt"),
    };
    Ok(match verdict {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            // Docker keeps the output of the last checks (`docker inspect`).
            println!("unhealthy: {why}");
            ExitCode::FAILURE
        }
    })
}

/// Connects to the broker at `addr` as a clean MQTT 3.1.1 session and
/// waits for its CONNACK, then disconnects.
fn mqtt_connects(addr: &str, timeout: Duration) -> Result<(), String> {
    let at = addr.to_socket_addrs().map_err(|e| format!("{addr}: {e}"))?.next();
    let at = at.ok_or_else(|| format!("{addr}: resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&at, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))).map_err(|e| e.to_string())?;
    let id = format!("rivulet-health-{}", std::process::id());
    s.write_all(&connect_packet(&id)).map_err(|e| format!("{addr}: sending CONNECT: {e}"))?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).map_err(|e| format!("{addr}: no CONNACK within {} ms: {e}", timeout.as_millis()))?;
    match ack {
        [0x20, 2, _, 0] => {
            // DISCONNECT: a clean goodbye, so the broker logs no lost client.
            let _ = s.write_all(&[0xE0, 0]);
            Ok(())
        }
        [0x20, 2, _, code] => Err(format!("{addr}: the broker refused the connection (CONNACK return code {code})")),
        other => Err(format!("{addr}: answered {other:02x?}, not an MQTT CONNACK")),
    }
}

/// An MQTT 3.1.1 CONNECT: clean session, keep-alive 10 s, client id `id`.
fn connect_packet(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10];
    body.extend_from_slice(&u16::try_from(id.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    // The id is short: its remaining length fits one byte.
    let mut p = vec![0x10, u8::try_from(body.len()).unwrap_or(127)];
    p.extend(body);
    p
}
