//! From a job's statements to a plan, and from a plan to a runtime job.
//!
//! A job is `CREATE TABLE` statements and one `INSERT INTO sink SELECT
//! ...` (or `EXPLAIN INSERT ...`). The query is either a projection with
//! an optional `WHERE`, or a window aggregation over `TABLE(TUMBLE(...))`,
//! `TABLE(HOP(...))`, `TABLE(CUMULATE(...))` or `TABLE(SESSION(...))`
//! grouped by `window_start, window_end` and columns, or a window Top-N
//! over such an aggregation (see [`crate::topn`]).

use crate::agg::{Call, Calls, Func};
use crate::catalog::{self, lookup, Columns, Connector, Table};
use crate::dialect::{parse, JobStatement, DESCRIPTOR_ARG, PARTITION_ARG, TABLE_ARG};
use crate::error::{Error, Result};
use crate::expr::{assignable, coerce, compile, interval_ms, span_of, Compiled, Eval, Scope, AGGREGATES};
use crate::types::{Row, RowKey, SqlType, Value};
use rivulet::source::FileSource;
use rivulet::window::{Cumulate, Session, Sliding, Tumbling};
use rivulet::{DataStream, Env, JobConfig, Sink, Watermarks, Windowed};
use sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query,
    Select, SelectItem, SetExpr, Spanned, Statement, TableFactor, TableObject,
};
use sqlparser::tokenizer::Span;
use std::sync::Arc;
use std::time::Duration;

/// A planned job: ready to print (EXPLAIN) or to build onto an [`Env`].
pub struct Job {
    /// The statements as parsed, normalised (whitespace and comments do
    /// not count): part of the state directory's identity.
    text: String,
    explain: bool,
    source: Table,
    sink: Table,
    filter: Option<(Eval, String)>,
    kind: Kind,
    /// The query's output, one per sink column, typed as the sink's.
    project: Vec<(Eval, String)>,
}

enum Kind {
    /// Row by row.
    Project,
    /// A window aggregation.
    Window(Window),
    /// A window aggregation (projected by the inner SELECT) ranked per
    /// window: the job's projection is the outer SELECT's.
    TopN(Window, Vec<(Eval, String)>, crate::topn::Rank),
}

pub(crate) struct Window {
    shape: Shape,
    /// GROUP BY columns (positions in the source row) besides the window.
    keys: Vec<(usize, String)>,
    calls: Calls,
    having: Option<(Eval, String)>,
}

/// A window table function's windows, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Tumble {
        size: i64,
    },
    Hop {
        slide: i64,
        size: i64,
    },
    /// Windows from one start growing by `step` up to `size`.
    Cumulate {
        step: i64,
        size: i64,
    },
    /// Per key (the `PARTITION BY` columns), closed by `gap` without a row.
    Session {
        gap: i64,
    },
}

/// Names of the window columns, in the aggregated row's first positions.
const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];

/// Parses and plans a job.
///
/// # Errors
/// What is wrong and where: a syntax error, an unknown table or column,
/// a type mismatch, an unsupported construct or a bad connector option.
pub fn plan(sql: &str) -> Result<Job> {
    let statements = parse(sql)?;
    let mut tables: Vec<Table> = Vec::new();
    let mut insert = None;
    for s in &statements {
        match &s.statement {
            Statement::CreateTable(t) => {
                let table = catalog::table(s, t)?;
                if tables.iter().any(|x| x.name == table.name) {
                    return Err(Error::at(s.at, format!("table {} is declared twice", table.name)));
                }
                tables.push(table);
            }
            Statement::Insert(_) | Statement::Explain { .. } => {
                if insert.is_some() {
                    return Err(Error::at(s.at, "a job runs one INSERT INTO; this is a second one"));
                }
                insert = Some(s);
            }
            other => {
                let word = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                return Err(Error::at(
                    s.at,
                    format!("statement `{word} ...` is not supported (a job is CREATE TABLE statements and one INSERT INTO)"),
                ));
            }
        }
    }
    let Some(s) = insert else {
        return Err(Error::at(
            statements.last().map_or(Span::empty(), |s| s.at),
            "the job has no INSERT INTO ... SELECT: nothing would run",
        ));
    };
    // sqlparser's CREATE TABLE has no watermark: it is added after it.
    let text = statements
        .iter()
        .map(|s| match &s.watermark {
            Some(w) => format!("{} WATERMARK FOR {} AS {}", s.statement, w.column, w.expr),
            None => s.statement.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";\n");
    let (explain, stmt) = match &s.statement {
        Statement::Explain { statement, analyze: false, verbose: false, .. } => (true, statement.as_ref()),
        Statement::Explain { .. } => return Err(Error::at(s.at, "EXPLAIN ANALYZE / VERBOSE is not supported")),
        other => (false, other),
    };
    let Statement::Insert(ins) = stmt else {
        return Err(Error::at(s.at, "EXPLAIN is supported for INSERT INTO ... SELECT only"));
    };
    let TableObject::TableName(sink_name) = &ins.table else {
        return Err(Error::at(s.at, "INSERT INTO a table function is not supported"));
    };
    let sink = find(&tables, &sink_name.to_string(), span_or(sink_name.span(), s.at))?.clone();
    if !ins.columns.is_empty() || ins.overwrite || ins.partitioned.is_some() {
        return Err(Error::at(s.at, "INSERT with a column list, OVERWRITE or PARTITION is not supported"));
    }
    if sink.physical != sink.columns.len() {
        return Err(Error::at(
            s.at,
            format!("sink table {} has computed columns; a sink's columns are all written", sink.name),
        ));
    }
    let Some(query) = &ins.source else {
        return Err(Error::at(s.at, "INSERT needs a SELECT"));
    };
    plan_query(&tables, sink, query, s, text, explain)
}

pub(crate) fn span_or(span: Span, fallback: Span) -> Span {
    if span.start.line == 0 {
        fallback
    } else {
        span
    }
}

fn find<'a>(tables: &'a [Table], name: &str, span: Span) -> Result<&'a Table> {
    tables.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        Error::at(span, format!("unknown table {name} (declared: {})", names.join(", ")))
    })
}

