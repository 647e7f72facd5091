//! Batched payloads: one message may carry many readings. A payload is cut
//! into the byte ranges of its readings here, and each range is decoded,
//! validated and dead-lettered on its own.
//!
//! The form is read from the payload itself:
//!
//! - `json`: a payload whose first non-blank byte is `[` is an array, each
//!   element one reading (split at the array's top-level commas, so a
//!   malformed element spoils only itself). Otherwise the payload is a
//!   sequence of values, each one reading: an object runs to its matching
//!   `}` (so one object, pretty-printed or not, is one reading, and JSON
//!   lines are one reading per line); anything else — or an object whose
//!   braces do not balance — runs to the end of its line.
//! - `csv` and `number`: each non-blank line is one reading (a trailing
//!   `\r` is dropped).
//!
//! A payload with no reading at all (blank, `[]`) is malformed as a whole.

use super::payload::PayloadFormat;
use std::ops::Range;

/// One reading's bytes within a payload, or why they cannot be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) range: Range<usize>,
    /// The payload's structure is broken at this reading.
    pub(crate) error: Option<&'static str>,
}

/// Appends the readings of `payload` to `out` (cleared first).
pub(crate) fn split(format: &PayloadFormat, payload: &[u8], out: &mut Vec<Piece>) {
    out.clear();
    match format {
        PayloadFormat::Json => {
            let start = skip_blank(payload, 0);
            if payload.get(start) == Some(&b'[') {
                split_array(payload, start, out);
            } else {
                split_values(payload, start, out);
            }
        }
        PayloadFormat::Csv { .. } | PayloadFormat::Number { .. } => split_lines(payload, out),
    }
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_blank(p: &[u8], mut i: usize) -> usize {
    while p.get(i).is_some_and(|b| is_blank(*b)) {
        i += 1;
    }
    i
}

/// `from..to` without blanks at either end.
fn trimmed(p: &[u8], mut from: usize, mut to: usize) -> Range<usize> {
    while from < to && is_blank(p[from]) {
        from += 1;
    }
    while to > from && is_blank(p[to - 1]) {
        to -= 1;
    }
    from..to
}

fn line_end(p: &[u8], from: usize) -> usize {
    p[from..].iter().position(|b| *b == b'\n').map_or(p.len(), |k| from + k)
}

/// Tracks strings and nesting while scanning JSON text.
#[derive(Default)]
struct Scan {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Feeds one byte; false when it breaks the text (a raw newline inside
    /// a string, which JSON forbids).
    fn feed(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            } else if b == b'\n' {
                return false;
            }
            return true;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        true
    }
}

/// `p[open]` is `[`: each top-level element is a reading.
fn split_array(p: &[u8], open: usize, out: &mut Vec<Piece>) {
    let mut i = open + 1;
    if p.get(skip_blank(p, i)) == Some(&b']') {
        // An empty array holds no reading; text after it still is one.
        after_array(p, skip_blank(p, i) + 1, out);
        return;
    }
    loop {
        let from = i;
        let mut s = Scan::default();
        let mut close = None;
        while let Some(&b) = p.get(i) {
            if !s.in_string && s.depth == 0 && (b == b',' || b == b']') {
                close = Some(b);
                break;
            }
            s.feed(b);
            i += 1;
        }
        let range = trimmed(p, from, i);
        let Some(close) = close else {
            out.push(Piece { range, error: Some("the array is not closed") });
            return;
        };
        let error = range.is_empty().then_some("empty array element");
        out.push(Piece { range, error });
        i += 1;
        if close == b']' {
            after_array(p, i, out);
            return;
        }
    }
}

fn after_array(p: &[u8], from: usize, out: &mut Vec<Piece>) {
    let rest = trimmed(p, from.min(p.len()), p.len());
    if !rest.is_empty() {
        out.push(Piece { range: rest, error: Some("text after the array") });
    }
}

/// Objects (each to its matching brace) and lines.
fn split_values(p: &[u8], mut i: usize, out: &mut Vec<Piece>) {
    while i < p.len() {
        let eol = line_end(p, i);
        let end = match (p[i] == b'{').then(|| object_end(p, i)).flatten() {
            // Whatever follows the object on its last line belongs to it
            // (and makes it malformed, unless blank).
            Some(e) => {
                let eol = line_end(p, e);
                if p[e..eol].iter().all(|b| is_blank(*b)) {
                    e
                } else {
                    eol
                }
            }
            None => eol,
        };
        out.push(Piece { range: trimmed(p, i, end), error: None });
        i = skip_blank(p, end);
    }
}

/// The index after the `}` matching the `{` at `open`, if the object closes.
fn object_end(p: &[u8], open: usize) -> Option<usize> {
    let mut s = Scan::default();
    for (k, &b) in p[open..].iter().enumerate() {
        if !s.feed(b) {
            return None;
        }
        if s.depth == 0 && !s.in_string {
            return Some(open + k + 1);
        }
    }
    None
}

fn split_lines(p: &[u8], out: &mut Vec<Piece>) {
    let mut i = 0;
    while i < p.len() {
        let eol = line_end(p, i);
        let end = if eol > i && p[eol - 1] == b'\r' { eol - 1 } else { eol };
        if !p[i..end].iter().all(|b| is_blank(*b)) {
            out.push(Piece { range: i..end, error: None });
        }
        i = eol + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading's text and its structural error.
    type Cut = (String, Option<&'static str>);

    fn pieces(format: &PayloadFormat, payload: &str) -> Vec<Cut> {
        let mut out = Vec::new();
        split(format, payload.as_bytes(), &mut out);
        out.into_iter().map(|p| (payload[p.range].to_string(), p.error)).collect()
    }

    /// The form rule, case by case: what each payload is cut into.
    #[test]
    fn payloads_split_into_readings() {
        let json = PayloadFormat::Json;
        let csv = PayloadFormat::parse("csv:ts,t").unwrap();
        let num = PayloadFormat::parse("number:t").unwrap();
        let ok = |v: &[&str]| v.iter().map(|s| (s.to_string(), None)).collect::<Vec<_>>();
        let table: &[(&PayloadFormat, &str, Vec<Cut>)] = &[
            // One reading, as before batching.
            (&json, r#"{"ts":1,"t":2}"#, ok(&[r#"{"ts":1,"t":2}"#])),
            (&json, "{\n  \"ts\": 1,\n  \"t\": [2, 3]\n}\n", ok(&["{\n  \"ts\": 1,\n  \"t\": [2, 3]\n}"])),
            (&json, "{oops", ok(&["{oops"])),
            (&json, "not json", ok(&["not json"])),
            (&json, "42", ok(&["42"])),
            (&json, r#"{"a":1} tail"#, ok(&[r#"{"a":1} tail"#])),
            // Arrays: elements split at top-level commas only.
            (&json, r#" [{"a":"x,]"},{"b":[1,2]}] "#, ok(&[r#"{"a":"x,]"}"#, r#"{"b":[1,2]}"#])),
            (&json, "[\n {\"a\":1},\n {\"a\":2}\n]\n", ok(&[r#"{"a":1}"#, r#"{"a":2}"#])),
            (&json, r#"[{"a":1},{"a": ,},{"a":3}]"#, ok(&[r#"{"a":1}"#, r#"{"a": ,}"#, r#"{"a":3}"#])),
            (&json, r#"[{"a":"\"}"},2]"#, ok(&[r#"{"a":"\"}"}"#, "2"])),
            (&json, "[]", vec![]),
            (&json, " [ \n ] ", vec![]),
            (&json, "[{},]", vec![("{}".into(), None), (String::new(), Some("empty array element"))]),
            (
                &json,
                r#"[{"a":1},{"a":"#,
                vec![(r#"{"a":1}"#.into(), None), (r#"{"a":"#.into(), Some("the array is not closed"))],
            ),
            (&json, "[1] x", vec![("1".into(), None), ("x".into(), Some("text after the array"))]),
            (&json, "[] x", vec![("x".into(), Some("text after the array"))]),
            // JSON lines; a broken line spoils only itself.
            (&json, "{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}", ok(&[r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#])),
            (&json, "{\"a\":1\n{\"a\":2}\nbad\n", ok(&[r#"{"a":1"#, r#"{"a":2}"#, "bad"])),
            (&json, "{\"a\":\"x\n{\"a\":2}", ok(&[r#"{"a":"x"#, r#"{"a":2}"#])),
            (&json, "{\"a\":1}{\"a\":2}", ok(&[r#"{"a":1}{"a":2}"#])),
            (&json, "", vec![]),
            (&json, " \n\t", vec![]),
            // Lines.
            (&csv, "1,2", ok(&["1,2"])),
            (&csv, "1,2\r\n3,4\n\n 5,6\n", ok(&["1,2", "3,4", " 5,6"])),
            (&csv, "\n\r\n", vec![]),
            (&num, "1.5\n2.5", ok(&["1.5", "2.5"])),
        ];
        for (format, payload, want) in table {
            assert_eq!(&pieces(format, payload), want, "payload {payload:?}");
        }
    }
}
