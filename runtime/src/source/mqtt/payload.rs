//! Reading decoding: a JSON object, a CSV line, or a bare number, read
//! through a field mapping and the fields the topic template captured. A
//! payload carrying several readings is cut into them first (`batch`).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// How a reading is laid out (a payload may carry several: see `batch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PayloadFormat {
    /// A JSON object; fields are its top-level keys. A payload holds one,
    /// an array of them, or one per line.
    Json,
    /// A CSV line without quoting, one reading per line; fields are named
    /// by `columns`.
    Csv {
        /// Column names, in order.
        columns: Vec<String>,
    },
    /// A bare number (e.g. `71.35`), one reading per line, read as the
    /// field `field`.
    Number {
        /// The field name the number is known by.
        field: String,
    },
}

impl PayloadFormat {
    /// Parses `json`, `csv:a,b,c` or `number:field`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "json" => Ok(Self::Json),
            Some(("csv", cols)) if !cols.is_empty() => {
                Ok(Self::Csv { columns: cols.split(',').map(|c| c.trim().to_string()).collect() })
            }
            Some(("number", f)) if !f.is_empty() => Ok(Self::Number { field: f.to_string() }),
            _ => Err(format!("`{text}`: use json, csv:COL,COL,... or number:FIELD")),
        }
    }
}

enum Body<'a> {
    Json(serde_json::Map<String, serde_json::Value>),
    Csv(&'a [String], Vec<&'a str>),
    Number(&'a str, &'a str),
}

/// One message's fields, as a source's parse function sees them.
pub struct Fields<'a> {
    topic: &'a [(&'a str, &'a str)],
    body: Body<'a>,
    rename: &'a BTreeMap<String, String>,
}

impl<'a> Fields<'a> {
    pub(crate) fn decode(
        format: &'a PayloadFormat,
        rename: &'a BTreeMap<String, String>,
        topic: &'a [(&'a str, &'a str)],
        payload: &'a [u8],
    ) -> Result<Self, String> {
        let text = || std::str::from_utf8(payload).map_err(|_| "payload is not UTF-8".to_string());
        let body = match format {
            PayloadFormat::Json => match serde_json::from_slice(payload) {
                Ok(serde_json::Value::Object(m)) => Body::Json(m),
                Ok(_) => return Err("payload is JSON but not an object".into()),
                Err(e) => return Err(format!("payload is not JSON: {e}")),
            },
            PayloadFormat::Csv { columns } => {
                let t = text()?.trim_end_matches(['\r', '\n']);
                let vals: Vec<&str> = t.split(',').collect();
                if vals.len() != columns.len() {
                    return Err(format!("expected {} CSV fields, found {}", columns.len(), vals.len()));
                }
                Body::Csv(columns, vals)
            }
            PayloadFormat::Number { field } => Body::Number(field, text()?.trim()),
        };
        Ok(Self { topic, body, rename })
    }