fn plan_query(tables: &[Table], sink: Table, q: &Query, s: &JobStatement, text: String, explain: bool) -> Result<Job> {
    let at = s.at;
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return Err(Error::at(at, "WITH, ORDER BY, LIMIT and FETCH are not supported in a streaming INSERT"));
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(Error::at(at, format!("query `{}` is not supported: use one SELECT", q.body)));
    };
    let sel: &Select = sel;
    let at = span_or(sel.select_token.0.span, at);
    if sel.distinct.is_some() || sel.top.is_some() || !sel.lateral_views.is_empty() || sel.qualify.is_some() {
        return Err(Error::at(at, "DISTINCT, TOP, LATERAL VIEW and QUALIFY are not supported"));
    }
    let [from] = sel.from.as_slice() else {
        return Err(Error::at(
            at,
            "the SELECT must read FROM exactly one table or window table function (joins are not supported)",
        ));
    };
    if !from.joins.is_empty() {
        return Err(Error::at(at, "joins are not supported"));
    }
    let group_by: &[Expr] = match &sel.group_by {
        GroupByExpr::Expressions(e, m) if m.is_empty() => e,
        _ => return Err(Error::at(at, "GROUP BY ALL and GROUP BY modifiers are not supported")),
    };
    match &from.relation {
        TableFactor::Table { name, args: None, .. } => {
            let source = find(tables, &name.to_string(), span_or(name.span(), at))?.clone();
            if !group_by.is_empty() || sel.having.is_some() {
                return Err(Error::at(
                    group_by.first().map_or(at, |g| span_of(g, at)),
                    "GROUP BY without a window table function (an updating aggregate) is not supported: aggregate over TABLE(TUMBLE(...)), TABLE(HOP(...)), TABLE(CUMULATE(...)) or TABLE(SESSION(...))",
                ));
            }
            let mut scope =
                Columns { table: &source.name, columns: &source.columns, place: "a query without GROUP BY" };
            let filter = where_clause(sel, &mut scope, at)?;
            let project = projection(sel, &mut scope, &sink, at)?;
            check_tables(&source, &sink, at)?;
            Ok(Job { text, explain, source, sink, filter, kind: Kind::Project, project })
        }
        TableFactor::TableFunction { expr, .. } => {
            let w = plan_window(tables, sel, expr, group_by, &format!("the sink {}", sink.name), at)?;
            let project = to_sink(w.output, &sink, at)?;
            check_tables(&w.source, &sink, at)?;
            Ok(Job { text, explain, source: w.source, sink, filter: w.filter, kind: Kind::Window(w.window), project })
        }
        TableFactor::Derived { subquery, .. } => {
            if !group_by.is_empty() || sel.having.is_some() {
                return Err(Error::at(at, "GROUP BY or HAVING over a subquery is not supported"));
            }
            let t = crate::topn::plan(tables, sel, subquery, at)?;
            let mut scope =
                Columns { table: "the Top-N subquery", columns: &t.columns, place: "a Top-N's outer SELECT" };
            let project = projection(sel, &mut scope, &sink, at)?;
            check_tables(&t.inner.source, &sink, at)?;
            let Planned { source, filter, window, output } = t.inner;
            let inner = output.into_iter().map(|o| (o.c.eval, o.text)).collect();
            Ok(Job { text, explain, source, sink, filter, kind: Kind::TopN(window, inner, t.rank), project })
        }
        other => Err(Error::at(at, format!("FROM `{other}` is not supported: read a table or TABLE(TUMBLE(...))"))),
    }
}

/// A window aggregation SELECT, planned: its source, WHERE, window and
/// output columns (over the aggregated row).
pub(crate) struct Planned {
    pub(crate) source: Table,
    pub(crate) filter: Option<(Eval, String)>,
    pub(crate) window: Window,
    pub(crate) output: Vec<Output>,
}

