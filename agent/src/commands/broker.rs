//! `rivulet broker`: the embedded MQTT broker as a process of its own (the
//! `embedded` broker service of a deployment).

use crate::cli::BrokerArgs;

pub(crate) fn run(a: &BrokerArgs) -> anyhow::Result<()> {
    broker(a)
}

#[cfg(feature = "embedded-broker")]
fn broker(a: &BrokerArgs) -> anyhow::Result<()> {
    let url = rivulet_agent::seed::broker::start_on(a.listen)?;
    eprintln!("rivulet: MQTT broker (3.1.1, in memory) at {url}");
    loop {
        std::thread::park();
    }
}

#[cfg(not(feature = "embedded-broker"))]
fn broker(_: &BrokerArgs) -> anyhow::Result<()> {
    Err(rivulet::Error::Config {
        field: "broker",
        reason: "this build has no broker (built without the cargo feature `embedded-broker`)".into(),
    }
    .into())
}
