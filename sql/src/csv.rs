//! Flink's `csv` format: one row per line, fields separated by commas,
//! a field quoted with `"` when it holds a comma, quote or line break
//! (quotes doubled inside).

use crate::expr::{parse_value, render, Render};
use crate::types::{Row, SqlType, Value};

/// Splits a line into fields, unquoting quoted ones.
///
/// # Errors
/// An unterminated quoted field.
pub(crate) fn split(line: &str) -> Result<Vec<std::borrow::Cow<'_, str>>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        if let Some(q) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut chars = q.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if q[i + 1..].starts_with('"') {
                            field.push('"');
                            chars.next();
                        } else {
                            break &q[i + 1..];
                        }
                    }
                    Some((_, c)) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            };
            out.push(std::borrow::Cow::Owned(field));
            match after.strip_prefix(',') {
                Some(r) => rest = r,
                None if after.is_empty() => return Ok(out),
                None => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.split_once(',') {
                Some((f, r)) => {
                    out.push(std::borrow::Cow::Borrowed(f));
                    rest = r;
                }
                None => {
                    out.push(std::borrow::Cow::Borrowed(rest));
                    return Ok(out);
                }
            }
        }
    }
}

/// Parses a line into the physical columns `types` (named `names`),
/// appended to the empty `row`.
///
/// # Errors
/// The wrong number of fields, or a field that is not a value of its
/// column's type, as a sentence for the bad-input report.
pub(crate) fn parse_row(text: &str, names: &[String], types: &[SqlType], row: &mut Row) -> Result<(), String> {
    // Room for the computed columns too (a no-op while they fit inline).
    row.reserve(types.len() + 2);
    // The fields are the text between commas, read in place, unless a
    // quote turns up (in the same pass that finds the commas). The pass
    // only notes where it stopped: the message is made on the cold path.
    let mut at = 0;
    let mut bad = None;
    let unquoted = rivulet::text::split_commas_unquoted(text, |f| {
        let Some(&ty) = types.get(at) else {
            at += 1;
            return true;
        };
        at += 1;
        match parse_value(f, ty) {
            Some(v) => {
                row.push(v);
                true
            }
            // Empty is NULL (a STRING is never `None`).
            None if f.is_empty() => {
                row.push(Value::Null);
                true
            }
            None => {
                bad = Some(f);
                false
            }
        }
    });
    // A bad field may stop the pass before a later quote: such a line is
    // judged as a quoted one, field count first.
    if unquoted.is_none() || (bad.is_some() && text.contains('"')) {
        row.clear();
        return parse_quoted(text, names, types, row);
    }
    if let Some(f) = bad {
        return Err(not_a(f, types[at - 1], &names[at - 1]));
    }
    if at != types.len() {
        return Err(wrong_count(names, at));
    }
    Ok(())
}

/// [`parse_row`] of a line whose fields between commas the source found
/// already, in the pass that found its end (`fields`; `None` when the line
/// holds a quote or more fields than the source hands over).
///
/// # Errors
/// As [`parse_row`].
#[inline]
pub(crate) fn parse_split(
    text: &str,
    fields: Option<&[&str]>,
    names: &[String],
    types: &[SqlType],
    row: &mut Row,
) -> Result<(), String> {
    let Some(fields) = fields else { return parse_row(text, names, types, row) };
    row.reserve(types.len() + 2);
    for (at, (f, &ty)) in fields.iter().zip(types).enumerate() {
        match parse_value(f, ty) {
            Some(v) => row.push(v),
            // Empty is NULL (a STRING is never `None`).
            None if f.is_empty() => row.push(Value::Null),
            None => return Err(not_a(f, ty, &names[at])),
        }
    }
    if fields.len() != types.len() {
        return Err(wrong_count(names, fields.len()));
    }
    Ok(())
}

/// Whether [`read_plain`] reads rows of these columns: every type but
/// the timestamps (whose text has a space in it, which ends a plain
/// field anyway).
pub(crate) fn reads_plain(types: &[SqlType]) -> bool {
    !types.is_empty() && types.iter().all(|t| !matches!(t, SqlType::Timestamp | SqlType::TimestampLtz))
}

