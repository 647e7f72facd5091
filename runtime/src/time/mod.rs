//! Event time: timestamps, watermarks, durations.
//!
//! Watermarks follow Flink's bounded-out-of-orderness rule exactly:
//! `watermark = max_ts_seen - delay - 1`, starting at `i64::MIN`.

pub(crate) mod watermark;

pub use watermark::{BoundedOutOfOrderness, Watermarks};

use crate::error::{Error, Result};
use std::time::Duration;

/// The largest event timestamp the bundled parsers accept: the last
/// millisecond of the year 9999 (UTC). With [`MIN_EVENT_TIME_MS`] this is
/// the sane range of event time: a reading outside it is malformed input
/// (counted and dead-lettered), never a window.
pub const MAX_EVENT_TIME_MS: i64 = 253_402_300_799_999;

/// The smallest event timestamp the bundled parsers accept: the Unix
/// epoch (1970-01-01 00:00:00.000 UTC).
pub const MIN_EVENT_TIME_MS: i64 = 0;

/// Whether `ts` lies in the sane range of event time (for readers that
/// decline a line rather than report it; see [`check_event_time`]).
#[inline(always)]
pub fn is_event_time(ts: i64) -> bool {
    (MIN_EVENT_TIME_MS..=MAX_EVENT_TIME_MS).contains(&ts)
}

/// Checks that `ts` lies in the sane range of event time.
///
/// # Errors
/// A sentence naming the value and the range, for a bad-input report.
pub fn check_event_time(ts: i64) -> std::result::Result<i64, String> {
    if is_event_time(ts) {
        return Ok(ts);
    }
    Err(format!("timestamp {ts} ms is outside {MIN_EVENT_TIME_MS}..={MAX_EVENT_TIME_MS} (years 1970 to 9999)"))
}

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

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` for ms since the Unix epoch.
pub fn format_utc_ms(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let in_day = ms % 86_400_000;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = in_day / 1000;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC", s / 3600, s / 60 % 60, s % 60, in_day % 1000)
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

    #[test]
    fn utc() {
        assert_eq!(format_utc_ms(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_utc_ms(1_700_000_001_234), "2023-11-14 22:13:21.234 UTC");
        assert_eq!(format_utc_ms(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
    }
}
