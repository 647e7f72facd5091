//! `rivulet simulate`: simulated sensor readings published to a broker.

use crate::cli::SimulateArgs;
use rivulet_agent::seed::publish::{simulate, Simulation};

pub(crate) fn run(a: &SimulateArgs) -> anyhow::Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let sim = Simulation {
        url: a.mqtt.clone(),
        v311: a.mqtt_v311,
        sensors: a.sensors,
        rate: a.rate,
        count: a.count,
        late_fraction: a.late_fraction,
        malformed_fraction: a.malformed_fraction,
        batch: a.batch,
    };
    let n = simulate(&sim, &stop)?;
    eprintln!("rivulet simulate: published {n} readings to {} (acknowledged by the broker)", a.mqtt);
    Ok(())
}
