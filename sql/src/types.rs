//! SQL types and typed values: a row is a sequence of `Value`s whose positions
//! the planner fixed, so nothing is looked up by name while rows flow.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};

/// The types a column or expression can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT`: 32-bit, wrapping on overflow as in Flink.
    Int,
    /// `BIGINT`.
    BigInt,
    /// `DOUBLE`.
    Double,
    /// `STRING` / `VARCHAR`.
    String,
    /// `TIMESTAMP(3)`: a date and time without zone, milliseconds.
    Timestamp,
    /// `TIMESTAMP_LTZ(3)`: an instant, shown in the session's zone (UTC).
    TimestampLtz,
}

impl SqlType {
    /// INT, BIGINT or DOUBLE.
    pub fn is_numeric(self) -> bool {
        matches!(self, SqlType::Int | SqlType::BigInt | SqlType::Double)
    }

    /// TIMESTAMP(3) or TIMESTAMP_LTZ(3).
    pub fn is_timestamp(self) -> bool {
        matches!(self, SqlType::Timestamp | SqlType::TimestampLtz)
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SqlType::Boolean => "BOOLEAN",
            SqlType::Int => "INT",
            SqlType::BigInt => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::String => "STRING",
            SqlType::Timestamp => "TIMESTAMP(3)",
            SqlType::TimestampLtz => "TIMESTAMP_LTZ(3)",
        })
    }
}

/// One typed value. Timestamps of both kinds are milliseconds since the
/// Unix epoch (UTC); the column's type says how they are shown.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// DOUBLE.
    Double(f64),
    /// STRING (inline up to 24 bytes: a typical id allocates nothing).
    Str(compact_str::CompactString),
    /// TIMESTAMP(3) or TIMESTAMP_LTZ(3), ms since the epoch.
    Ts(i64),
}

/// Values a row holds without a heap allocation: the seed job's rows (its
/// columns and the event time) fit.
pub const INLINE_COLUMNS: usize = 6;

/// A row: values in the positions the plan fixed.
pub type Row = smallvec::SmallVec<[Value; INLINE_COLUMNS]>;

impl Value {
    /// The value as a DOUBLE (numbers only).
    #[inline]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(v) => Some(f64::from(v)),
            Value::BigInt(v) => Some(v as f64),
            Value::Double(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a BIGINT (integers and timestamps only).
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(i64::from(v)),
            Value::BigInt(v) | Value::Ts(v) => Some(v),
            _ => None,
        }
    }

    /// True for NULL.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Group-by keys: equal when every value is (DOUBLEs by their bits, so a
/// NaN key finds itself). Up to two values are held inline (serialized as
/// a sequence either way).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowKey(pub smallvec::SmallVec<[Value; 2]>);

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        match (self.0.as_slice(), other.0.as_slice()) {
            // The common key: one string.
            ([Value::Str(a)], [Value::Str(b)]) => short_eq(a.as_bytes(), b.as_bytes()),
            (a, b) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(a, b)| match (a, b) {
                        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
                        _ => a == b,
                    })
            }
        }
    }
}

impl Eq for RowKey {}

/// Byte strings compared without a call for the short ones (ids are):
/// up to 16 bytes in at most two overlapping word loads a side.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let w8 = |s: &[u8], at: usize| {
        u64::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3], s[at + 4], s[at + 5], s[at + 6], s[at + 7]])
    };
    let w4 = |s: &[u8], at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

/// For hash maps within one process: the values fed to the map's hasher
/// as they are (a word at a time). What places keys on disk is
/// [`rivulet::key::Key::stable_hash`].
impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The common key, one string: its bytes alone (no other shape of
        // key is equal to it).
        if let [Value::Str(s)] = self.0.as_slice() {
            state.write(s.as_bytes());
            return;
        }
        state.write_usize(self.0.len());
        for v in &self.0 {
            match v {
                Value::Null => state.write_u8(0),
                Value::Bool(b) => state.write_u16(0x100 | u16::from(*b)),
                Value::Int(i) => {
                    state.write_u8(2);
                    state.write_i32(*i);
                }
                Value::BigInt(i) => {
                    state.write_u8(3);
                    state.write_i64(*i);
                }
                Value::Ts(i) => {
                    state.write_u8(6);
                    state.write_i64(*i);
                }
                Value::Double(d) => {
                    state.write_u8(4);
                    state.write_u64(d.to_bits());
                }
                Value::Str(s) => {
                    state.write_u8(5);
                    s.as_str().hash(state);
                }
            }
        }
    }
}

impl rivulet::key::Key for RowKey {
    /// FNV-1a over a tagged encoding of the values, streamed (no
    /// allocation per row), finished by [`rivulet::key::hash_bytes`] of
    /// the result. It names state on disk: it must never change.
    fn stable_hash(&self) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        for v in &self.0 {
            match v {
                Value::Null => h.write(&[0]),
                Value::Bool(b) => h.write(&[1, u8::from(*b)]),
                Value::Int(i) => {
                    h.write(&[2]);
                    h.write(&i.to_le_bytes());
                }
                Value::BigInt(i) | Value::Ts(i) => {
                    h.write(&[3]);
                    h.write(&i.to_le_bytes());
                }
                Value::Double(d) => {
                    h.write(&[4]);
                    h.write(&d.to_bits().to_le_bytes());
                }
                Value::Str(s) => {
                    h.write(&[5]);
                    h.write(&(s.len() as u64).to_le_bytes());
                    h.write(s.as_bytes());
                }
            }
        }
        rivulet::key::hash_bytes(&h.0.to_le_bytes())
    }
}

struct Fnv(u64);