/// Plans `SELECT ... FROM TABLE(<window function>) ... GROUP BY ...`;
/// `target` names where its columns go, for errors.
pub(crate) fn plan_window(
    tables: &[Table],
    sel: &Select,
    expr: &Expr,
    group_by: &[Expr],
    target: &str,
    at: Span,
) -> Result<Planned> {
    let (source, shape, partition) = window_tvf(tables, expr, at)?;
    let mut scope = Columns { table: &source.name, columns: &source.columns, place: "WHERE" };
    let filter = where_clause(sel, &mut scope, at)?;
    let keys = grouping(&source, group_by, at)?;
    if let Shape::Session { .. } = shape {
        check_session_keys(&source.name, &keys, partition.as_deref(), span_of(expr, at))?;
    }
    let mut post = Aggregated { source: &source, keys: &keys, calls: Vec::new() };
    let output = named_projection(sel, &mut post, target, at)?;
    let having = match &sel.having {
        Some(h) => {
            let c = compile(h, &mut post, at)?;
            if c.ty != SqlType::Boolean {
                return Err(Error::at(span_of(h, at), format!("type mismatch: HAVING must be BOOLEAN, not {}", c.ty)));
            }
            Some((c.eval, h.to_string()))
        }
        None => None,
    };
    let calls = Calls(Arc::new(post.calls));
    if let (Shape::Session { .. }, Some(c)) =
        (shape, calls.0.iter().find(|c| matches!(c.func, Func::FirstValue | Func::LastValue)))
    {
        return Err(Error::at(
            at,
            format!(
                "{} over SESSION windows is not supported (merged sessions have no single first or last row)",
                c.text
            ),
        ));
    }
    Ok(Planned { source, filter, window: Window { shape, keys, calls, having }, output })
}

/// A source must be a file or MQTT with event time here (the runtime's
/// sources run on event time); an MQTT sink publishes JSON objects on a
/// topic without wildcards, under a client id of its own.
fn check_tables(source: &Table, sink: &Table, at: Span) -> Result<()> {
    if let Connector::Mqtt(m) = &sink.connector {
        if m.csv {
            return Err(Error::at(
                sink.at,
                format!("format 'csv' of the MQTT sink {} is not supported (json)", sink.name),
            ));
        }
        rivulet::mqtt::TopicTemplate::parse_publish("topic", &m.topic)
            .map_err(|e| Error::at(sink.at, format!("option 'topic' of {}: {}", sink.name, rivulet_reason(e))))?;
        if let Connector::Mqtt(src) = &source.connector {
            if src.client_id == m.client_id && src.url == m.url {
                return Err(Error::at(
                    sink.at,
                    format!(
                        "option 'client-id' of {}: `{}` is also the source's (one broker session each)",
                        sink.name, m.client_id
                    ),
                ));
            }
        }
    }
    for (option, set) in [
        ("dead-letter-topic", matches!(&sink.connector, Connector::Mqtt(m) if m.dead_letter.is_some())),
        ("share-group", matches!(&sink.connector, Connector::Mqtt(m) if m.share_group.is_some())),
        ("scan.stop-after-idle", matches!(&sink.connector, Connector::Mqtt(m) if m.stop_after_idle_ms.is_some())),
    ] {
        if set {
            return Err(Error::at(
                sink.at,
                format!("option '{option}' of {} is a source's: the table is written", sink.name),
            ));
        }
    }
    let sink_only = match source.connector {
        Connector::Print { .. } => Some("print"),
        Connector::Blackhole => Some("blackhole"),
        _ => None,
    };
    if let Some(c) = sink_only {
        return Err(Error::at(at, format!("table {} cannot be read: connector '{c}' is a sink only", source.name)));
    }
    if source.rowtime.is_none() {
        return Err(Error::at(
            source.at,
            format!(
                "table {} needs a WATERMARK FOR clause: jobs run on event time (processing time is not supported yet)",
                source.name
            ),
        ));
    }
    Ok(())
}

fn where_clause(sel: &Select, scope: &mut dyn Scope, at: Span) -> Result<Option<(Eval, String)>> {
    let Some(w) = &sel.selection else { return Ok(None) };
    let c = compile(w, scope, at)?;
    if c.ty != SqlType::Boolean {
        return Err(Error::at(span_of(w, at), format!("type mismatch: WHERE must be BOOLEAN, not {}", c.ty)));
    }
    Ok(Some((c.eval, w.to_string())))
}

/// One column of a SELECT: its expression, the text it was written as,
/// its name (alias, column name, or Flink's `EXPR$i`) and where it was.
pub(crate) struct Output {
    pub(crate) c: Compiled,
    pub(crate) text: String,
    pub(crate) name: String,
    pub(crate) span: Span,
}

/// The SELECT's columns, typed by their expressions; `target` names where
/// they go, for errors.
pub(crate) fn named_projection(sel: &Select, scope: &mut dyn Scope, target: &str, at: Span) -> Result<Vec<Output>> {
    let mut out = Vec::new();
    for (i, item) in sel.projection.iter().enumerate() {
        let (e, name) = match item {
            SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    Expr::Identifier(id) => id.value.clone(),
                    _ => format!("EXPR${i}"),
                };
                (e, name)
            }
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
            other => {
                return Err(Error::at(
                    span_or(other.span(), at),
                    format!("`{other}` is not supported: list the columns {target} takes"),
                ))
            }
        };
        let span = span_of(e, at);
        let c = compile(e, scope, at)?;
        out.push(Output { c, text: e.to_string(), name, span });
    }
    Ok(out)
}

/// `columns` typed as the sink's, one for one.
fn to_sink(columns: Vec<Output>, sink: &Table, at: Span) -> Result<Vec<(Eval, String)>> {
    let mut out = Vec::new();
    for (i, o) in columns.into_iter().enumerate() {
        let Some((col, ty)) = sink.columns.get(i) else {
            return Err(Error::at(
                o.span,
                format!("the query has more columns than the sink {} ({})", sink.name, sink.columns.len()),
            ));
        };
        if !assignable(o.c.ty, *ty) {
            return Err(Error::at(
                o.span,
                format!(
                    "type mismatch: column {} of the query (`{}`) is {}, but column `{col}` of {} is {ty}",
                    i + 1,
                    o.text,
                    o.c.ty,
                    sink.name
                ),
            ));
        }
        out.push((coerce(o.c, *ty).eval, o.text));
    }
    if out.len() != sink.columns.len() {
        return Err(Error::at(
            at,
            format!("the query has {} columns, the sink {} has {}", out.len(), sink.name, sink.columns.len()),
        ));
    }
    Ok(out)
}