/// The physical columns `types` of the line at the start of `text`,
/// appended to the empty `row`, when the line has their plain shape (see
/// [`rivulet::text::PlainFields`]): its length with its `\n`. `None`
/// leaves the line to [`parse_split`], which gives the same row for every
/// line read here, and the error for the lines that are wrong.
#[inline]
pub(crate) fn read_plain(text: &str, types: &[SqlType], row: &mut Row) -> Option<usize> {
    let mut fields = rivulet::text::PlainFields::new(text.as_bytes());
    let last = types.len() - 1;
    for (at, &ty) in types.iter().enumerate() {
        let start = fields.consumed();
        let f = fields.next(if at == last { b'\n' } else { b',' })?;
        row.push(match ty {
            // Empty is the empty string, as the general path reads it.
            SqlType::String => Value::Str(text.get(start..start + f.len())?.into()),
            _ => plain_value(f, ty)?,
        });
    }
    Some(fields.consumed())
}

/// A plain field of a column other than STRING as [`parse_value`] reads
/// it (empty is NULL); `None` for text it leaves to the general path.
#[inline(always)]
fn plain_value(f: &[u8], ty: SqlType) -> Option<Value> {
    use rivulet::text::{parse_f64_short, parse_i64_bytes};
    if f.is_empty() {
        return Some(Value::Null);
    }
    Some(match ty {
        SqlType::BigInt => Value::BigInt(parse_i64_bytes(f)?),
        SqlType::Int => Value::Int(i32::try_from(parse_i64_bytes(f)?).ok()?),
        // The short path's values are std's.
        SqlType::Double => Value::Double(parse_f64_short(f)?),
        SqlType::Boolean => match f {
            b"true" => Value::Bool(true),
            b"false" => Value::Bool(false),
            _ => return None,
        },
        SqlType::String | SqlType::Timestamp | SqlType::TimestampLtz => return None,
    })
}

/// [`parse_row`] of a line that holds a quote.
#[cold]
fn parse_quoted(text: &str, names: &[String], types: &[SqlType], row: &mut Row) -> Result<(), String> {
    let fields = split(text)?;
    if fields.len() != types.len() {
        return Err(wrong_count(names, fields.len()));
    }
    for ((f, ty), name) in fields.iter().zip(types).zip(names) {
        row.push(field(f, *ty, name)?);
    }
    Ok(())
}

fn wrong_count(names: &[String], found: usize) -> String {
    format!("expected {} fields ({}), found {found}", names.len(), names.join(","))
}

/// One field of column `name`: empty is NULL but for STRING (the empty
/// string).
#[inline]
fn field(f: &str, ty: SqlType, name: &str) -> Result<Value, String> {
    if f.is_empty() && ty != SqlType::String {
        return Ok(Value::Null);
    }
    parse_value(f, ty).ok_or_else(|| not_a(f, ty, name))
}

#[cold]
fn not_a(f: &str, ty: SqlType, name: &str) -> String {
    format!("{name} `{f}` is not a {ty}")
}

/// Appends `row` as a CSV line.
pub(crate) fn write_row(row: &[Value], types: &[SqlType], out: &mut Vec<u8>) {
    let mut s = String::with_capacity(64);
    let mut field = String::new();
    for (i, (v, ty)) in row.iter().zip(types).enumerate() {
        if i > 0 {
            s.push(',');
        }
        field.clear();
        render(v, *ty, &mut field, Render::Csv);
        // Flink's CSV writer (Jackson) quotes a text value holding any
        // character below `-` (space, comma, quote, line breaks, ...):
        // a TIMESTAMP's space too. Numbers and booleans never.
        let text = matches!(v, Value::Str(_) | Value::Ts(_));
        if text && field.chars().any(|c| c < '-') {
            s.push('"');
            s.push_str(&field.replace('"', "\"\""));
            s.push('"');
        } else {
            s.push_str(&field);
        }
    }
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}

