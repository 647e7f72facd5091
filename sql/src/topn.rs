//! Window Top-N: the first `n` rows of each window of a window
//! aggregation, by an order (Flink SQL's
//! `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ... ORDER BY ...)`
//! filtered by `rownum <= n`).
//!
//! ```sql
//! SELECT * FROM (
//!   SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY avg_f DESC) AS rownum
//!   FROM (SELECT window_start, window_end, room, AVG(temp_f) AS avg_f
//!         FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))
//!         GROUP BY window_start, window_end, room)
//! ) WHERE rownum <= 3
//! ```
//!
//! The aggregated rows are keyed by the partition columns; each key keeps
//! its best `n` rows so far in keyed state (checkpointed like any state) and
//! an event-time timer at the window's last instant. The window's rows all
//! arrive before the watermark passes that instant (the aggregation emits
//! them when it does), so the timer sees the whole window: it emits the
//! kept rows numbered 1..=n and clears them. Rows that tie on the order
//! keep their arrival order.

use crate::catalog::lookup;
use crate::error::{Error, Result};
use crate::expr::span_of;
use crate::plan::{plan_window, span_or, Planned};
use crate::types::{Row, RowKey, SqlType, Value};
use rivulet::state::{StateRegistry, ValueState};
use rivulet::{KeyedProcessFunction, ProcessContext, TimeDomain};
use sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArguments, GroupByExpr, OrderBySort, Query, Select, SelectItem, SetExpr,
    Spanned, TableFactor, Value as Lit, WindowType,
};
use sqlparser::tokenizer::Span;
use std::cmp::Ordering;
use std::sync::Arc;

/// How errors name the aggregation a Top-N ranks.
const INNER: &str = "the Top-N's subquery";

/// The most rows a Top-N keeps per window and partition.
pub(crate) const MAX_N: u64 = 10_000;

/// A planned Top-N: the inner window aggregation, the columns the outer
/// SELECT sees, and the ranking.
pub(crate) struct TopN {
    pub(crate) inner: Planned,
    pub(crate) columns: Vec<(String, SqlType)>,
    pub(crate) rank: Rank,
}

/// How the inner rows are ranked, and what the ranking SELECT makes of
/// them.
pub(crate) struct Rank {
    /// Partition columns: positions in the inner row.
    pub(crate) partition: Vec<usize>,
    /// Sort columns: position in the inner row, descending.
    order: Vec<(usize, bool)>,
    n: usize,
    /// The ranking SELECT's columns: an inner column, or the row number.
    columns: Vec<Option<usize>>,
    text: String,
}

impl Rank {
    /// The plan's line for EXPLAIN.
    pub(crate) fn explain(&self) -> String {
        format!("{} (first {} rows per partition, at the window's end)", self.text, self.n)
    }

    /// The keyed process function that ranks.
    pub(crate) fn function(&self) -> Ranking {
        Ranking { order: Arc::new(self.order.clone()), n: self.n, columns: Arc::new(self.columns.clone()), best: None }
    }
}

