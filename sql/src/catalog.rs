//! Tables declared by `CREATE TABLE`: columns, event time, connector.

use crate::dialect::{JobStatement, WatermarkDef};
use crate::error::{Error, Result};
use crate::expr::{compile, interval_ms, span_of, sql_type, Compiled, Scope};
use crate::types::SqlType;
use sqlparser::ast::{BinaryOperator, ColumnOption, CreateTable, CreateTableOptions, Expr, Function, Ident, SqlOption};
use sqlparser::tokenizer::Span;
use std::path::PathBuf;

/// Where a table's rows come from or go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Connector {
    /// `'connector' = 'filesystem', 'path' = ..., 'format' = 'csv'` (or
    /// `'json'`: JSON lines, one object per row).
    File { path: PathBuf, json: bool },
    /// `'connector' = 'blackhole'`: a sink that discards every row.
    Blackhole,
    /// `'connector' = 'print'`: standard output, as Flink's print sink.
    Print { identifier: Option<String> },
    /// `'connector' = 'mqtt'`: messages on a broker (source or sink).
    Mqtt(Box<MqttTable>),
}

/// An MQTT table's options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MqttTable {
    /// `'url'`: `mqtt://host:port`.
    pub(crate) url: String,
    /// `'topic'`: a template whose `{column}` levels carry column values.
    pub(crate) topic: String,
    /// `'format'`: `json` (an object, an array of them or JSON lines per
    /// message) or `csv` (lines of the physical columns in order).
    pub(crate) csv: bool,
    /// `'client-id'` (default `rivulet-sql-<table>`): the broker keeps the
    /// session under it.
    pub(crate) client_id: String,
    /// `'protocol'`: `5` (default) or `3.1.1`.
    pub(crate) v311: bool,
    /// `'qos'`: 0, 1 (default) or 2.
    pub(crate) qos: u8,
    /// `'dead-letter-topic'` (source): malformed messages are republished there.
    pub(crate) dead_letter: Option<String>,
    /// `'share-group'` (source): `$share/<group>/...`.
    pub(crate) share_group: Option<String>,
    /// `'scan.stop-after-idle'` (source): end of input after this long
    /// without a message, in ms.
    pub(crate) stop_after_idle_ms: Option<u64>,
}

impl MqttTable {
    /// The broker session under `client_id`.
    pub(crate) fn session(&self, client_id: &str) -> rivulet::mqtt::Session {
        let mut s = rivulet::mqtt::Session::new(self.url.clone(), client_id.to_owned());
        if self.v311 {
            s.protocol = rivulet::mqtt::Protocol::V311;
        }
        s
    }

    /// The runtime's source settings; `columns` are the physical columns
    /// (those of the topic template among them).
    pub(crate) fn source_config(&self, columns: &[String]) -> rivulet::source::mqtt::MqttSourceConfig {
        let mut c = rivulet::source::mqtt::MqttSourceConfig::new(self.url.clone(), self.client_id.clone(), &self.topic);
        c.session = self.session(&self.client_id);
        c.qos = self.qos;
        c.payload = if self.csv {
            rivulet::source::mqtt::PayloadFormat::Csv { columns: columns.to_vec() }
        } else {
            rivulet::source::mqtt::PayloadFormat::Json
        };
        c.dead_letter = self.dead_letter.clone();
        c.share_group = self.share_group.clone();
        c.stop_after_idle_ms = self.stop_after_idle_ms;
        c
    }
}

/// A declared table.
#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) at: Span,
    /// Physical columns first (those the connector reads or writes), then
    /// computed ones.
    pub(crate) columns: Vec<(String, SqlType)>,
    pub(crate) physical: usize,
    /// The computed columns' expressions over the physical ones, with the
    /// text they were written as.
    pub(crate) computed: Vec<(Compiled, String)>,
    /// The event-time column and the watermark delay in ms.
    pub(crate) rowtime: Option<(usize, i64)>,
    pub(crate) connector: Connector,
}