fn projection(sel: &Select, scope: &mut dyn Scope, sink: &Table, at: Span) -> Result<Vec<(Eval, String)>> {
    let columns = named_projection(sel, scope, &format!("the sink {}", sink.name), at)?;
    to_sink(columns, sink, at)
}

fn args(f: &Function) -> Vec<&Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `TUMBLE(TABLE t, DESCRIPTOR(ts), size)`, `HOP(TABLE t, DESCRIPTOR(ts),
/// slide, size)`, `CUMULATE(TABLE t, DESCRIPTOR(ts), step, size)` or
/// `SESSION(TABLE t [PARTITION BY cols], DESCRIPTOR(ts), gap)`: the table,
/// the windows' shape and the `PARTITION BY` columns, if any.
#[allow(clippy::type_complexity)]
fn window_tvf(tables: &[Table], expr: &Expr, at: Span) -> Result<(Table, Shape, Option<Vec<(usize, String)>>)> {
    const SUPPORTED: &str = "TUMBLE, HOP, CUMULATE and SESSION are";
    let span = span_of(expr, at);
    let Expr::Function(f) = expr else {
        return Err(Error::at(
            span,
            format!("TABLE(`{expr}`) is not supported: use a window table function ({SUPPORTED})"),
        ));
    };
    let name = f.name.to_string().to_uppercase();
    let a = args(f);
    let written = match &f.args {
        FunctionArguments::List(l) => l.args.len(),
        _ => 0,
    };
    if written != a.len() {
        return Err(Error::at(span, format!("{name}: named arguments are not supported")));
    }
    let sizes = match name.as_str() {
        "TUMBLE" => "size",
        "HOP" => "slide, size",
        "CUMULATE" => "step, size",
        "SESSION" => "gap",
        _ => return Err(Error::at(span, format!("table function {name} is not supported ({SUPPORTED})"))),
    };
    let n = 2 + sizes.split(", ").count();
    if a.len() != n {
        return Err(Error::at(
            span,
            format!("{name} takes {n} arguments (TABLE t, DESCRIPTOR(time column), {sizes}), found {} (an offset is not supported)", a.len()),
        ));
    }
    let (table, partition) = match pseudo(a[0], TABLE_ARG).as_deref() {
        Some([Expr::Identifier(t), rest @ ..]) => {
            let table = find(tables, &t.value, span_or(t.span, span))?;
            let partition = match rest {
                [] => None,
                [p] => {
                    let cols = pseudo(p, PARTITION_ARG).unwrap_or_default();
                    if name != "SESSION" {
                        return Err(Error::at(
                            span_of(a[0], span),
                            format!("{name}: PARTITION BY is not supported (SESSION takes it)"),
                        ));
                    }
                    let mut keys = Vec::new();
                    for c in cols {
                        let Expr::Identifier(id) = c else { continue };
                        let (i, _) = lookup(&table.name, &table.columns, id, span_or(id.span, span))?;
                        keys.push((i, id.value.clone()));
                    }
                    Some(keys)
                }
                _ => None,
            };
            (table, partition)
        }
        _ => return Err(Error::at(span_of(a[0], span), format!("the first argument of {name} must be TABLE <name>"))),
    };
    let col: &Ident = match pseudo(a[1], DESCRIPTOR_ARG).as_deref() {
        Some([Expr::Identifier(c)]) => c,
        _ => {
            return Err(Error::at(
                span_of(a[1], span),
                format!("the second argument of {name} must be DESCRIPTOR(<time column>)"),
            ))
        }
    };
    let cspan = span_or(col.span, span);
    let (i, _) = lookup(&table.name, &table.columns, col, cspan)?;
    match table.rowtime {
        Some((r, _)) if r == i => {}
        Some((r, _)) => {
            return Err(Error::at(
                cspan,
                format!(
                    "DESCRIPTOR({}): a window's time column must be the event-time column of {} (`{}`, its WATERMARK FOR column)",
                    col.value, table.name, table.columns[r].0
                ),
            ))
        }
        None => {
            return Err(Error::at(cspan, format!("table {} has no WATERMARK FOR clause: event-time windows need one", table.name)))
        }
    }
    let ms = |k: usize| interval_ms(a[k], span);
    let shape = match name.as_str() {
        "TUMBLE" => Shape::Tumble { size: ms(2)? },
        "HOP" => Shape::Hop { slide: ms(2)?, size: ms(3)? },
        "CUMULATE" => {
            let (step, size) = (ms(2)?, ms(3)?);
            if size % step != 0 {
                return Err(Error::at(
                    span_of(a[3], span),
                    format!("CUMULATE: the size ({size} ms) must be a whole number of steps ({step} ms)"),
                ));
            }
            Shape::Cumulate { step, size }
        }
        _ => Shape::Session { gap: ms(2)? },
    };
    Ok((table.clone(), shape, partition))
}

