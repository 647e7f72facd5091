//! Synthetic readings written as CSV, for `rivulet generate` and the CSV
//! modes of `rivulet bench`.

use crate::seed::synthetic_reading;
use std::io::Write;

/// Writes `lines` synthetic readings from `sensors` sensors as
/// `sensor_id,ts_ms,temp_f` lines.
///
/// # Errors
/// Writing to `out` failed.
pub fn write_csv(out: impl Write, lines: u64, sensors: u32) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for i in 0..lines {
        let r = synthetic_reading(i, sensors);
        writeln!(w, "{},{},{}", r.sensor_id, r.ts_ms, r.temp)?;
    }
    w.flush()
}