impl Fnv {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Java's `Double.toString`, which Flink's CSV and print formats use:
/// shortest round-trip digits, plain between 10^-3 and 10^7 (`20.0`),
/// scientific outside (`1.0E7`, `1.5E-4`).
pub fn format_double(v: f64, out: &mut String) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{v}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
        return;
    }
    // `{:e}` gives the shortest digits as `d.ddde-x`.
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('E');
    out.push_str(exp);
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (`sep` between date and time), the
/// fraction without trailing zeros and left out when zero, as Flink's
/// formats write TIMESTAMP(3).
pub fn format_timestamp(ms: i64, sep: char, out: &mut String) {
    use std::fmt::Write;
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let s = in_day / 1000;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    let frac = in_day % 1000;
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.f{1,3}]` (or with `T`) into ms since the
/// epoch; `None` when it is not one.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut tp = hms.splitn(3, ':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: i64 = tp.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = &f[..f.len().min(3)];
            digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32)
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, m, d);
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbl(v: f64) -> String {
        let mut s = String::new();
        format_double(v, &mut s);
        s
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(dbl(20.0), "20.0");
        assert_eq!(dbl(21.666666666666668), "21.666666666666668");
        assert_eq!(dbl(-0.5), "-0.5");
        assert_eq!(dbl(1e7), "1.0E7");
        assert_eq!(dbl(12345678.9), "1.23456789E7");
        assert_eq!(dbl(0.00015), "1.5E-4");
        assert_eq!(dbl(0.001), "0.001");
        assert_eq!(dbl(0.0), "0.0");
    }

    #[test]
    fn key_hash_is_stable() {
        // Regression guard: the hash places keys in key groups on disk.
        use rivulet::key::Key;
        let k = RowKey(smallvec::smallvec![Value::Str("s0042".into()), Value::Int(7)]);
        assert_eq!(k.stable_hash(), 0x9600_5f1d_65e3_9a37, "{:#x}", k.stable_hash());
        assert_ne!(
            k.stable_hash(),
            RowKey(smallvec::smallvec![Value::Str("s0042".into()), Value::BigInt(7)]).stable_hash()
        );
    }

    /// Keys are equal by their values' bits: a NaN key finds itself, and
    /// equal keys hash alike in a map.
    #[test]
    fn keys_find_themselves_in_a_map() {
        let nan = RowKey(smallvec::smallvec![Value::Str("s1".into()), Value::Double(f64::NAN)]);
        let mut map = std::collections::HashMap::new();
        map.insert(nan.clone(), 1);
        *map.entry(nan.clone()).or_insert(0) += 1;
        assert_eq!(map[&nan], 2);
        let int = RowKey(smallvec::smallvec![Value::Int(7)]);
        assert_ne!(int, RowKey(smallvec::smallvec![Value::BigInt(7)]));
        map.insert(int.clone(), 5);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&RowKey(smallvec::smallvec![Value::Int(7)])), Some(&5));
    }

    proptest::proptest! {
        /// The short compare agrees with the slices' own, at every length
        /// around its word sizes, for equal strings and for strings that
        /// differ in one byte anywhere.
        #[test]
        fn short_strings_compare_as_slices(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            at in 0usize..40,
            flip in 1u8..=255,
            other in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            proptest::prop_assert!(short_eq(&a, &a.clone()));
            let mut b = a.clone();
            if let Some(x) = b.get_mut(at) {
                *x ^= flip;
            }
            proptest::prop_assert_eq!(short_eq(&a, &b), a == b);
            proptest::prop_assert_eq!(short_eq(&a, &other), a == other);
        }

        /// Single-string keys equal as keys exactly when their strings
        /// are, and equal ones hash alike (one string takes a shorter path
        /// through both).
        #[test]
        fn one_string_keys_are_equal_and_hash_as_their_strings(a in "[a-z0-9]{0,30}", b in "[a-z0-9]{0,30}") {
            use std::hash::BuildHasher;
            let key = |s: &str| RowKey(smallvec::smallvec![Value::Str(s.into())]);
            let h = std::collections::hash_map::RandomState::new();
            proptest::prop_assert_eq!(key(&a) == key(&b), a == b);
            proptest::prop_assert_eq!(h.hash_one(key(&a)), h.hash_one(key(&a.clone())));
            proptest::prop_assert_ne!(key(&a), RowKey(smallvec::smallvec![Value::Str(a.as_str().into()), Value::Null]));
        }
    }

    /// Keys and values name and fill state on disk: their encoding is a
    /// sequence of tagged values, a string as its length and bytes,
    /// whatever the types hold them in memory.
    #[test]
    fn state_encoding_is_stable() {
        let k = RowKey(smallvec::smallvec![Value::Str("s0042".into()), Value::Int(7)]);
        let bytes = postcard::to_allocvec(&k).unwrap();
        assert_eq!(bytes, [2, 5, 5, b's', b'0', b'0', b'4', b'2', 2, 14]);
        assert_eq!(postcard::from_bytes::<RowKey>(&bytes).unwrap(), k);
        let long = Value::Str("a sensor id longer than twenty-four bytes".into());
        assert_eq!(postcard::from_bytes::<Value>(&postcard::to_allocvec(&long).unwrap()).unwrap(), long);
    }

    #[test]
    fn timestamps_round_trip() {
        let mut s = String::new();
        format_timestamp(1_700_000_005_000, ' ', &mut s);
        assert_eq!(s, "2023-11-14 22:13:25");
        s.clear();
        format_timestamp(1_700_000_005_120, 'T', &mut s);
        assert_eq!(s, "2023-11-14T22:13:25.12");
        assert_eq!(parse_timestamp("2023-11-14 22:13:25.12"), Some(1_700_000_005_120));
        assert_eq!(parse_timestamp("2000-02-29T00:00:00"), Some(951_782_400_000));
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.999"), Some(-1));
        assert_eq!(parse_timestamp("2001-02-29 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