/// A SESSION window aggregation groups by exactly its `PARTITION BY`
/// columns: sessions are per partition, so other keys would split them
/// (Flink plans that as an updating aggregate, not a window aggregate).
fn check_session_keys(
    table: &str,
    keys: &[(usize, String)],
    partition: Option<&[(usize, String)]>,
    span: Span,
) -> Result<()> {
    let names = |k: &[(usize, String)]| k.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
    let partition = partition.unwrap_or_default();
    let same = keys.len() == partition.len() && keys.iter().all(|(k, _)| partition.iter().any(|(p, _)| p == k));
    if same {
        return Ok(());
    }
    let hint = match keys {
        [] => format!("SESSION(TABLE {table}, ...)"),
        [(_, k)] => format!("SESSION(TABLE {table} PARTITION BY {k}, ...)"),
        _ => format!("SESSION(TABLE {table} PARTITION BY ({}), ...)", names(keys)),
    };
    let none = |s: String| if s.is_empty() { "none".to_string() } else { s };
    Err(Error::at(
        span,
        format!(
            "SESSION: the GROUP BY columns besides the window ({}) must be its PARTITION BY columns ({}): write {hint}",
            none(names(keys)),
            none(names(partition)),
        ),
    ))
}

/// The arguments of a pseudo function of the dialect (`TABLE(t, ...)`,
/// `DESCRIPTOR(col)`, `PARTITION_BY(cols)`).
fn pseudo<'a>(e: &'a Expr, name: &str) -> Option<Vec<&'a Expr>> {
    let Expr::Function(f) = e else { return None };
    if f.name.to_string() != name {
        return None;
    }
    let FunctionArguments::List(l) = &f.args else { return None };
    l.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
            _ => None,
        })
        .collect()
}

/// GROUP BY: `window_start` and `window_end`, and columns of the source.
fn grouping(source: &Table, group_by: &[Expr], at: Span) -> Result<Vec<(usize, String)>> {
    let mut keys = Vec::new();
    let (mut start, mut end) = (false, false);
    for g in group_by {
        let span = span_of(g, at);
        let Expr::Identifier(id) = g else {
            return Err(Error::at(
                span,
                format!("GROUP BY `{g}` is not supported: group by window_start, window_end and columns"),
            ));
        };
        match id.value.as_str() {
            "window_start" => start = true,
            "window_end" => end = true,
            "window_time" => {
                return Err(Error::at(
                    span,
                    "GROUP BY window_time is not supported (group by window_start, window_end)",
                ))
            }
            _ => {
                let (i, _) = lookup(&source.name, &source.columns, id, span)?;
                if !keys.iter().any(|(k, _)| *k == i) {
                    keys.push((i, id.value.clone()));
                }
            }
        }
    }
    if !(start && end) {
        return Err(Error::at(
            group_by.first().map_or(at, |g| span_of(g, at)),
            "a window aggregation must GROUP BY window_start, window_end (and any keys)",
        ));
    }
    Ok(keys)
}

/// The scope after aggregation: window columns, keys, aggregate results.
struct Aggregated<'a> {
    source: &'a Table,
    keys: &'a [(usize, String)],
    calls: Vec<Call>,
}

impl Scope for Aggregated<'_> {
    fn column(&self, id: &Ident, span: Span) -> Result<(usize, SqlType)> {
        let rowtime = self.source.rowtime.map_or(SqlType::Timestamp, |(i, _)| self.source.columns[i].1);
        match id.value.as_str() {
            "window_start" => return Ok((0, SqlType::Timestamp)),
            "window_end" => return Ok((1, SqlType::Timestamp)),
            "window_time" => return Ok((2, rowtime)),
            _ => {}
        }
        let (i, ty) = lookup(&self.source.name, &self.source.columns, id, span)?;
        match self.keys.iter().position(|(k, _)| *k == i) {
            Some(k) => Ok((WINDOW_COLUMNS.len() + k, ty)),
            None => Err(Error::at(
                span_or(id.span, span),
                format!(
                    "column `{}` is neither grouped nor aggregated: add it to GROUP BY or use it in an aggregate",
                    id.value
                ),
            )),
        }
    }

    fn aggregate(&mut self, f: &Function, span: Span) -> Result<(usize, SqlType)> {
        let name = f.name.to_string().to_uppercase();
        debug_assert!(AGGREGATES.contains(&name.as_str()));
        let FunctionArguments::List(l) = &f.args else {
            return Err(Error::at(span, format!("{name} needs an argument")));
        };
        let distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        let func = match name.as_str() {
            "COUNT" if distinct => Func::CountDistinct,
            "COUNT" => Func::Count,
            "SUM" => Func::Sum,
            "AVG" => Func::Avg,
            "MIN" => Func::Min,
            "MAX" => Func::Max,
            "FIRST_VALUE" => Func::FirstValue,
            _ => Func::LastValue,
        };
        if distinct && func != Func::CountDistinct {
            return Err(Error::at(span, format!("{name}(DISTINCT ...) is not supported (COUNT(DISTINCT ...) is)")));
        }
        if f.over.is_some() || f.filter.is_some() || !l.clauses.is_empty() {
            return Err(Error::at(span, format!("{name} with OVER, FILTER or ORDER BY is not supported")));
        }
        let (arg, arg_ty, arg_f64) = match l.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if func == Func::Count => (None, SqlType::BigInt, None),
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => {
                let mut scope = Columns {
                    table: &self.source.name,
                    columns: &self.source.columns,
                    place: "an aggregate's argument",
                };
                let c: Compiled = compile(e, &mut scope, span)?;
                if matches!(func, Func::Sum | Func::Avg) && !c.ty.is_numeric() {
                    return Err(Error::at(span, format!("type mismatch: {name} needs a number, not {}", c.ty)));
                }
                (Some(c.eval), c.ty, c.dbl)
            }
            _ => return Err(Error::at(span, format!("{name} takes one argument"))),
        };
        let text = f.to_string();
        let base = WINDOW_COLUMNS.len() + self.keys.len();
        if let Some(i) = self.calls.iter().position(|c| c.text == text) {
            return Ok((base + i, self.calls[i].result_type()));
        }
        self.calls.push(Call { func, arg, arg_ty, arg_f64, text });
        let c = self.calls.last().map_or(SqlType::BigInt, Call::result_type);
        Ok((base + self.calls.len() - 1, c))
    }
}

