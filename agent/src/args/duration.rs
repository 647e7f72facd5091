//! Durations for flags: `500ms`, `5s`, `2m`, `1h 30m` (humantime's
//! syntax) or a bare number of milliseconds.
//!
//! The engine counts time in whole milliseconds on `i64`, so a duration
//! with a fraction of a millisecond, or longer than [`MAX_DURATION`], is
//! refused instead of being rounded or wrapped.

use std::time::Duration;

/// The longest duration any flag takes: 10 years (3,650 days). Window ends
/// (timestamp + size) and deadlines (now + interval) stay far inside `i64`
/// milliseconds and `Instant` with it.
pub const MAX_DURATION: Duration = rivulet::window::MAX_SIZE;

/// A duration of zero or more whole milliseconds, at most [`MAX_DURATION`]
/// (clap value parser).
///
/// # Errors
/// A sentence saying what is wrong with `text`; clap adds the flag's name.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = t.parse().map_err(|_| format!("`{text}` milliseconds is out of range (at most 10 years)"))?;
        Duration::from_millis(ms)
    } else {
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => format!("`{text}` is out of range (at most 10 years)"),
            e => format!("`{text}` is not a duration like 500ms, 5s, 2m or 1h ({e})"),
        })?
    };
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!("`{text}` has a fraction of a millisecond; durations count whole milliseconds"));
    }
    if d > MAX_DURATION {
        return Err(format!("`{text}` is out of range (at most 10 years)"));
    }
    Ok(d)
}

/// A [`duration`] of at least 1 ms, for flags where zero makes no sense (a
/// window, an interval, a timeout).
///
/// # Errors
/// As [`duration`], or the value is zero.
pub fn nonzero_duration(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero; give at least 1ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards the spellings scripts and the README use: unit suffixes and
    // bare milliseconds.
    #[test]
    fn accepts_units_and_bare_milliseconds() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1s 500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2000us"), Ok(Duration::from_millis(2)));
    }

    // Guards issue 12 §10: zero is refused where it makes no sense and
    // kept where it does (a watermark delay of 0).
    #[test]
    fn zero_is_refused_only_by_nonzero() {
        for z in ["0", "0s", "0ms"] {
            assert_eq!(duration(z), Ok(Duration::ZERO), "{z}");
            let e = nonzero_duration(z).unwrap_err();
            assert!(e.contains("zero"), "{e}");
        }
    }

    // Guards issue 12 §10: sub-millisecond values are not rounded to 0 ms
    // (or down to a whole ms).
    #[test]
    fn sub_millisecond_values_are_refused() {
        for t in ["500us", "999999ns", "1500us", "1ns"] {
            let e = duration(t).unwrap_err();
            assert!(e.contains("fraction of a millisecond"), "{t}: {e}");
        }
    }

    // Guards issue 12 §10: values beyond u64 or beyond what i64 window
    // arithmetic holds are refused, never wrapped.
    #[test]
    fn out_of_range_values_are_refused() {
        for t in ["99999999999999999999s", "99999999999999999999", "3651days", "20000000000000000ms", "400y"] {
            let e = duration(t).unwrap_err();
            assert!(e.contains("out of range"), "{t}: {e}");
        }
        assert_eq!(duration("3650days"), Ok(MAX_DURATION));
    }

    // Guards that garbage names what was wrong rather than panicking.
    #[test]
    fn garbage_is_refused() {
        for t in ["bogus", "", "5 parsecs", "-1s", "1.5.2s"] {
            assert!(duration(t).is_err(), "{t}");
        }
    }
}
