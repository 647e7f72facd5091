//! The seed job, `sensor-average`, as a library: the `sensor-average`
//! binary, `rivulet run`, `rivulet bench` and the tests run the very same
//! job. `publish` is the sensor simulator and test publisher; `broker` the
//! embedded broker behind `rivulet run` without `--mqtt`.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod publish;
pub mod sensor;

pub use sensor::{run_sensor_average, synthetic_reading, Reading, SensorAverage, SensorId};