impl Job {
    /// True for `EXPLAIN INSERT ...`: print [`Job::explain`], run nothing.
    pub fn is_explain(&self) -> bool {
        self.explain
    }

    /// The input file, when the source is one.
    pub fn input(&self) -> Option<&std::path::Path> {
        match &self.source.connector {
            Connector::File { path, .. } => Some(path),
            Connector::Print { .. } | Connector::Mqtt(_) | Connector::Blackhole => None,
        }
    }

    /// The sink table's column names (the results' columns).
    pub fn sink_columns(&self) -> Vec<String> {
        self.sink.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// True when the source reads an MQTT broker (its messages are acked
    /// once durable in the state directory's ingest log: without one, on
    /// receipt).
    pub fn reads_mqtt(&self) -> bool {
        matches!(self.source.connector, Connector::Mqtt(_))
    }

    /// The output file, when the sink is one.
    pub fn output(&self) -> Option<&std::path::Path> {
        match &self.sink.connector {
            Connector::File { path, .. } => Some(path),
            Connector::Print { .. } | Connector::Mqtt(_) | Connector::Blackhole => None,
        }
    }

    /// The plan as text.
    pub fn explain(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let src = &self.source;
        let cols: Vec<String> = src.columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
        let _ = writeln!(s, "== Rivulet plan ==");
        let _ = writeln!(s, "source {}: {} ({})", src.name, describe(&src.connector), cols.join(", "));
        for ((c, e), (n, _)) in src.computed.iter().zip(&src.columns[src.physical..]) {
            let _ = writeln!(s, "  computed {n} {} = {e}", c.ty);
        }
        if let Some((i, d)) = src.rowtime {
            let _ = writeln!(
                s,
                "  event time {}; watermark = max({}) - {d} ms (Flink SQL: no extra -1 ms); late rows are dropped",
                src.columns[i].0, src.columns[i].0
            );
        }
        if let Some((_, w)) = &self.filter {
            let _ = writeln!(s, "filter {w}");
        }
        if let Kind::Window(w) | Kind::TopN(w, ..) = &self.kind {
            let keys: Vec<&str> = w.keys.iter().map(|(_, n)| n.as_str()).collect();
            let _ = writeln!(s, "key by ({})", keys.join(", "));
            let _ = match w.shape {
                Shape::Tumble { size } => writeln!(s, "window TUMBLE size {size} ms"),
                Shape::Hop { slide, size } => writeln!(s, "window HOP size {size} ms slide {slide} ms"),
                Shape::Cumulate { step, size } => writeln!(s, "window CUMULATE step {step} ms size {size} ms"),
                Shape::Session { gap } => writeln!(s, "window SESSION gap {gap} ms"),
            };
            let calls: Vec<&str> = w.calls.0.iter().map(|c| c.text.as_str()).collect();
            let _ = writeln!(s, "aggregate {}", calls.join(", "));
            if let Some((_, h)) = &w.having {
                let _ = writeln!(s, "having {h}");
            }
        }
        if let Kind::TopN(_, inner, rank) = &self.kind {
            let p: Vec<&str> = inner.iter().map(|(_, t)| t.as_str()).collect();
            let _ = writeln!(s, "project {}", p.join(", "));
            let _ = writeln!(s, "{}", rank.explain());
        }
        let p: Vec<&str> = self.project.iter().map(|(_, t)| t.as_str()).collect();
        let _ = writeln!(s, "project {}", p.join(", "));
        let _ = writeln!(s, "sink {}: {}", self.sink.name, describe(&self.sink.connector));
        s
    }

    /// What defines the job's state (see `JobConfig::identity`): the
    /// normalised statements, and the input file's canonical path and
    /// first line (as the seed job's).
    ///
    /// # Errors
    /// The input file cannot be read.
    pub fn identity(&self) -> std::result::Result<Vec<(String, String)>, rivulet::Error> {
        let mut id = vec![("sql".to_string(), self.text.clone())];
        if let Some(path) = self.input() {
            let canon =
                std::fs::canonicalize(path).map_err(|e| rivulet::Error::Io { path: path.to_path_buf(), source: e })?;
            let mut head = Vec::with_capacity(256);
            let file =
                std::fs::File::open(&canon).map_err(|e| rivulet::Error::Io { path: path.to_path_buf(), source: e })?;
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 256), &mut head)
                .map_err(|e| rivulet::Error::Io { path: path.to_path_buf(), source: e })?;
            let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
            id.push(("input".into(), canon.display().to_string()));
            id.push(("input first line".into(), String::from_utf8_lossy(first).into_owned()));
        }
        if let Connector::Mqtt(m) = &self.source.connector {
            // The broker session holding the unacked messages.
            id.push(("mqtt url".into(), m.url.clone()));
            id.push(("mqtt topic".into(), m.topic.clone()));
            id.push(("mqtt client id".into(), m.client_id.clone()));
            id.push(("mqtt share group".into(), m.share_group.clone().unwrap_or_else(|| "none".into())));
        }
        Ok(id)
    }

    /// Builds the job onto a new [`Env`] (opening the state directory of
    /// `config`, whose identity is set from [`Job::identity`]).
    ///
    /// # Errors
    /// An output that would overwrite an input, an unreadable input, a
    /// refused state directory, a bad window size.
    pub fn build(&self, config: JobConfig) -> std::result::Result<Env, rivulet::Error> {
        self.build_with(config, Env::new)
    }

    /// [`Job::build`] with the job's [`Env`] made by `make` from its
    /// config: [`Env::new`] in one process, the cluster's maker in a
    /// coordinator or worker.
    ///
    /// # Errors
    /// As [`Job::build`].
    pub fn build_with(
        &self,
        mut config: JobConfig,
        make: impl FnOnce(JobConfig) -> std::result::Result<Env, rivulet::Error>,
    ) -> std::result::Result<Env, rivulet::Error> {
        self.check_paths(&config)?;
        if config.state_dir.is_some() {
            config.identity = self.identity()?;
        }
        // Checked before the state directory is opened.
        let sink = self.sink()?;
        let env = make(config)?;
        let stream = self.source_stream(&env)?;
        let stream = match &self.filter {
            Some((f, _)) => {
                let f = f.clone();
                stream.filter(move |r: &Row| f(r) == Value::Bool(true))
            }
            None => stream,
        };
        let project: Arc<Vec<Eval>> = Arc::new(self.project.iter().map(|(e, _)| e.clone()).collect());
        let rows: DataStream<Row> = match &self.kind {
            Kind::Project => stream.map(move |r: Row| project.iter().map(|p| p(&r)).collect()),
            Kind::Window(w) => window_rows(stream, w, project)?,
            Kind::TopN(w, inner, rank) => {
                let inner = Arc::new(inner.iter().map(|(e, _)| e.clone()).collect());
                let ranked = window_rows(stream, w, inner)?;
                let partition = rank.partition.clone();
                ranked
                    .key_by(move |r: &Row| {
                        RowKey(partition.iter().map(|&i| r.get(i).cloned().unwrap_or(Value::Null)).collect())
                    })
                    .process(rank.function())
                    .map(move |r: Row| project.iter().map(|p| p(&r)).collect())
            }
        };
        rows.sink(sink);
        Ok(env)
    }

    fn check_paths(&self, config: &JobConfig) -> std::result::Result<(), rivulet::Error> {
        use rivulet::files::{check_distinct, Declared, Role};
        let mut paths = Vec::new();
        if let Some(p) = self.input() {
            paths.push(Declared::new("the source table's 'path'", p, Role::Input));
        }
        if let Some(p) = self.output() {
            paths.push(Declared::new("the sink table's 'path'", p, Role::Output));
        }
        if let Some(p) = &config.state_dir {
            paths.push(Declared::new("--state-dir", p, Role::StateDir));
        }
        check_distinct(&paths)
    }

    fn source_stream(&self, env: &Env) -> std::result::Result<DataStream<Row>, rivulet::Error> {
        let src = &self.source;
        let Some((rowtime, delay)) = src.rowtime else {
            return Err(rivulet::Error::Config {
                field: "watermark",
                reason: format!("table {} has no event time", src.name),
            });
        };
        let names: Vec<String> = src.columns[..src.physical].iter().map(|(n, _)| n.clone()).collect();
        let types: Vec<SqlType> = src.columns[..src.physical].iter().map(|(_, t)| *t).collect();
        let computed: Vec<Eval> = src.computed.iter().map(|(c, _)| c.eval.clone()).collect();
        let rowtime_name = src.columns[rowtime].0.clone();
        // Computed columns and the event-time check, after the physical
        // columns were read.
        let complete = move |row: &mut Row| -> std::result::Result<(), String> {
            for c in &computed {
                let v = c(row);
                row.push(v);
            }
            match row.get(rowtime) {
                Some(Value::Ts(t)) => {
                    rivulet::time::check_event_time(*t).map(|_| ()).map_err(|e| format!("{rowtime_name}: {e}"))
                }
                _ => Err(format!("event-time column {rowtime_name} is NULL")),
            }
        };
        let completed = {
            let complete = complete.clone();
            move |mut row: Row| complete(&mut row).map(|()| row)
        };
        let ts = move |r: &Row| match r.get(rowtime) {
            Some(Value::Ts(t)) => *t,
            _ => i64::MIN,
        };
        let wms = Watermarks::max_minus(Duration::from_millis(delay as u64), ts);
        match &src.connector {
            Connector::File { path, json: false } => {
                // Rows are parsed where the source task reads them.
                let plain = crate::csv::reads_plain(&types).then(|| {
                    let (types, complete) = (types.clone(), complete.clone());
                    move |text: &str, row: &mut Row| {
                        let len = crate::csv::read_plain(text, &types, row)?;
                        complete(row).ok().map(|()| len)
                    }
                });
                let parse = move |line: &str, fields: Option<&[&str]>, row: &mut Row| {
                    crate::csv::parse_split(line, fields, &names, &types, row)?;
                    complete(row)
                };
                let source = match plain {
                    Some(read) => FileSource::csv_plain_text(path, read, parse)?,
                    None => FileSource::csv_into(path, parse)?,
                };
                Ok(env.source(source, wms))
            }
            Connector::File { path, json: true } => {
                let parse = move |line: &[u8]| completed(crate::json::parse_object(line, &names, &types)?);
                Ok(env.source(FileSource::lines(path, parse)?, wms))
            }
            Connector::Mqtt(m) => {
                let mut cfg = m.source_config(&names);
                let template = cfg.validate()?;
                cfg.topic_fields = template.fields().map(str::to_owned).collect();
                let parse = move |f: &rivulet::source::mqtt::Fields<'_>| {
                    completed(crate::json::parse_fields(f, &names, &types)?)
                };
                Ok(env.source(cfg.build(parse)?, wms))
            }
            Connector::Print { .. } | Connector::Blackhole => {
                Err(rivulet::Error::Config { field: "connector", reason: format!("table {} cannot be read", src.name) })
            }
        }
    }

    fn sink(&self) -> std::result::Result<Sink<Row>, rivulet::Error> {
        let types: Vec<SqlType> = self.sink.columns.iter().map(|(_, t)| *t).collect();
        let names: Vec<String> = self.sink.columns.iter().map(|(n, _)| n.clone()).collect();
        match &self.sink.connector {
            Connector::File { path, json: false } => {
                Ok(Sink::file(path, move |r: &Row, out: &mut Vec<u8>| crate::csv::write_row(r, &types, out)))
            }
            Connector::File { path, json: true } => {
                Ok(Sink::file(path, move |r: &Row, out: &mut Vec<u8>| crate::json::json_row(r, &names, &types, out)))
            }
            Connector::Blackhole => Ok(Sink::new(crate::json::Blackhole, |_: &Row, _: &mut Vec<u8>| {})),
            Connector::Print { identifier } => {
                let id = identifier.clone();
                Ok(Sink::stdout(move |r: &Row, out: &mut Vec<u8>| crate::csv::print_row(r, &types, id.as_deref(), out)))
            }
            Connector::Mqtt(m) => {
                let out = rivulet::sink::MqttOutput::new(m.session(&m.client_id), &m.topic, m.qos)?;
                let csv = m.csv;
                Ok(Sink::new(out, move |r: &Row, buf: &mut Vec<u8>| {
                    if csv {
                        crate::csv::write_row(r, &types, buf);
                    } else {
                        crate::json::json_row(r, &names, &types, buf);
                    }
                }))
            }
        }
    }
}