/// Plans `SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (...) AS r FROM
/// (<window aggregation>)) WHERE r <= n`: `outer` is the outermost SELECT,
/// `middle` the ranking query.
///
/// # Errors
/// Anything but that shape, named with its position.
pub(crate) fn plan(tables: &[crate::catalog::Table], outer: &Select, middle: &Query, at: Span) -> Result<TopN> {
    const SHAPE: &str = "a subquery is supported as a window Top-N only: SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY window_start, window_end ... ORDER BY ...) AS rownum FROM (<window aggregation>)) WHERE rownum <= N";
    let mid = single_select(middle, at, SHAPE)?;
    let mid_at = span_or(mid.select_token.0.span, at);
    if mid.selection.is_some() || !group_by(mid).is_empty() || mid.having.is_some() {
        return Err(Error::at(mid_at, "a Top-N's ranking SELECT takes no WHERE, GROUP BY or HAVING"));
    }
    let inner_q = match mid.from.as_slice() {
        [f] if f.joins.is_empty() => match &f.relation {
            TableFactor::Derived { subquery, .. } => subquery,
            _ => return Err(Error::at(mid_at, SHAPE)),
        },
        _ => return Err(Error::at(mid_at, SHAPE)),
    };
    let inner_sel = single_select(inner_q, mid_at, SHAPE)?;
    let inner_at = span_or(inner_sel.select_token.0.span, mid_at);
    let window_expr = match inner_sel.from.as_slice() {
        [f] if f.joins.is_empty() => match &f.relation {
            TableFactor::TableFunction { expr, .. } => expr,
            _ => {
                return Err(Error::at(
                    inner_at,
                    "a Top-N ranks the rows of a window aggregation: its innermost SELECT reads TABLE(TUMBLE(...)), TABLE(HOP(...)), TABLE(CUMULATE(...)) or TABLE(SESSION(...)) with GROUP BY window_start, window_end, ... (a Top-N over all time updates its results and is not supported)",
                ))
            }
        },
        _ => return Err(Error::at(inner_at, SHAPE)),
    };
    let inner = plan_window(tables, inner_sel, window_expr, group_by(inner_sel), INNER, inner_at)?;
    let inner_cols: Vec<(String, SqlType)> = inner.output.iter().map(|o| (o.name.clone(), o.c.ty)).collect();
    for (i, (name, _)) in inner_cols.iter().enumerate() {
        if inner_cols[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::at(
                inner.output[i].span,
                format!("the Top-N's subquery has two columns named `{name}`: give one an alias"),
            ));
        }
    }
    // The ranking SELECT's columns.
    let mut columns: Vec<(String, SqlType)> = Vec::new();
    let mut sources: Vec<Option<usize>> = Vec::new();
    let mut ranking: Option<(&Function, String, Span)> = None;
    for item in &mid.projection {
        match item {
            SelectItem::Wildcard(_) => {
                columns.extend(inner_cols.iter().cloned());
                sources.extend((0..inner_cols.len()).map(Some));
            }
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => {
                let (i, ty) = lookup(INNER, &inner_cols, id, mid_at)?;
                columns.push((id.value.clone(), ty));
                sources.push(Some(i));
            }
            SelectItem::ExprWithAlias { expr: Expr::Identifier(id), alias } => {
                let (i, ty) = lookup(INNER, &inner_cols, id, mid_at)?;
                columns.push((alias.value.clone(), ty));
                sources.push(Some(i));
            }
            SelectItem::ExprWithAlias { expr: Expr::Function(f), alias } if f.over.is_some() => {
                let span = span_or(f.span(), mid_at);
                if ranking.is_some() {
                    return Err(Error::at(span, "a Top-N has one ROW_NUMBER() OVER (...)"));
                }
                ranking = Some((f, alias.value.clone(), span));
                columns.push((alias.value.clone(), SqlType::BigInt));
                sources.push(None);
            }
            SelectItem::UnnamedExpr(Expr::Function(f)) if f.over.is_some() => {
                return Err(Error::at(
                    span_or(f.span(), mid_at),
                    "ROW_NUMBER() OVER (...) needs a name (`AS rownum`) for the outer WHERE to filter on",
                ));
            }
            other => {
                return Err(Error::at(
                    span_or(other.span(), mid_at),
                    format!("`{other}` is not supported in a Top-N's ranking SELECT: list columns of its subquery, `*` and ROW_NUMBER() OVER (...) AS name"),
                ));
            }
        }
    }
    let Some((f, rank_name, f_at)) = ranking else {
        return Err(Error::at(mid_at, SHAPE));
    };
    let (partition, order, text) = over(f, &inner_cols, &inner, f_at)?;
    let n = limit(outer, &rank_name, at)?;
    Ok(TopN { inner, columns, rank: Rank { partition, order, n, columns: sources, text } })
}

fn group_by(sel: &Select) -> &[Expr] {
    match &sel.group_by {
        GroupByExpr::Expressions(e, _) => e,
        GroupByExpr::All(_) => &[],
    }
}

