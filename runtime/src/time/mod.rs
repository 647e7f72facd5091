//! Event time: timestamps, watermarks, durations.
//!
//! Watermarks follow Flink's bounded-out-of-orderness rule exactly:
//! `watermark = max_ts_seen - delay - 1`, starting at `i64::MIN`.

pub(crate) mod watermark;

pub use watermark::{BoundedOutOfOrderness, Watermarks};

use crate::error::{Error, Result};
use std::time::Duration;

/// The watermark that closes every window: end of a bounded stream.
pub const MAX_WATERMARK: i64 = i64::MAX;

/// In-band marker (sent as a watermark) that an input went idle: operators
/// leave it out of their minimum watermark until it sends data again.
pub(crate) const IDLE_MARK: i64 = i64::MIN + 1;

/// Parses `250ms`, `5s`, `2m`, `1h` or a bare number of milliseconds.
///
/// # Errors
/// [`Error::Config`] naming `field` when the text is not a duration.
pub fn parse_duration(field: &'static str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 =
        num.parse().map_err(|_| Error::config(field, format!("`{text}` is not a duration like 500ms, 5s, 2m")))?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n * 1000,
        "m" | "min" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(Error::config(field, format!("unknown unit `{unit}` in `{text}` (use ms, s, m, h)"))),
    };
    Ok(Duration::from_millis(ms))
}

/// Milliseconds since the Unix epoch by the system clock (processing time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("w", "5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("w", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("w", "1500").unwrap(), Duration::from_millis(1500));
        let e = parse_duration("window", "5 parsecs").unwrap_err().to_string();
        assert!(e.contains("`window`"), "{e}");
    }
}