/// The rows of a window aggregation, each projected by `project` (after
/// HAVING).
fn window_rows(
    stream: DataStream<Row>,
    w: &Window,
    project: Arc<Vec<Eval>>,
) -> std::result::Result<DataStream<Row>, rivulet::Error> {
    let keys: Arc<Vec<usize>> = Arc::new(w.keys.iter().map(|(i, _)| *i).collect());
    let keyed = stream.key_by(move |r: &Row| {
        let col = |i: usize| r.get(i).cloned().unwrap_or(Value::Null);
        RowKey(match keys[..] {
            [i] => smallvec::smallvec![col(i)],
            [i, j] => smallvec::smallvec![col(i), col(j)],
            _ => keys.iter().map(|&i| col(i)).collect(),
        })
    });
    let ms = |t: i64| Duration::from_millis(t as u64);
    let windowed = match w.shape {
        Shape::Tumble { size } => keyed.window(Tumbling::of(ms(size))?),
        Shape::Hop { slide, size } => keyed.window(Sliding::of(ms(size), ms(slide))?),
        Shape::Cumulate { step, size } => keyed.window(Cumulate::of(ms(step), ms(size))?),
        Shape::Session { gap } => keyed.window(Session::with_gap(ms(gap))?),
    };
    let having = w.having.as_ref().map(|(h, _)| h.clone());
    Ok(windowed.aggregate(w.calls.clone()).flat_map(move |out: Windowed<RowKey, Vec<Value>>| {
        let mut row = Vec::with_capacity(WINDOW_COLUMNS.len() + out.key.0.len() + out.value.len());
        row.extend([Value::Ts(out.window.start), Value::Ts(out.window.end), Value::Ts(out.window.end - 1)]);
        row.extend(out.key.0);
        row.extend(out.value);
        if having.as_ref().is_some_and(|h| h(&row) != Value::Bool(true)) {
            return None;
        }
        Some(project.iter().map(|p| p(&row)).collect::<Row>())
    }))
}

/// The reason of a runtime config error, without its field name.
fn rivulet_reason(e: rivulet::Error) -> String {
    match e {
        rivulet::Error::Config { reason, .. } => reason,
        e => e.to_string(),
    }
}

fn describe(c: &Connector) -> String {
    match c {
        Connector::File { path, json } => {
            format!("filesystem {} `{}`", if *json { "json" } else { "csv" }, path.display())
        }
        Connector::Blackhole => "blackhole".into(),
        Connector::Print { identifier: Some(i) } => format!("print (identifier {i})"),
        Connector::Print { identifier: None } => "print".into(),
        Connector::Mqtt(m) => format!(
            "mqtt {} `{}` at {} (client id {}, QoS {})",
            if m.csv { "csv" } else { "json" },
            m.topic,
            m.url,
            m.client_id,
            m.qos
        ),
    }
}