/// The one plain SELECT of `q`.
fn single_select<'a>(q: &'a Query, at: Span, shape: &str) -> Result<&'a Select> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return Err(Error::at(at, "WITH, ORDER BY, LIMIT and FETCH are not supported in a subquery"));
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(Error::at(at, shape.to_string()));
    };
    if sel.distinct.is_some() || sel.top.is_some() || !sel.lateral_views.is_empty() || sel.qualify.is_some() {
        return Err(Error::at(at, "DISTINCT, TOP, LATERAL VIEW and QUALIFY are not supported"));
    }
    if matches!(&sel.group_by, GroupByExpr::All(_))
        || matches!(&sel.group_by, GroupByExpr::Expressions(_, m) if !m.is_empty())
    {
        return Err(Error::at(at, "GROUP BY ALL and GROUP BY modifiers are not supported"));
    }
    Ok(sel)
}

type Over = (Vec<usize>, Vec<(usize, bool)>, String);

/// The partition and order of `ROW_NUMBER() OVER (PARTITION BY ... ORDER
/// BY ...)`, as positions in the inner row.
fn over(f: &Function, cols: &[(String, SqlType)], inner: &Planned, at: Span) -> Result<Over> {
    let name = f.name.to_string().to_uppercase();
    if name != "ROW_NUMBER" {
        return Err(Error::at(
            at,
            format!("{name}() OVER (...) is not supported: OVER windows other than a Top-N with ROW_NUMBER() are not supported"),
        ));
    }
    let no_args = match &f.args {
        FunctionArguments::None => true,
        FunctionArguments::List(l) => l.args.is_empty() && l.clauses.is_empty(),
        FunctionArguments::Subquery(_) => false,
    };
    if !no_args || f.filter.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
        return Err(Error::at(at, "ROW_NUMBER() takes no arguments, FILTER or WITHIN GROUP"));
    }
    let Some(WindowType::WindowSpec(spec)) = &f.over else {
        return Err(Error::at(
            at,
            "named windows (OVER w) are not supported: write OVER (PARTITION BY ... ORDER BY ...)",
        ));
    };
    if spec.window_frame.is_some() {
        return Err(Error::at(at, "ROW_NUMBER() OVER (...) takes no window frame (ROWS/RANGE ...)"));
    }
    let mut partition = Vec::new();
    for e in &spec.partition_by {
        let Expr::Identifier(id) = e else {
            return Err(Error::at(span_of(e, at), format!("PARTITION BY `{e}`: name a column of {INNER}")));
        };
        partition.push(lookup(INNER, cols, id, span_of(e, at))?.0);
    }
    // The window's own columns, as the inner SELECT passes them on.
    for w in ["window_start", "window_end"] {
        let is_window = |&i: &usize| inner.output[i].text == w;
        if !partition.iter().any(is_window) {
            return Err(Error::at(
                at,
                format!("a Top-N must PARTITION BY window_start, window_end (the window's columns; `{w}` is missing): a Top-N over all time updates its results and is not supported"),
            ));
        }
    }
    if spec.order_by.is_empty() {
        return Err(Error::at(at, "ROW_NUMBER() OVER (...) needs an ORDER BY"));
    }
    let mut order = Vec::new();
    for o in &spec.order_by {
        let Expr::Identifier(id) = &o.expr else {
            return Err(Error::at(span_of(&o.expr, at), format!("ORDER BY `{}`: name a column of {INNER}", o.expr)));
        };
        if o.options.nulls_first.is_some() || o.with_fill.is_some() {
            return Err(Error::at(
                span_of(&o.expr, at),
                "NULLS FIRST / NULLS LAST is not supported in a Top-N (NULLs come first ascending, last descending)",
            ));
        }
        let desc = match &o.options.sort {
            None | Some(OrderBySort::Asc) => false,
            Some(OrderBySort::Desc) => true,
            Some(OrderBySort::Using(_)) => {
                return Err(Error::at(span_of(&o.expr, at), "ORDER BY ... USING is not supported"));
            }
        };
        order.push((lookup(INNER, cols, id, span_of(&o.expr, at))?.0, desc));
    }
    Ok((partition, order, format!("rank ROW_NUMBER() OVER ({spec})")))
}