/// A table's columns as a scope for its computed columns and queries.
pub(crate) struct Columns<'a> {
    pub(crate) table: &'a str,
    pub(crate) columns: &'a [(String, SqlType)],
    /// What an aggregate here would be, for its error (`None`: allowed
    /// nowhere, e.g. a computed column).
    pub(crate) place: &'a str,
}

impl Scope for Columns<'_> {
    fn column(&self, id: &Ident, span: Span) -> Result<(usize, SqlType)> {
        lookup(self.table, self.columns, id, span)
    }

    fn aggregate(&mut self, f: &Function, span: Span) -> Result<(usize, SqlType)> {
        Err(Error::at(span, format!("aggregate function {} is not allowed in {}", f.name, self.place)))
    }
}

/// The position and type of column `id` of `table`.
pub(crate) fn lookup(table: &str, columns: &[(String, SqlType)], id: &Ident, span: Span) -> Result<(usize, SqlType)> {
    let span = if id.span.start.line == 0 { span } else { id.span };
    if let Some(i) = columns.iter().position(|(n, _)| *n == id.value) {
        return Ok((i, columns[i].1));
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let hint = match columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(&id.value)) {
        Some((n, _)) => format!(" (names are case-sensitive: did you mean `{n}`?)"),
        None => String::new(),
    };
    Err(Error::at(span, format!("unknown column `{}` in {table} (columns: {}){hint}", id.value, names.join(", "))))
}

/// Builds a table from its `CREATE TABLE`.
pub(crate) fn table(s: &JobStatement, t: &CreateTable) -> Result<Table> {
    let name = t.name.to_string();
    let mut columns = Vec::new();
    let mut computed_exprs = Vec::new();
    for c in &t.columns {
        let span = if c.name.span.start.line == 0 { s.at } else { c.name.span };
        if columns
            .iter()
            .chain(computed_exprs.iter().map(|(n, _, _)| n))
            .any(|(n, _): &(String, SqlType)| *n == c.name.value)
        {
            return Err(Error::at(span, format!("column `{}` is declared twice", c.name.value)));
        }
        let generated = c.options.iter().find_map(|o| match &o.option {
            ColumnOption::Generated { generation_expr: Some(e), .. } => Some(e),
            _ => None,
        });
        match generated {
            Some(e) => computed_exprs.push(((c.name.value.clone(), SqlType::Boolean), e, span)),
            None => {
                if !computed_exprs.is_empty() {
                    return Err(Error::at(span, "physical columns come before computed ones (`name AS expr`)"));
                }
                columns.push((c.name.value.clone(), sql_type(&c.data_type, span)?));
            }
        }
    }
    let physical = columns.len();
    let mut computed = Vec::new();
    for ((cname, _), e, span) in computed_exprs {
        // A computed column sees the physical columns (as in Flink).
        let mut scope = Columns { table: &name, columns: &columns[..physical], place: "a computed column" };
        let c = compile(e, &mut scope, span)?;
        columns.push((cname, c.ty));
        computed.push((c, e.to_string()));
    }
    let rowtime = s.watermark.as_ref().map(|w| watermark(&name, &columns, w, s.at)).transpose()?;
    let connector = connector(&name, t, s.at, &columns[..physical])?;
    Ok(Table { name, at: s.at, columns, physical, computed, rowtime, connector })
}

/// `WATERMARK FOR ts AS ts - INTERVAL 'n' unit` (or `AS ts`: no delay).
fn watermark(table: &str, columns: &[(String, SqlType)], w: &WatermarkDef, at: Span) -> Result<(usize, i64)> {
    let span = if w.column.span.start.line == 0 { at } else { w.column.span };
    let (i, ty) = lookup(table, columns, &w.column, span)?;
    if !ty.is_timestamp() {
        return Err(Error::at(
            span,
            format!(
                "type mismatch: the WATERMARK FOR column `{}` is {ty}; it must be TIMESTAMP(3) or TIMESTAMP_LTZ(3)",
                w.column.value
            ),
        ));
    }
    let espan = span_of(&w.expr, span);
    let same = |e: &Expr| matches!(e, Expr::Identifier(id) if id.value == w.column.value);
    let delay = match &w.expr {
        e if same(e) => 0,
        Expr::BinaryOp { left, op: BinaryOperator::Minus, right } if same(left) => interval_ms(right, espan)?,
        other => {
            return Err(Error::at(
                espan,
                format!(
                    "watermark `{other}` is not supported: write `{c} - INTERVAL 'n' SECOND` (or `{c}` for no delay)",
                    c = w.column.value
                ),
            ))
        }
    };
    Ok((i, delay))
}

