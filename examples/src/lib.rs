//! Runnable Rivulet jobs. The seed job, `sensor-average`, lives here as a
//! library function so the `sensor-average` binary, `rivulet bench` and the
//! tests run the very same job.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod publish;
pub mod sensor;

pub use sensor::{run_sensor_average, synthetic_reading, Reading, SensorAverage, SensorId};