    fn raw(&self, name: &str) -> Result<Raw<'_>, String> {
        if let Some((_, v)) = self.topic.iter().find(|(n, _)| *n == name) {
            return Ok(Raw::Text(v));
        }
        let key = self.rename.get(name).map_or(name, String::as_str);
        let missing = || format!("missing field `{key}`");
        match &self.body {
            Body::Json(m) => m.get(key).map(Raw::Json).ok_or_else(missing),
            Body::Csv(cols, vals) => {
                cols.iter().position(|c| c == key).and_then(|i| vals.get(i)).map(|v| Raw::Text(v)).ok_or_else(missing)
            }
            Body::Number(f, v) if *f == key => Ok(Raw::Text(v)),
            Body::Number(..) => Err(missing()),
        }
    }

    /// A field as text (topic fields, strings, numbers).
    ///
    /// # Errors
    /// Missing, or not a scalar.
    pub fn str(&self, name: &str) -> Result<Cow<'_, str>, String> {
        match self.raw(name)? {
            Raw::Text(t) => Ok(Cow::Borrowed(t)),
            Raw::Json(serde_json::Value::String(s)) => Ok(Cow::Borrowed(s)),
            Raw::Json(serde_json::Value::Number(n)) => Ok(Cow::Owned(n.to_string())),
            Raw::Json(v) => Err(format!("field `{name}` is {}, not text", kind(v))),
        }
    }

    /// A field as text, or `None` when it is missing or JSON `null` (a
    /// reader with a schema, such as an SQL table, takes that as NULL);
    /// JSON booleans read as `true` / `false`.
    ///
    /// # Errors
    /// An array or object.
    pub fn text_or_null(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        let raw = match self.raw(name) {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        match raw {
            Raw::Json(serde_json::Value::Null) => Ok(None),
            Raw::Json(serde_json::Value::Bool(b)) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
            _ => self.str(name).map(Some),
        }
    }

    /// A field as an integer.
    ///
    /// # Errors
    /// Missing or not an integer.
    pub fn i64(&self, name: &str) -> Result<i64, String> {
        match self.raw(name)? {
            Raw::Text(t) => t.trim().parse().map_err(|_| format!("field `{name}` = `{t}` is not an integer")),
            Raw::Json(serde_json::Value::Number(n)) => {
                n.as_i64().ok_or_else(|| format!("field `{name}` = {n} is not an integer"))
            }
            Raw::Json(v) => Err(format!("field `{name}` is {}, not an integer", kind(v))),
        }
    }

    /// A field as a finite number.
    ///
    /// # Errors
    /// Missing, not a number, or not finite.
    pub fn f64(&self, name: &str) -> Result<f64, String> {
        let v = match self.raw(name)? {
            Raw::Text(t) => t.trim().parse().map_err(|_| format!("field `{name}` = `{t}` is not a number"))?,
            Raw::Json(serde_json::Value::Number(n)) => {
                n.as_f64().ok_or_else(|| format!("field `{name}` = {n} is not a number"))?
            }
            Raw::Json(v) => return Err(format!("field `{name}` is {}, not a number", kind(v))),
        };
        if !f64::is_finite(v) {
            return Err(format!("field `{name}` is not finite"));
        }
        Ok(v)
    }
}

enum Raw<'a> {
    Text(&'a str),
    Json(&'a serde_json::Value),
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_csv_number_and_mapping() {
        let none = BTreeMap::new();
        let topic = [("sensor_id", "s1")];
        let f = Fields::decode(&PayloadFormat::Json, &none, &topic, br#"{"ts_ms": 17, "temp_f": 71.5}"#).unwrap();
        assert_eq!(f.str("sensor_id").unwrap(), "s1");
        assert_eq!(f.i64("ts_ms").unwrap(), 17);
        assert_eq!(f.f64("temp_f").unwrap(), 71.5);
        assert!(f.f64("nope").unwrap_err().contains("missing"));
        assert!(Fields::decode(&PayloadFormat::Json, &none, &topic, b"{oops").is_err());
        let bad = Fields::decode(&PayloadFormat::Json, &none, &topic, br#"{"ts_ms": "x"}"#).unwrap();
        assert!(bad.i64("ts_ms").is_err());

        let csv = PayloadFormat::parse("csv:ts,t").unwrap();
        let mut rename = BTreeMap::new();
        rename.insert("temp_f".to_string(), "t".to_string());
        let f = Fields::decode(&csv, &rename, &topic, b"5,1.5\n").unwrap();
        assert_eq!(f.i64("ts").unwrap(), 5);
        assert_eq!(f.f64("temp_f").unwrap(), 1.5);

        let num = PayloadFormat::parse("number:temp_f").unwrap();
        let f = Fields::decode(&num, &none, &topic, b" 3.25 ").unwrap();
        assert_eq!(f.f64("temp_f").unwrap(), 3.25);
        assert!(PayloadFormat::parse("xml").is_err());
    }

    #[test]
    fn text_or_null_reads_missing_and_null_as_none() {
        let none = BTreeMap::new();
        let topic = [("sensor_id", "s1")];
        let payload = br#"{"a": null, "b": true, "c": 2.5, "d": "x", "e": [1]}"#;
        let f = Fields::decode(&PayloadFormat::Json, &none, &topic, payload).unwrap();
        assert_eq!(f.text_or_null("a").unwrap(), None);
        assert_eq!(f.text_or_null("missing").unwrap(), None);
        assert_eq!(f.text_or_null("b").unwrap().as_deref(), Some("true"));
        assert_eq!(f.text_or_null("c").unwrap().as_deref(), Some("2.5"));
        assert_eq!(f.text_or_null("d").unwrap().as_deref(), Some("x"));
        assert_eq!(f.text_or_null("sensor_id").unwrap().as_deref(), Some("s1"));
        assert!(f.text_or_null("e").unwrap_err().contains("an array"));
    }
}