/// The connector from the `WITH` options.
fn connector(table: &str, t: &CreateTable, at: Span, physical: &[(String, SqlType)]) -> Result<Connector> {
    let CreateTableOptions::With(opts) = &t.table_options else {
        return Err(Error::at(at, format!("table {table} needs WITH ('connector' = ...)")));
    };
    let mut kv: Vec<(String, String, Span)> = Vec::new();
    for o in opts {
        let SqlOption::KeyValue { key, value } = o else {
            return Err(Error::at(at, format!("option `{o}` of {table} is not 'key' = 'value'")));
        };
        let kspan = key.0.first().and_then(|p| p.as_ident()).map_or(at, |i| i.span);
        let Expr::Value(v) = value else {
            return Err(Error::at(kspan, format!("option {key} of {table} must be a string literal")));
        };
        let Some(text) = v.value.clone().into_string() else {
            return Err(Error::at(kspan, format!("option {key} of {table} must be a string literal")));
        };
        let k = key.to_string().trim_matches('\'').to_string();
        if kv.iter().any(|(n, _, _)| *n == k) {
            return Err(Error::at(kspan, format!("option '{k}' of {table} is given twice")));
        }
        kv.push((k, text, kspan));
    }
    let get = |k: &str| kv.iter().find(|(n, _, _)| n == k);
    let Some((_, conn, cspan)) = get("connector") else {
        return Err(Error::at(
            at,
            format!("table {table} has no 'connector' option (supported: filesystem, mqtt, print, blackhole)"),
        ));
    };
    let known: &[&str] = match conn.as_str() {
        "filesystem" => &["connector", "path", "format"],
        "print" => &["connector", "print-identifier"],
        "blackhole" => &["connector"],
        "mqtt" => &[
            "connector",
            "url",
            "topic",
            "format",
            "client-id",
            "protocol",
            "qos",
            "dead-letter-topic",
            "share-group",
            "scan.stop-after-idle",
        ],
        other => {
            return Err(Error::at(
                *cspan,
                format!("connector '{other}' is not supported (supported: filesystem, mqtt, print, blackhole)"),
            ))
        }
    };
    if let Some((k, _, span)) = kv.iter().find(|(k, _, _)| !known.contains(&k.as_str())) {
        return Err(Error::at(
            *span,
            format!("unknown option '{k}' for connector '{conn}' of {table} (known: {})", known.join(", ")),
        ));
    }
    match conn.as_str() {
        "filesystem" => {
            let Some((_, path, _)) = get("path") else {
                return Err(Error::at(*cspan, format!("connector 'filesystem' of {table} needs a 'path' option")));
            };
            let json = match get("format") {
                Some((_, f, _)) if f == "csv" => false,
                Some((_, f, _)) if f == "json" => true,
                Some((_, f, span)) => {
                    return Err(Error::at(
                        *span,
                        format!("format '{f}' of {table} is not supported (supported: csv, json)"),
                    ))
                }
                None => {
                    return Err(Error::at(
                        *cspan,
                        format!("connector 'filesystem' of {table} needs a 'format' option ('csv' or 'json')"),
                    ))
                }
            };
            if path.is_empty() {
                return Err(Error::at(*cspan, format!("option 'path' of {table} is empty")));
            }
            Ok(Connector::File { path: PathBuf::from(path), json })
        }
        "blackhole" => Ok(Connector::Blackhole),
        "mqtt" => mqtt(table, &kv, *cspan, physical).map(|m| Connector::Mqtt(Box::new(m))),
        _ => Ok(Connector::Print { identifier: get("print-identifier").map(|(_, v, _)| v.clone()) }),
    }
}