/// `n` of the outer `WHERE rank <= n` (or `rank < n + 1`).
fn limit(outer: &Select, rank: &str, at: Span) -> Result<usize> {
    let wrong = |span: Span| {
        Error::at(
            span,
            format!("a Top-N's outer query filters on its row number alone: WHERE {rank} <= N (N from 1 to {MAX_N})"),
        )
    };
    let Some(w) = &outer.selection else { return Err(wrong(at)) };
    let span = span_of(w, at);
    let Expr::BinaryOp { left, op, right } = w else { return Err(wrong(span)) };
    let (Expr::Identifier(id), Expr::Value(v)) = (left.as_ref(), right.as_ref()) else { return Err(wrong(span)) };
    if id.value != rank {
        return Err(wrong(span));
    }
    let Lit::Number(text, _) = &v.value else { return Err(wrong(span)) };
    let Ok(bound) = text.parse::<u64>() else { return Err(wrong(span)) };
    let n = match op {
        BinaryOperator::LtEq => bound,
        BinaryOperator::Lt => bound.saturating_sub(1),
        _ => return Err(wrong(span)),
    };
    if !(1..=MAX_N).contains(&n) {
        return Err(wrong(span));
    }
    usize::try_from(n).map_err(|_| wrong(span))
}

/// Compares two inner rows by the Top-N's order (NULL is the smallest
/// value: first ascending, last descending, as Flink).
fn compare(order: &[(usize, bool)], a: &Row, b: &Row) -> Ordering {
    for &(i, desc) in order {
        let (x, y) = (a.get(i).unwrap_or(&Value::Null), b.get(i).unwrap_or(&Value::Null));
        let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
        let o = if desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The keyed process function of a Top-N: keeps each partition's best `n`
/// rows and emits them, numbered, when the window ends.
#[derive(Clone)]
pub(crate) struct Ranking {
    order: Arc<Vec<(usize, bool)>>,
    n: usize,
    columns: Arc<Vec<Option<usize>>>,
    best: Option<ValueState<Vec<Row>>>,
}

impl Ranking {
    fn best(&self) -> rivulet::Result<ValueState<Vec<Row>>> {
        self.best.ok_or_else(|| rivulet::Error::Config {
            field: "sql",
            reason: "the Top-N's state was used before open".into(),
        })
    }
}

impl KeyedProcessFunction<RowKey, Row> for Ranking {
    type Out = Row;

    fn open(&mut self, states: &mut StateRegistry<RowKey>) -> rivulet::Result<()> {
        self.best = Some(states.value(None)?);
        Ok(())
    }

    fn process(&mut self, row: Row, ctx: &mut ProcessContext<'_, RowKey, Row>) -> rivulet::Result<()> {
        let best = self.best()?;
        let mut rows = best.value(ctx)?.unwrap_or_default();
        // After the rows it ties with: ties keep their arrival order.
        let at = rows.partition_point(|r| compare(&self.order, r, &row) != Ordering::Greater);
        if at < self.n {
            rows.insert(at, row);
            rows.truncate(self.n);
            best.update(ctx, rows)?;
        }
        // The aggregation's rows carry their window's last instant.
        let end = ctx.timestamp();
        ctx.timers().register_event_time(end)
    }

    fn on_timer(
        &mut self,
        _timestamp: i64,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, RowKey, Row>,
    ) -> rivulet::Result<()> {
        let best = self.best()?;
        let rows = best.value(ctx)?.unwrap_or_default();
        best.clear(ctx)?;
        for (i, r) in rows.into_iter().enumerate() {
            let rownum = Value::BigInt(i as i64 + 1);
            let out: Row = self
                .columns
                .iter()
                .map(|c| c.map_or_else(|| rownum.clone(), |j| r.get(j).cloned().unwrap_or(Value::Null)))
                .collect();
            ctx.emit(out);
        }
        Ok(())
    }
}
