//! Numbers and fields in text records (CSV fields, SQL columns), read
//! faster than `str::parse` (generic over the radix, and general in what
//! floats it takes) and `str::split`.

/// The first eight bytes of `b` as a word, the first in its lowest byte.
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Each byte of a word with this value: 0x80 in a byte of the result
/// marks a byte of `word` equal to `b` (exact: no carry crosses bytes).
#[inline]
fn bytes_equal(word: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(b) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Each byte of a word below `b` (at most 0x80): 0x80 in a byte of the
/// result marks one (exact: no carry crosses bytes).
#[inline]
fn bytes_below(word: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each sum is set where the low seven bits reach `b`.
    let reach = (word & LOW7) + (u64::from(0x80 - b) * 0x0101_0101_0101_0101);
    !(reach | word) & !LOW7
}

/// The first `b` in `hay`: words of 8 bytes at a time over the first
/// 64 bytes (lines and fields are short, and a searcher's start-up costs
/// more than that), `memchr` past them.
#[inline]
pub fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    let near = &hay[..hay.len().min(64)];
    let mut words = near.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let hits = bytes_equal(word(w), b);
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    if let Some(j) = words.remainder().iter().position(|&x| x == b) {
        return Some(base + j);
    }
    memchr::memchr(b, &hay[near.len()..]).map(|j| near.len() + j)
}

/// What [`scan_line`] found in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineScan {
    /// Where the `\n` that ends the line is; `None`: the text has none.
    pub newline: Option<usize>,
    /// How many commas the line holds (also those past the array).
    pub commas: usize,
    /// The line holds a `"` (looked for only when asked).
    pub quote: bool,
}

/// The first line of `text` (up to its first `\n`), in one pass over words
/// of 8 bytes: where it ends, where its commas are (the first `at.len()`
/// of them written to `at`, in order) and, with `QUOTE`, whether it holds
/// a `"`. Finding the line end and the fields apart reads every byte twice.
#[inline(always)]
pub fn scan_line<const QUOTE: bool>(text: &[u8], at: &mut [usize]) -> LineScan {
    let mut n = 0;
    let mut quote = false;
    let mut words = text.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        // One mask for the three: each byte below `-` is looked at.
        let w = word(w);
        let mut low = bytes_below(w, b'-');
        while low != 0 {
            let bit = low.trailing_zeros();
            let i = base + (bit / 8) as usize;
            let b = (w >> (bit & !7)) as u8;
            // Commas first: most lines hold more of them than ends.
            if b == b',' {
                if let Some(slot) = at.get_mut(n) {
                    *slot = i;
                }
                n += 1;
            } else if b == b'\n' {
                return LineScan { newline: Some(i), commas: n, quote };
            } else if QUOTE && b == b'"' {
                quote = true;
            }
            low &= low - 1;
        }
        base += 8;
    }
    for (j, &b) in words.remainder().iter().enumerate() {
        match b {
            b'\n' => return LineScan { newline: Some(base + j), commas: n, quote },
            b',' => {
                if let Some(slot) = at.get_mut(n) {
                    *slot = base + j;
                }
                n += 1;
            }
            b'"' => quote |= QUOTE,
            _ => {}
        }
    }
    LineScan { newline: None, commas: n, quote }
}

/// Eight ASCII zeros.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Powers of ten up to 10^8, as integers.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

#[inline]
fn signed(neg: bool, v: i64) -> i64 {
    if neg {
        -v
    } else {
        v
    }
}

/// Eight ASCII digits (the first in the lowest byte) as their value;
/// `None` when any byte is not a digit.
#[inline]
fn eight_digits(word: u64) -> Option<u64> {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // A digit is 0x30..=0x39: high nibble 3, and still 3 after adding 6.
    if (word & HIGH) != ZEROS || (word.wrapping_add(0x0606_0606_0606_0606) & HIGH) != ZEROS {
        return None;
    }
    let v = word - ZEROS;
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v * 10_000 + (v >> 32)) & 0xffff_ffff)
}