/// The options of an MQTT table, checked as the runtime checks its flags
/// (errors name the option).
fn mqtt(table: &str, kv: &[(String, String, Span)], cspan: Span, physical: &[(String, SqlType)]) -> Result<MqttTable> {
    let get = |k: &str| kv.iter().find(|(n, _, _)| n == k).map(|(_, v, s)| (v.as_str(), *s));
    let need =
        |k: &str| get(k).ok_or_else(|| Error::at(cspan, format!("connector 'mqtt' of {table} needs a '{k}' option")));
    let (url, _) = need("url")?;
    let (topic, _) = need("topic")?;
    let csv = match need("format")? {
        ("json", _) => false,
        ("csv", _) => true,
        (f, span) => {
            return Err(Error::at(span, format!("format '{f}' of {table} is not supported (supported: json, csv)")))
        }
    };
    let v311 = match get("protocol") {
        None | Some(("5", _)) => false,
        Some(("3.1.1", _)) => true,
        Some((p, span)) => {
            return Err(Error::at(span, format!("option 'protocol' of {table}: '{p}' is neither '5' nor '3.1.1'")))
        }
    };
    let qos = match get("qos") {
        None => 1,
        Some((q, span)) => match q.parse::<u8>() {
            Ok(q) if q <= 2 => q,
            _ => return Err(Error::at(span, format!("option 'qos' of {table}: '{q}' is not 0, 1 or 2"))),
        },
    };
    let stop_after_idle_ms = match get("scan.stop-after-idle") {
        None => None,
        Some((d, span)) => match rivulet::time::parse_duration("scan.stop-after-idle", d) {
            Ok(d) if !d.is_zero() => Some(d.as_millis() as u64),
            _ => {
                return Err(Error::at(
                    span,
                    format!(
                        "option 'scan.stop-after-idle' of {table}: '{d}' is not a duration above zero (e.g. '10s')"
                    ),
                ))
            }
        },
    };
    let m = MqttTable {
        url: url.to_owned(),
        topic: topic.to_owned(),
        csv,
        client_id: get("client-id").map_or_else(|| format!("rivulet-sql-{table}"), |(c, _)| c.to_owned()),
        v311,
        qos,
        dead_letter: get("dead-letter-topic").map(|(d, _)| d.to_owned()),
        share_group: get("share-group").map(|(g, _)| g.to_owned()),
        stop_after_idle_ms,
    };
    // The runtime's own checks, with its field names mapped to the options.
    let names: Vec<String> = physical.iter().map(|(n, _)| n.clone()).collect();
    let mut cfg = m.source_config(&names);
    let template =
        rivulet::mqtt::TopicTemplate::parse("topic", topic).map_err(|e| option_error(table, kv, cspan, e))?;
    cfg.topic_fields = template.fields().map(str::to_owned).collect();
    if let Some(f) = cfg.topic_fields.iter().find(|f| !names.contains(f)) {
        let span = get("topic").map_or(cspan, |(_, s)| s);
        return Err(Error::at(
            span,
            format!("option 'topic' of {table}: `{{{f}}}` is not a physical column (columns: {})", names.join(", ")),
        ));
    }
    cfg.validate().map_err(|e| option_error(table, kv, cspan, e))?;
    Ok(m)
}

/// A runtime config error as the SQL option it comes from.
fn option_error(table: &str, kv: &[(String, String, Span)], cspan: Span, e: rivulet::Error) -> Error {
    let rivulet::Error::Config { field, reason } = e else { return Error::at(cspan, format!("table {table}: {e}")) };
    let option = match field {
        "url" => "url",
        "client_id" => "client-id",
        "topic" | "--topic" => "topic",
        "share_group" => "share-group",
        "--dead-letter" => "dead-letter-topic",
        "qos" => "qos",
        other => other,
    };
    let span = kv.iter().find(|(n, _, _)| n == option).map_or(cspan, |(_, _, s)| *s);
    Error::at(span, format!("option '{option}' of {table}: {reason}"))
}
