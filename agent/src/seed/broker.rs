//! The embedded broker: rumqttd on a thread on 127.0.0.1, so one command
//! shows the whole path without installing Mosquitto. It speaks MQTT 3.1.1
//! (rumqttd's MQTT 5 support is partial), keeps everything in memory with
//! segments sized for a small device, and is not meant for production:
//! use Mosquitto there. After a reconnect rumqttd resends unacknowledged
//! messages under new packet ids with DUP clear, so the source cannot tell
//! such a resend from a new message (Mosquitto keeps the original ids).

use anyhow::Context;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// Starts a broker on `127.0.0.1:port` (0: a free port) and returns its URL
/// once it accepts connections. It lives until the process exits.
///
/// # Errors
/// No free port, or the broker did not come up.
pub fn start_embedded(port: u16) -> anyhow::Result<String> {
    let port = if port == 0 { free_port()? } else { port };
    start_on(([127, 0, 0, 1], port).into())
}

/// Starts a broker listening on `listen` (`rivulet broker`) and returns its
/// URL once it accepts connections. It lives until the process exits.
///
/// # Errors
/// The broker did not come up (e.g. the address is taken).
pub fn start_on(listen: SocketAddr) -> anyhow::Result<String> {
    let probe: SocketAddr = if listen.ip().is_unspecified() { ([127, 0, 0, 1], listen.port()).into() } else { listen };
    // Taken addresses are refused here: rumqttd would only log it on its thread.
    drop(TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?);
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "embedded".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 1000,
            // rumqttd's defaults reserve ~1 GB of segments; 8 x 4 MiB here.
            max_segment_size: 4 << 20,
            max_segment_count: 8,
            ..Default::default()
        },
        v4: Some(HashMap::from([("embedded".to_string(), server)])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .context("starting the embedded broker thread")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(probe).is_err() {
        if Instant::now() > deadline {
            anyhow::bail!("the embedded broker did not start on {listen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(format!("mqtt://{listen}"))
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}