/// Hands the comma-separated fields of `text` to `push` in order (one
/// empty field for an empty text); stops and returns false as soon as
/// `push` does.
#[inline]
pub fn split_commas<'a>(text: &'a str, push: impl FnMut(&'a str) -> bool) -> bool {
    split::<false>(text, push).unwrap_or(false)
}

/// [`split_commas`] for text that is read differently when it holds a
/// quote (CSV's quoted fields): `None` as soon as a `"` is seen, in the
/// same pass (some fields may have been handed to `push` by then);
/// otherwise what `split_commas` returns.
#[inline]
pub fn split_commas_unquoted<'a>(text: &'a str, push: impl FnMut(&'a str) -> bool) -> Option<bool> {
    split::<true>(text, push)
}

#[inline]
fn split<'a, const QUOTE: bool>(text: &'a str, mut push: impl FnMut(&'a str) -> bool) -> Option<bool> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut words = bytes.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let w = word(w);
        if QUOTE && bytes_equal(w, b'"') != 0 {
            return None;
        }
        let mut commas = bytes_equal(w, b',');
        while commas != 0 {
            let i = base + (commas.trailing_zeros() / 8) as usize;
            // A comma is a whole character: both slice ends are boundaries.
            if !push(&text[start..i]) {
                return Some(false);
            }
            start = i + 1;
            commas &= commas - 1;
        }
        base += 8;
    }
    for (j, &b) in words.remainder().iter().enumerate() {
        if QUOTE && b == b'"' {
            return None;
        }
        if b == b',' {
            if !push(&text[start..base + j]) {
                return Some(false);
            }
            start = base + j + 1;
        }
    }
    Some(push(&text[start..]))
}

/// A decimal integer with an optional sign, as `str::parse::<i64>` reads
/// it; `None` on anything else or overflow.
#[inline(always)]
pub fn parse_i64(s: &str) -> Option<i64> {
    parse_i64_bytes(s.as_bytes())
}

/// [`parse_i64`] of the bytes of a text.
#[inline(always)]
pub fn parse_i64_bytes(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return None;
    }
    if digits.len() <= 18 {
        // Below 10^18: no overflow either way.
        let n = digits.len();
        let (mut v, rest) = match n {
            9..=16 => {
                // The last eight bytes again, their first 16 - n (read
                // already) made zeros: the tail's value in one word.
                let head = eight_digits(word(digits))?;
                let known = (16 - n) * 8;
                let mask = (1u64 << known) - 1;
                let tail = eight_digits((word(&digits[n - 8..]) & !mask) | (ZEROS & mask))?;
                return Some(signed(neg, (head * POW10[n - 8] + tail) as i64));
            }
            8.. => (eight_digits(word(digits))? as i64, &digits[8..]),
            _ => (0, digits),
        };
        for &d in rest {
            let d = d.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + i64::from(d);
        }
        return Some(signed(neg, v));
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

/// Powers of ten a double holds exactly.
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A number as `str::parse::<f64>` reads it, and the same value, bit for
/// bit: plain decimals (`-12.75`) whose digits make at most 2^53 (all of
/// 15 digits, most of 16) take a short path (the digits and the power of
/// ten are exact doubles, so one division rounds correctly), anything
/// else goes to `str::parse`.
#[inline(always)]
pub fn parse_f64(s: &str) -> Option<f64> {
    parse_f64_short(s.as_bytes()).or_else(|| s.parse().ok())
}

/// [`parse_f64`]'s short path alone: the same value for a plain decimal
/// whose digits make at most 2^53, `None` for any other text (which
/// `parse_f64` hands to `str::parse`).
#[inline(always)]
pub fn parse_f64_short(b: &[u8]) -> Option<f64> {
    let (neg, rest) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    // The digits before a point, then those after it.
    let mut mantissa: u64 = 0;
    let mut digits = rest.iter();
    let mut int_digits = 0;
    let mut dot = false;
    for &c in &mut digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            dot = c == b'.';
            if !dot {
                return None;
            }
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        int_digits += 1;
    }
    let frac_digits = digits.len();
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    // Digits on both sides of a point, at most 19 in all (no overflow),
    // making at most 2^53: else std's rules.
    if int_digits == 0 || (dot && frac_digits == 0) || int_digits + frac_digits > 19 || mantissa > 1 << 53 {
        return None;
    }
    // Up to 2^53 the mantissa is exact as a double (Clinger's fast path).
    let v = mantissa as f64 / EXACT_POW10[frac_digits];
    Some(if neg { -v } else { v })
}

