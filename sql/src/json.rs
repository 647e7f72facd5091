//! Rows in MQTT messages: a table's physical columns read from a
//! message's fields (a JSON object's keys, the topic's `{column}` levels,
//! or CSV fields), and a row written as a JSON object (Flink's `json`
//! format: missing keys and `null` are NULL; timestamps as text, e.g.
//! `"2023-11-14 22:13:25.5"`, with a `Z` for TIMESTAMP_LTZ).

use crate::expr::{parse_value, render, Render};
use crate::types::{SqlType, Value};
use rivulet::source::mqtt::Fields;

/// The physical columns `names` (of `types`) of one reading.
///
/// # Errors
/// A field that is not a value of its column's type, as a sentence for the
/// bad-input report.
pub(crate) fn parse_fields(f: &Fields<'_>, names: &[String], types: &[SqlType]) -> Result<Vec<Value>, String> {
    let mut row = Vec::with_capacity(types.len() + 2);
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

/// Appends `row` as a JSON object of the columns `names`, and a newline.
pub(crate) fn json_row(row: &[Value], names: &[String], types: &[SqlType], out: &mut Vec<u8>) {
    let mut obj = serde_json::Map::with_capacity(names.len());
    let mut text = String::new();
    for ((v, ty), name) in row.iter().zip(types).zip(names) {
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
        obj.insert(name.clone(), j);
    }
    // A map of JSON values always serialises.
    if serde_json::to_writer(&mut *out, &obj).is_ok() {
        out.push(b'\n');
    }
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
