//! Numbers in text records (CSV fields, SQL columns), read faster than
//! `str::parse`, which is generic over the radix.

/// A decimal integer with an optional sign, as `str::parse::<i64>` reads
/// it; `None` on anything else or overflow.
pub fn parse_i64(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negative: i64::MIN has no positive twin.
    let mut v: i64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_std() {
        let cases = ["0", "-0", "-1", "+7", "1700000001234", "9223372036854775807", "-9223372036854775808"];
        for t in cases {
            assert_eq!(parse_i64(t), t.parse().ok(), "{t}");
        }
        for t in ["", "-", "+", "1.5", " 1", "9223372036854775808", "-9223372036854775809", "12a", "١", "--1"] {
            assert_eq!(parse_i64(t), None, "{t}");
        }
    }
}
