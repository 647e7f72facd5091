//! Flink's `json` format: a table's physical columns read from a JSON
//! object (a line of a file, or an MQTT message's fields: its keys, the
//! topic's `{column}` levels, or CSV fields), and a row written as a JSON
//! object (missing keys and `null` are NULL; timestamps as text, e.g.
//! `"2023-11-14 22:13:25.5"`, with a `Z` for TIMESTAMP_LTZ). And the
//! `blackhole` sink's output.

use crate::expr::{parse_value, render, Render};
use crate::types::{Row, SqlType, Value};
use rivulet::source::mqtt::Fields;

/// The physical columns `names` (of `types`) of one reading.
///
/// # Errors
/// A field that is not a value of its column's type, as a sentence for the
/// bad-input report.
pub(crate) fn parse_fields(f: &Fields<'_>, names: &[String], types: &[SqlType]) -> Result<Row, String> {
    let mut row = Row::with_capacity(types.len() + 2);
    for (name, ty) in names.iter().zip(types) {
        let v = match f.text_or_null(name)? {
            None => Value::Null,
            Some(t) if t.is_empty() && *ty != SqlType::String => Value::Null,
            Some(t) => parse_value(&t, *ty).ok_or_else(|| format!("{name} `{t}` is not a {ty}"))?,
        };
        row.push(v);
    }
    Ok(row)
}

/// The physical columns of one JSON-lines row.
///
/// # Errors
/// Not a JSON object, or a value not of its column's type.
pub(crate) fn parse_object(line: &[u8], names: &[String], types: &[SqlType]) -> Result<Row, String> {
    let obj = match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => return Err("a JSON value that is not an object".into()),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    let mut row = Row::with_capacity(types.len() + 2);
    for (name, ty) in names.iter().zip(types) {
        let text = match obj.get(name) {
            None | Some(serde_json::Value::Null) => {
                row.push(Value::Null);
                continue;
            }
            Some(serde_json::Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
            Some(serde_json::Value::Bool(b)) => std::borrow::Cow::Borrowed(if *b { "true" } else { "false" }),
            Some(serde_json::Value::Number(n)) => std::borrow::Cow::Owned(n.to_string()),
            Some(_) => return Err(format!("{name} is an array or object, not a {ty}")),
        };
        row.push(parse_value(&text, *ty).ok_or_else(|| format!("{name} `{text}` is not a {ty}"))?);
    }
    Ok(row)
}

/// The `blackhole` connector's output: takes every row and keeps none.
pub(crate) struct Blackhole;

impl rivulet::sink::Output for Blackhole {
    fn recover(&mut self, _committed: Option<&[u8]>) -> rivulet::Result<()> {
        Ok(())
    }
    fn publish(&mut self, _bytes: &[u8]) -> rivulet::Result<()> {
        Ok(())
    }
    fn end_epoch(&mut self) -> rivulet::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn direct(&mut self, _bytes: &[u8]) -> rivulet::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> rivulet::Result<()> {
        Ok(())
    }
}

/// Appends `row` as a JSON object of the columns `names`, in the table's
/// column order (as Flink writes them), and a newline.
pub(crate) fn json_row(row: &[Value], names: &[String], types: &[SqlType], out: &mut Vec<u8>) {
    let mut text = String::new();
    out.push(b'{');
    for (i, ((v, ty), name)) in row.iter().zip(types).zip(names).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let j = match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::BigInt(i) => serde_json::Value::from(*i),
            // NaN and infinities have no JSON number: NULL.
            Value::Double(d) => {
                serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Ts(_) => {
                text.clear();
                render(v, *ty, &mut text, Render::Csv);
                serde_json::Value::String(text.clone())
            }
        };
        // Strings and scalar values always serialise.
        let _ = serde_json::to_writer(&mut *out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, &j);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_as_json_and_back() {
        let names: Vec<String> = ["id", "n", "avg", "ok", "end", "missing"].iter().map(|s| s.to_string()).collect();
        let types =
            [SqlType::String, SqlType::BigInt, SqlType::Double, SqlType::Boolean, SqlType::Timestamp, SqlType::Int];
        let row = vec![
            Value::Str("s\"1".into()),
            Value::BigInt(7),
            Value::Double(20.5),
            Value::Bool(true),
            Value::Ts(1_700_000_005_500),
            Value::Null,
        ];
        let mut out = Vec::new();
        json_row(&row, &names, &types, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(j["id"], "s\"1");
        assert_eq!(j["n"], 7);
        assert_eq!(j["avg"], 20.5);
        assert_eq!(j["ok"], true);
        assert_eq!(j["end"], "2023-11-14 22:13:25.5");
        assert!(j["missing"].is_null());
    }
}