/// Appends `row` as Flink's print connector shows an insert:
/// `[id> ]+I[a, b, c]`.
pub(crate) fn print_row(row: &[Value], types: &[SqlType], identifier: Option<&str>, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(64);
    if let Some(id) = identifier {
        s.push_str(id);
        s.push_str("> ");
    }
    s.push_str("+I[");
    for (i, (v, ty)) in row.iter().zip(types).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        render(v, *ty, &mut s, Render::Print);
    }
    s.push_str("]\n");
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_read_as_std_reads_them() {
        for t in [
            "0",
            "-0",
            "+7",
            "-9223372036854775808",
            "9223372036854775807",
            "9223372036854775808",
            "1a",
            "-",
            "+",
            "",
            " 5",
            "2147483648",
            "-2147483649",
        ] {
            let types = [SqlType::BigInt, SqlType::Int];
            for ty in types {
                let ours = crate::expr::parse_value(t, ty);
                let std = match ty {
                    SqlType::Int => t.trim().parse::<i32>().ok().map(Value::Int),
                    _ => t.trim().parse::<i64>().ok().map(Value::BigInt),
                };
                assert_eq!(ours, std, "{t:?} as {ty}");
            }
        }
    }

    #[test]
    fn field_counts_are_checked_with_and_without_quotes() {
        let names = ["a".to_string(), "b".to_string()];
        let types = [SqlType::String, SqlType::BigInt];
        assert_eq!(parse_row("x,1", &names, &types).unwrap().as_slice(), [Value::Str("x".into()), Value::BigInt(1)]);
        assert_eq!(parse_row("\"x,y\",", &names, &types).unwrap().as_slice(), [Value::Str("x,y".into()), Value::Null]);
        for (line, found) in [("x", 1), ("x,1,2", 3), ("\"x\",1,2", 3)] {
            assert_eq!(parse_row(line, &names, &types).unwrap_err(), format!("expected 2 fields (a,b), found {found}"));
        }
    }

    use super::*;

    fn parse_row(text: &str, names: &[String], types: &[SqlType]) -> Result<Row, String> {
        let mut row = Row::new();
        super::parse_row(text, names, types, &mut row).map(|()| row)
    }

    fn parse_quoted(text: &str, names: &[String], types: &[SqlType]) -> Result<Row, String> {
        let mut row = Row::new();
        super::parse_quoted(text, names, types, &mut row).map(|()| row)
    }

    /// What a line means: quoted CSV when it holds a quote anywhere, the
    /// text between commas otherwise.
    fn reference(line: &str, names: &[String], types: &[SqlType]) -> Result<Row, String> {
        if line.contains('"') {
            return parse_quoted(line, names, types);
        }
        // The first bad field, then the count.
        let fields: Vec<&str> = line.split(',').collect();
        let row: Result<Row, String> =
            fields.iter().zip(types).zip(names).map(|((f, ty), name)| field(f, *ty, name)).collect();
        if row.is_ok() && fields.len() != types.len() {
            return Err(wrong_count(names, fields.len()));
        }
        row
    }

    proptest::proptest! {
        #[test]
        fn any_line_reads_as_its_quoting_says(line in "[a1,.\" e-]{0,24}") {
            let names = ["s".to_string(), "n".to_string(), "d".to_string()];
            let types = [SqlType::String, SqlType::BigInt, SqlType::Double];
            proptest::prop_assert_eq!(parse_row(&line, &names, &types), reference(&line, &names, &types), "{}", line);
            // Split by the source when it holds no quote, as read whole.
            let fields: Vec<&str> = line.split(',').collect();
            let split = (!line.contains('"')).then_some(&fields[..]);
            let mut row = Row::new();
            let read = super::parse_split(&line, split, &names, &types, &mut row).map(|()| row);
            proptest::prop_assert_eq!(read, reference(&line, &names, &types), "{}", line);
        }
    }

    /// Fields of every type [`read_plain`] reads, and text it must leave.
    const PIECES: &[&str] = &[
        "",
        "a",
        "B-s0",
        "é",
        "x y",
        "\"q\"",
        "7",
        "-3",
        "+1",
        "007",
        "2147483648",
        "-2147483649",
        "1.5",
        "-0.25",
        "88.78999999999999",
        "1e5",
        ".5",
        "5.",
        "true",
        "false",
        "TRUE",
        "nan",
        "inf",
        "\r",
    ];

    proptest::proptest! {
        #[test]
        fn plain_lines_read_as_the_general_path_reads_them(
            picks in proptest::collection::vec(0..PIECES.len(), 0..7),
            next in "[a1,\n]{0,6}",
        ) {
            let names: Vec<String> = ["s", "n", "d", "i", "b"].iter().map(|n| n.to_string()).collect();
            let types = [SqlType::String, SqlType::BigInt, SqlType::Double, SqlType::Int, SqlType::Boolean];
            let line = picks.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join(",");
            let bytes = format!("{line}\n{next}");
            let mut row = Row::new();
            if let Some(len) = read_plain(&bytes, &types, &mut row) {
                proptest::prop_assert_eq!(len, line.len() + 1, "{:?}", line);
                let fields: Vec<&str> = line.split(',').collect();
                let mut general = Row::new();
                super::parse_split(&line, Some(&fields), &names, &types, &mut general).unwrap();
                proptest::prop_assert_eq!(row, general, "{:?}", line);
            }
        }
    }

    #[test]
    fn plain_lines_are_taken_and_others_left() {
        let types = [SqlType::String, SqlType::BigInt, SqlType::Double, SqlType::Int, SqlType::Boolean];
        let read = |line: &str| {
            let mut row = Row::new();
            read_plain(line, &types, &mut row).map(|n| (n, row))
        };
        let (n, row) = read("s-1,1700000000123,88.78999999999999,-7,true\nnext").unwrap();
        assert_eq!(n, 44);
        let want = [Value::Str("s-1".into()), Value::BigInt(1_700_000_000_123), Value::Double(88.78999999999999)];
        assert_eq!(row[..3], want);
        assert_eq!(row[3..], [Value::Int(-7), Value::Bool(true)]);
        let (_, row) = read(",,,,\n").unwrap();
        assert_eq!(row.as_slice(), [Value::Str("".into()), Value::Null, Value::Null, Value::Null, Value::Null]);
        for line in [
            "a,1,2.5,3,true",       // no line end
            "a,1,2.5,3,true\r\n",   // CRLF
            "a,1,2.5,3\n",          // a field short
            "a,1,2.5,3,true,x\n",   // a field over
            "\"a\",1,2.5,3,true\n", // quoted
            "a,+1,2.5,3,true\n",    // a sign the general path takes
            "a,1,1e5,3,true\n",     // an exponent
            "a,1,2.5,2147483648,true\n",
            "a,1,2.5,3,TRUE\n",
            "a,x,2.5,3,true\n",
        ] {
            assert_eq!(read(line), None, "{line:?}");
        }
        assert!(!reads_plain(&[SqlType::String, SqlType::TimestampLtz]));
        assert!(!reads_plain(&[]));
        assert!(reads_plain(&types));
    }

    #[test]
    fn a_bad_field_before_a_quote_is_judged_as_quoted() {
        let names = ["n".to_string(), "s".to_string()];
        let types = [SqlType::BigInt, SqlType::String];
        assert_eq!(parse_row("x,\"a,b\",c", &names, &types).unwrap_err(), "expected 2 fields (n,s), found 3");
        assert_eq!(parse_row("x,\"a,b\"", &names, &types).unwrap_err(), "n `x` is not a BIGINT");
        // A quote inside a field is a character of it.
        let row = parse_row("1,abcdefghijk\"", &names, &types).unwrap();
        assert_eq!(row.as_slice(), [Value::BigInt(1), Value::Str("abcdefghijk\"".into())]);
        assert_eq!(parse_row("1,\"a\"b", &names, &types).unwrap_err(), "text after a closing quote");
    }

    #[test]
    fn quoted_fields() {
        let f = split(r#"a,"b,c","say ""hi""",,x"#).unwrap();
        assert_eq!(f, ["a", "b,c", "say \"hi\"", "", "x"]);
        assert!(split("\"open").is_err());
        let mut out = Vec::new();
        let row = [Value::Str("b,c".into()), Value::Null, Value::Double(1.5), Value::Ts(1_700_000_005_000)];
        write_row(&row, &[SqlType::String, SqlType::Int, SqlType::Double, SqlType::TimestampLtz], &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\"b,c\",,1.5,\"2023-11-14 22:13:25Z\"\n");
        // Quoted as Flink's writer quotes: any character below `-`.
        let mut out = Vec::new();
        let row = [Value::Str("B-s0".into()), Value::Str("a b".into()), Value::Str("x+y".into()), Value::BigInt(-3)];
        write_row(&row, &[SqlType::String, SqlType::String, SqlType::String, SqlType::BigInt], &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "B-s0,\"a b\",\"x+y\",-3\n");
    }
}