/// A line's fields read in order straight from its bytes, for a reader
/// that knows the line's shape: each field ends at its first byte below
/// `-` (`,`, `\n`, `"`, `\r`, a space, `+`, a control byte), which must be
/// the end the reader asks for. Lines of another shape (quoted fields,
/// `\r\n` ends, spaces, a `+` sign, one field more or less) are not read
/// here but by a general reader.
pub struct PlainFields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> PlainFields<'a> {
    /// Fields from the start of `bytes`.
    #[inline(always)]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// The next field, which ends with `end` (taken too); `None` when it
    /// ends with another byte below `-`, or the bytes run out first.
    #[inline(always)]
    pub fn next(&mut self, end: u8) -> Option<&'a [u8]> {
        let start = self.at;
        let mut words = self.bytes.get(start..)?.chunks_exact(8);
        let mut i = start;
        for w in &mut words {
            let low = bytes_below(word(w), b'-');
            if low != 0 {
                return self.ended(start, i + (low.trailing_zeros() / 8) as usize, end);
            }
            i += 8;
        }
        let e = i + words.remainder().iter().position(|&c| c < b'-')?;
        self.ended(start, e, end)
    }

    #[inline(always)]
    fn ended(&mut self, start: usize, e: usize, end: u8) -> Option<&'a [u8]> {
        if *self.bytes.get(e)? != end {
            return None;
        }
        self.at = e + 1;
        self.bytes.get(start..e)
    }

    /// Bytes read so far, through the last field's end.
    #[inline(always)]
    pub fn consumed(&self) -> usize {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_parse_like_std() {
        let cases = [
            "0",
            "-0",
            "-1",
            "+7",
            "1700000001234",
            "999999999999999999",
            "-999999999999999999",
            "1000000000000000000",
            "9223372036854775807",
            "-9223372036854775808",
        ];
        for t in cases {
            assert_eq!(parse_i64(t), t.parse().ok(), "{t}");
        }
        for t in ["", "-", "+", "1.5", " 1", "9223372036854775808", "-9223372036854775809", "12a", "١", "--1"] {
            assert_eq!(parse_i64(t), None, "{t}");
        }
        // 9 to 16 digits read as two words that overlap: a bad byte
        // anywhere, in the overlap too, is seen.
        let digits = "9081726354453627";
        for n in 1..=digits.len() {
            let t = &digits[..n];
            assert_eq!(parse_i64(t), t.parse().ok(), "{t}");
            assert_eq!(parse_i64(&format!("-{t}")), Some(-t.parse::<i64>().unwrap()), "-{t}");
            for at in 0..n {
                for bad in ["/", ":", "a", " "] {
                    let t = format!("{}{bad}{}", &t[..at], &t[at + 1..]);
                    assert_eq!(parse_i64(&t), None, "{t}");
                }
            }
        }
    }

    #[test]
    fn floats_parse_like_std() {
        let cases = [
            "0",
            "-0",
            "-0.0",
            "+0.5",
            "51.37",
            "-459.67",
            "1.",
            ".5",
            "-.5",
            "1e3",
            "1E-3",
            "inf",
            "-infinity",
            "NaN",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "",
            "-",
            ".",
            "+",
            "1.2.3",
            "1,5",
            " 1",
            "1 ",
            "0x10",
            "00000000000000012.5",
            "99.999999999999",
            "1234.567",
            "12345678",
            "0000.001",
            "5..1",
            "12.3.4",
            ".1234567",
            "1234567.",
        ];
        for t in cases {
            assert_eq!(parse_f64(t).map(f64::to_bits), t.parse::<f64>().ok().map(f64::to_bits), "{t}");
        }
    }

    fn fields(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        assert!(split_commas(text, |f| {
            v.push(f);
            true
        }));
        v
    }

    #[test]
    fn the_short_path_takes_digits_up_to_two_to_the_53() {
        for (t, short) in [
            ("88.78999999999999", true),
            ("9007199254740992", true),
            ("900719925474099.2", true),
            ("9007199254740993", false),
            ("0.1000000000000000055511151231257827", false),
        ] {
            let got = parse_f64_short(t.as_bytes());
            assert_eq!(got.is_some(), short, "{t}");
            assert_eq!(parse_f64(t).map(f64::to_bits), t.parse::<f64>().ok().map(f64::to_bits), "{t}");
            assert!(got.is_none_or(|v| v.to_bits() == t.parse::<f64>().unwrap_or_default().to_bits()), "{t}");
        }
    }

    #[test]
    fn plain_fields_end_where_asked() {
        let line = b"a-sensor-with-a-long-name,1699999999765,51.37\nnext";
        let mut f = PlainFields::new(line);
        assert_eq!(f.next(b','), Some(&b"a-sensor-with-a-long-name"[..]));
        assert_eq!(f.next(b','), Some(&b"1699999999765"[..]));
        assert_eq!(f.next(b'\n'), Some(&b"51.37"[..]));
        assert_eq!(f.consumed(), 46);
        // A field that ends otherwise, or not at all, is not plain.
        for (text, end) in [(&b"a b,1"[..], b','), (b"a\n", b','), (b"a", b','), (b"\"a\",1", b','), (b"1\r\n", b'\n')]
        {
            assert_eq!(PlainFields::new(text).next(end), None, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn bytes_are_found_like_memchr() {
        let mut hay = vec![b'a'; 200];
        for at in [0, 1, 7, 8, 9, 63, 64, 65, 199] {
            hay[at] = b'\n';
            for len in [at, at + 1, 200] {
                assert_eq!(find_byte(&hay[..len], b'\n'), memchr::memchr(b'\n', &hay[..len]), "{at} {len}");
            }
            hay[at] = 0xff;
            assert_eq!(find_byte(&hay, b'\n'), None);
            hay[at] = b'a';
        }
    }

    /// What `scan_line` should find, by std's means.
    fn scan_reference(text: &[u8], room: usize) -> (LineScan, Vec<usize>) {
        let newline = text.iter().position(|&b| b == b'\n');
        let line = &text[..newline.unwrap_or(text.len())];
        let commas: Vec<usize> = line.iter().enumerate().filter(|(_, &b)| b == b',').map(|(i, _)| i).collect();
        let scan = LineScan { newline, commas: commas.len(), quote: line.contains(&b'"') };
        (scan, commas.into_iter().take(room).collect())
    }

    fn check_scan(text: &[u8], room: usize) {
        let mut at = vec![usize::MAX; room];
        let scan = scan_line::<true>(text, &mut at);
        let (want, commas) = scan_reference(text, room);
        assert_eq!((scan, &at[..commas.len()]), (want, &commas[..]), "{:?}", String::from_utf8_lossy(text));
        let unquoted = scan_line::<false>(text, &mut at);
        assert_eq!(unquoted, LineScan { quote: false, ..want });
    }

    #[test]
    fn a_line_is_scanned_like_std() {
        for t in [
            &b""[..],
            b"\n",
            b"s0001,1699999999935,51.48\ns0002,1,2\n",
            b"a,b,c,d,e,f,g,h,i\n,,,",
            b"abcdefg,\n,",
            b"abcdefgh\n\"",
            b"1234567\"\n",
            b",,,,,,,,,,,,,,,,,,",
            "ü,é,,ß\r\nx".as_bytes(),
        ] {
            for room in [0, 2, 32] {
                check_scan(t, room);
            }
        }
    }

    #[test]
    fn fields_split_like_std() {
        for t in [
            "",
            ",",
            "a",
            "a,b",
            ",a,",
            "s0001,1699999999935,51.48",
            "ü,é,,ß",
            "12345678,",
            ",12345678",
            "a,,,,,,,,,,b",
        ] {
            assert_eq!(fields(t), t.split(',').collect::<Vec<_>>(), "{t}");
        }
        let mut n = 0;
        assert!(!split_commas("a,b,c,d", |_| {
            n += 1;
            n < 2
        }));
        assert_eq!(n, 2);
    }

    #[test]
    fn a_quote_anywhere_stops_the_unquoted_split() {
        for t in ["\"", "a,\"b\"", "12345678,\"", "a,b,c,d,e,f,g,h,i,j,\"k\"", "\"a,b\",c", "abcdefg\""] {
            assert_eq!(split_commas_unquoted(t, |_| true), None, "{t}");
        }
        for t in ["", "a,b", "s0001,1699999999935,51.48", "ü,é,,ß"] {
            let mut v = Vec::new();
            let all = split_commas_unquoted(t, |f| {
                v.push(f);
                true
            });
            assert_eq!((all, v), (Some(true), t.split(',').collect::<Vec<_>>()), "{t}");
        }
        assert_eq!(split_commas_unquoted("a,b,\"c\"", |f| f != "b"), Some(false));
    }

    proptest! {
        #[test]
        fn any_decimal_parses_like_std(int in "[+-]?[0-9]{0,12}", frac in proptest::option::of("[0-9]{0,10}")) {
            let t = match frac { Some(f) => format!("{int}.{f}"), None => int };
            let std = t.parse::<f64>().ok().map(f64::to_bits);
            prop_assert_eq!(parse_f64(&t).map(f64::to_bits), std, "{}", t);
            // The short path alone takes all of 15 digits with some on each
            // side of a point, and gets them right.
            let digits = t.bytes().filter(u8::is_ascii_digit).count();
            let bare = t.trim_start_matches(['+', '-']).starts_with('.') || t.ends_with('.');
            let short = parse_f64_short(t.as_bytes()).map(f64::to_bits);
            prop_assert!(short == std || (short.is_none() && (digits > 15 || bare)), "{}", t);
        }

        #[test]
        fn any_short_text_parses_like_std(t in "[+-]?[0-9./:e]{0,10}") {
            let std = t.parse::<f64>().ok().map(f64::to_bits);
            prop_assert_eq!(parse_f64(&t).map(f64::to_bits), std, "{}", t);
            prop_assert!(parse_f64_short(t.as_bytes()).is_none_or(|v| Some(v.to_bits()) == std), "{}", t);
            prop_assert_eq!(parse_i64(&t), t.parse().ok(), "{}", t);
        }

        #[test]
        fn any_text_reads_as_plain_fields_where_it_is_plain(t in "[ab,\n\"\r +é-]{0,30}", ends in "[,\n]{1,4}") {
            let b = t.as_bytes();
            let mut f = PlainFields::new(b);
            let mut at = 0;
            for end in ends.bytes() {
                // The field runs to its first byte below `-`, which must be `end`.
                let stop = b[at..].iter().position(|&c| c < b'-').map(|i| at + i);
                let want = stop.filter(|&e| b[e] == end).map(|e| &b[at..e]);
                prop_assert_eq!(f.next(end), want, "{:?} at {}", t, at);
                match stop.filter(|&e| b[e] == end) {
                    Some(e) => at = e + 1,
                    None => break,
                }
                prop_assert_eq!(f.consumed(), at);
            }
        }

        #[test]
        fn any_double_printed_parses_back(x in any::<f64>()) {
            for t in [x.to_string(), format!("{x:.3}"), format!("{x:e}")] {
                prop_assert_eq!(parse_f64(&t).map(f64::to_bits), t.parse::<f64>().ok().map(f64::to_bits), "{}", t);
            }
        }

        #[test]
        fn any_integer_parses_like_std(t in "[+-]?[0-9/:]{0,20}", x in any::<i64>()) {
            prop_assert_eq!(parse_i64(&t), t.parse().ok(), "{}", t);
            prop_assert_eq!(parse_i64(&x.to_string()), Some(x));
        }

        #[test]
        fn any_text_scans_like_std(t in "[a,\"\n]{0,40}", room in 0usize..4) {
            check_scan(t.as_bytes(), room);
        }

        #[test]
        fn any_text_splits_like_std(t in "[a-c,é]{0,40}") {
            prop_assert_eq!(fields(&t), t.split(',').collect::<Vec<_>>());
        }
    }
}
