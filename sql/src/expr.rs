//! Expressions compiled once into closures over a row's positions: names
//! are resolved and types checked when the job is planned, so a row only
//! runs the closures.

use crate::error::{Error, Result};
use crate::types::{format_double, format_timestamp, SqlType, Value};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, DateTimeField, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, Spanned, UnaryOperator, Value as Lit,
};
use sqlparser::tokenizer::Span;
use std::sync::Arc;

/// A compiled expression: evaluates a row.
pub(crate) type Eval = Arc<dyn Fn(&[Value]) -> Value + Send + Sync>;

/// A compiled DOUBLE expression evaluated to a plain number (`None` for
/// NULL): arithmetic on doubles passes `f64`s, not [`Value`]s, between
/// its parts.
pub(crate) type EvalF64 = Arc<dyn Fn(&[Value]) -> Option<f64> + Send + Sync>;

/// An expression ready to run, with its type.
#[derive(Clone)]
pub(crate) struct Compiled {
    /// The position read, when the expression is a plain column (its
    /// users read it in place rather than through `eval`).
    pub(crate) column: Option<usize>,
    /// The value, when the expression is a constant (folded into the
    /// expressions that use it).
    pub(crate) konst: Option<Value>,
    pub(crate) ty: SqlType,
    pub(crate) eval: Eval,
    /// The same expression as a number, where it is a DOUBLE built from
    /// columns, constants and arithmetic.
    pub(crate) dbl: Option<EvalF64>,
}

/// The aggregate functions.
pub(crate) const AGGREGATES: [&str; 7] = ["COUNT", "SUM", "AVG", "MIN", "MAX", "FIRST_VALUE", "LAST_VALUE"];

/// What names mean where an expression is compiled.
pub(crate) trait Scope {
    /// The position and type of a column.
    fn column(&self, id: &Ident, span: Span) -> Result<(usize, SqlType)>;
    /// The position and type of an aggregate's result, where aggregates
    /// are allowed.
    fn aggregate(&mut self, f: &Function, span: Span) -> Result<(usize, SqlType)>;
}

/// The span of `e`, or `fallback` where sqlparser has none.
pub(crate) fn span_of(e: &Expr, fallback: Span) -> Span {
    let s = e.span();
    if s.start.line == 0 {
        fallback
    } else {
        s
    }
}

/// The SQL type a column is declared with.
///
/// # Errors
/// A type outside the supported ones, named.
pub(crate) fn sql_type(t: &DataType, span: Span) -> Result<SqlType> {
    let text = t.to_string().to_uppercase();
    Ok(match text.as_str() {
        "BOOLEAN" | "BOOL" => SqlType::Boolean,
        "INT" | "INTEGER" => SqlType::Int,
        "BIGINT" => SqlType::BigInt,
        "DOUBLE" | "DOUBLE PRECISION" => SqlType::Double,
        "STRING" | "VARCHAR" => SqlType::String,
        s if s.starts_with("VARCHAR(") => SqlType::String,
        "TIMESTAMP(3)" => SqlType::Timestamp,
        "TIMESTAMP_LTZ(3)" | "TIMESTAMP(3) WITH LOCAL TIME ZONE" => SqlType::TimestampLtz,
        _ => {
            return Err(Error::at(
                span,
                format!(
                    "type {text} is not supported (supported: BOOLEAN, INT, BIGINT, DOUBLE, STRING, VARCHAR, TIMESTAMP(3), TIMESTAMP_LTZ(3))"
                ),
            ))
        }
    })
}

/// An interval literal in milliseconds, e.g. `INTERVAL '5' SECOND`.
///
/// # Errors
/// Not an interval of SECOND, MINUTE, HOUR or DAY with a positive
/// number of whole milliseconds.
pub(crate) fn interval_ms(e: &Expr, fallback: Span) -> Result<i64> {
    let span = span_of(e, fallback);
    let Expr::Interval(i) = e else {
        return Err(Error::at(span, format!("expected an interval like INTERVAL '5' SECOND, found `{e}`")));
    };
    let unit = match &i.leading_field {
        Some(DateTimeField::Second | DateTimeField::Seconds) => 1_000.0,
        Some(DateTimeField::Minute | DateTimeField::Minutes) => 60_000.0,
        Some(DateTimeField::Hour | DateTimeField::Hours) => 3_600_000.0,
        Some(DateTimeField::Day | DateTimeField::Days) => 86_400_000.0,
        other => {
            let name = other.as_ref().map_or_else(|| "no unit".to_string(), ToString::to_string);
            return Err(Error::at(
                span,
                format!("interval unit {name} is not supported (use SECOND, MINUTE, HOUR or DAY)"),
            ));
        }
    };
    if i.last_field.is_some() {
        return Err(Error::at(span, "intervals spanning two units (e.g. MINUTE TO SECOND) are not supported"));
    }
    let text = match i.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Lit::SingleQuotedString(s) | Lit::Number(s, _) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let n: f64 =
        text.trim().parse().map_err(|_| Error::at(span, format!("interval `{e}` is not a number of its unit")))?;
    let ms = n * unit;
    if !(ms >= 1.0 && ms.fract() == 0.0 && ms < 1e15) {
        return Err(Error::at(span, format!("interval `{e}` must be a positive whole number of milliseconds")));
    }
    Ok(ms as i64)
}

impl Compiled {
    /// An expression that is neither a plain column nor a constant.
    fn computed(ty: SqlType, eval: Eval) -> Compiled {
        Compiled { column: None, konst: None, ty, eval, dbl: None }
    }

    /// A DOUBLE expression computed as a number.
    fn number(dbl: EvalF64) -> Compiled {
        let d = dbl.clone();
        let eval: Eval = Arc::new(move |row| d(row).map_or(Value::Null, Value::Double));
        Compiled { column: None, konst: None, ty: SqlType::Double, eval, dbl: Some(dbl) }
    }
}

fn constant(ty: SqlType, v: Value) -> Compiled {
    let dbl: Option<EvalF64> = match (ty, &v) {
        (SqlType::Double, Value::Double(x)) => {
            let x = *x;
            Some(Arc::new(move |_| Some(x)))
        }
        (SqlType::Double, _) => Some(Arc::new(|_| None)),
        _ => None,
    };
    Compiled { column: None, konst: Some(v.clone()), ty, eval: Arc::new(move |_| v.clone()), dbl }
}

/// Widens an INT or BIGINT to `to` (numbers only); other types unchanged.
pub(crate) fn coerce(c: Compiled, to: SqlType) -> Compiled {
    if c.ty == to {
        return c;
    }
    if let Some(v) = &c.konst {
        let folded = match (c.ty, to) {
            (SqlType::Int, SqlType::BigInt) => Some(v.as_i64().map_or(Value::Null, Value::BigInt)),
            (SqlType::Int | SqlType::BigInt, SqlType::Double) => Some(v.as_f64().map_or(Value::Null, Value::Double)),
            _ => None,
        };
        if let Some(v) = folded {
            return constant(to, v);
        }
    }
    let f = c.eval;
    match (c.ty, to) {
        (SqlType::Int, SqlType::BigInt) => {
            Compiled::computed(to, Arc::new(move |r| f(r).as_i64().map_or(Value::Null, Value::BigInt)))
        }
        (SqlType::Int | SqlType::BigInt, SqlType::Double) => Compiled::number(Arc::new(move |r| f(r).as_f64())),
        _ => Compiled::computed(c.ty, f),
    }
}

/// Whether a value of `from` can be stored where `to` is declared
/// (Flink's implicit widening of numbers).
pub(crate) fn assignable(from: SqlType, to: SqlType) -> bool {
    from == to
        || matches!((from, to), (SqlType::Int, SqlType::BigInt | SqlType::Double) | (SqlType::BigInt, SqlType::Double))
}

/// The common type of two numbers.
fn wider(a: SqlType, b: SqlType) -> SqlType {
    if a == SqlType::Double || b == SqlType::Double {
        SqlType::Double
    } else if a == SqlType::BigInt || b == SqlType::BigInt {
        SqlType::BigInt
    } else {
        SqlType::Int
    }
}

/// Compiles `e` in `scope`; `fallback` locates errors where sqlparser
/// keeps no span.
pub(crate) fn compile(e: &Expr, scope: &mut dyn Scope, fallback: Span) -> Result<Compiled> {
    let span = span_of(e, fallback);
    match e {
        Expr::Identifier(id) => column(scope, id, span),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(id) => column(scope, id, span),
            None => Err(Error::at(span, "empty name")),
        },
        Expr::Nested(inner) => compile(inner, scope, span),
        Expr::Value(v) => literal(&v.value, span),
        Expr::UnaryOp { op, expr } => unary(*op, compile(expr, scope, span)?, span),
        Expr::BinaryOp { left, op, right } => {
            if matches!(right.as_ref(), Expr::Interval(_)) {
                let l = compile(left, scope, span)?;
                return timestamp_shift(l, op, interval_ms(right, span)?, span);
            }
            let l = compile(left, scope, span)?;
            let r = compile(right, scope, span)?;
            binary(op, l, r, span)
        }
        Expr::IsNull(inner) => {
            let f = compile(inner, scope, span)?.eval;
            Ok(Compiled::computed(SqlType::Boolean, Arc::new(move |r| Value::Bool(f(r).is_null()))))
        }
        Expr::IsNotNull(inner) => {
            let f = compile(inner, scope, span)?.eval;
            Ok(Compiled::computed(SqlType::Boolean, Arc::new(move |r| Value::Bool(!f(r).is_null()))))
        }
        Expr::Cast { kind: CastKind::Cast, expr, data_type, format: None } => {
            let to = sql_type(data_type, span)?;
            if matches!(expr.as_ref(), Expr::Value(v) if v.value == Lit::Null) {
                return Ok(constant(to, Value::Null));
            }
            cast(compile(expr, scope, span)?, to, span)
        }
        Expr::Case { operand, conditions, else_result, .. } => {
            let operand = operand.as_ref().map(|o| compile(o, scope, span)).transpose()?;
            let mut whens = Vec::new();
            for c in conditions {
                let cond = match &operand {
                    Some(o) => binary(&BinaryOperator::Eq, o.clone(), compile(&c.condition, scope, span)?, span)?,
                    None => {
                        boolean(compile(&c.condition, scope, span)?, "a WHEN condition", span_of(&c.condition, span))?
                    }
                };
                whens.push((cond.eval, compile(&c.result, scope, span)?));
            }
            let els = else_result.as_ref().map(|e| compile(e, scope, span)).transpose()?;
            case(whens, els, span)
        }
        Expr::Function(f) => function(f, scope, span),
        Expr::Interval(_) => {
            Err(Error::at(span, "an interval is only supported added to or subtracted from a timestamp"))
        }
        other => Err(Error::at(span, format!("expression `{other}` is not supported"))),
    }
}

fn column(scope: &mut dyn Scope, id: &Ident, span: Span) -> Result<Compiled> {
    let (i, ty) = scope.column(id, span)?;
    let dbl: Option<EvalF64> = (ty == SqlType::Double).then(|| -> EvalF64 {
        Arc::new(move |r| match r.get(i) {
            Some(Value::Double(a)) => Some(*a),
            _ => None,
        })
    });
    Ok(Compiled {
        column: Some(i),
        konst: None,
        ty,
        eval: Arc::new(move |r| r.get(i).cloned().unwrap_or(Value::Null)),
        dbl,
    })
}

fn literal(v: &Lit, span: Span) -> Result<Compiled> {
    Ok(match v {
        Lit::Number(s, _) => {
            if let Ok(i) = s.parse::<i32>() {
                constant(SqlType::Int, Value::Int(i))
            } else if let Ok(i) = s.parse::<i64>() {
                constant(SqlType::BigInt, Value::BigInt(i))
            } else {
                let d: f64 = s.parse().map_err(|_| Error::at(span, format!("`{s}` is not a number")))?;
                constant(SqlType::Double, Value::Double(d))
            }
        }
        Lit::SingleQuotedString(s) => constant(SqlType::String, Value::Str(s.as_str().into())),
        Lit::Boolean(b) => constant(SqlType::Boolean, Value::Bool(*b)),
        Lit::Null => return Err(Error::at(span, "an untyped NULL is not supported; write CAST(NULL AS <type>)")),
        other => return Err(Error::at(span, format!("literal `{other}` is not supported"))),
    })
}

fn boolean(c: Compiled, what: &str, span: Span) -> Result<Compiled> {
    if c.ty != SqlType::Boolean {
        return Err(Error::at(span, format!("type mismatch: {what} must be BOOLEAN, not {}", c.ty)));
    }
    Ok(c)
}

fn unary(op: UnaryOperator, c: Compiled, span: Span) -> Result<Compiled> {
    let f = c.eval;
    match op {
        UnaryOperator::Not => {
            boolean(Compiled::computed(c.ty, f.clone()), "the operand of NOT", span)?;
            Ok(Compiled::computed(
                SqlType::Boolean,
                Arc::new(move |r| match f(r) {
                    Value::Bool(b) => Value::Bool(!b),
                    _ => Value::Null,
                }),
            ))
        }
        UnaryOperator::Minus if c.ty.is_numeric() => Ok(Compiled::computed(
            c.ty,
            Arc::new(move |r| match f(r) {
                Value::Int(v) => Value::Int(v.wrapping_neg()),
                Value::BigInt(v) => Value::BigInt(v.wrapping_neg()),
                Value::Double(v) => Value::Double(-v),
                _ => Value::Null,
            }),
        )),
        UnaryOperator::Plus if c.ty.is_numeric() => Ok(Compiled::computed(c.ty, f)),
        UnaryOperator::Minus | UnaryOperator::Plus => {
            Err(Error::at(span, format!("type mismatch: unary {op} needs a number, not {}", c.ty)))
        }
        other => Err(Error::at(span, format!("operator {other} is not supported"))),
    }
}

fn timestamp_shift(l: Compiled, op: &BinaryOperator, ms: i64, span: Span) -> Result<Compiled> {
    let sign = match op {
        BinaryOperator::Plus => 1,
        BinaryOperator::Minus => -1,
        other => return Err(Error::at(span, format!("operator {other} is not supported with an interval"))),
    };
    if !l.ty.is_timestamp() {
        return Err(Error::at(span, format!("type mismatch: an interval is added to a timestamp, not to {}", l.ty)));
    }
    let f = l.eval;
    Ok(Compiled::computed(
        l.ty,
        Arc::new(move |r| match f(r) {
            Value::Ts(t) => Value::Ts(t.saturating_add(sign * ms)),
            _ => Value::Null,
        }),
    ))
}

macro_rules! numeric_op {
    ($ty:expr, $l:expr, $r:expr, $int:expr, $big:expr, $dbl:expr) => {{
        let (l, r) = (coerce($l, $ty), coerce($r, $ty));
        if let (Some(ld), Some(rd)) = (&l.dbl, &r.dbl) {
            // Doubles: numbers pass between the parts; a column with a
            // number is read in place, the number once, here.
            let dbl: EvalF64 = match (l.column, &r.konst) {
                (Some(i), Some(Value::Double(b))) => {
                    let b = *b;
                    Arc::new(move |row| match row.get(i) {
                        Some(Value::Double(a)) => Some($dbl(*a, b)),
                        _ => None,
                    })
                }
                (None, Some(Value::Double(b))) => {
                    let (b, ld) = (*b, ld.clone());
                    Arc::new(move |row| ld(row).map(|a| $dbl(a, b)))
                }
                _ => {
                    let (ld, rd) = (ld.clone(), rd.clone());
                    Arc::new(move |row| Some($dbl(ld(row)?, rd(row)?)))
                }
            };
            return Ok(Compiled::number(dbl));
        }
        let (l, r) = (l.eval, r.eval);
        let eval: Eval = match $ty {
            SqlType::Int => Arc::new(move |row| match (l(row), r(row)) {
                (Value::Int(a), Value::Int(b)) => $int(a, b).map_or(Value::Null, Value::Int),
                _ => Value::Null,
            }),
            SqlType::BigInt => Arc::new(move |row| match (l(row), r(row)) {
                (Value::BigInt(a), Value::BigInt(b)) => $big(a, b).map_or(Value::Null, Value::BigInt),
                _ => Value::Null,
            }),
            _ => Arc::new(move |row| match (l(row), r(row)) {
                (Value::Double(a), Value::Double(b)) => Value::Double($dbl(a, b)),
                _ => Value::Null,
            }),
        };
        Ok(Compiled::computed($ty, eval))
    }};
}

fn binary(op: &BinaryOperator, l: Compiled, r: Compiled, span: Span) -> Result<Compiled> {
    use BinaryOperator as B;
    match op {
        B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
            if !l.ty.is_numeric() || !r.ty.is_numeric() {
                return Err(Error::at(
                    span,
                    format!("type mismatch: {} {op} {} (arithmetic needs numbers)", l.ty, r.ty),
                ));
            }
            let ty = wider(l.ty, r.ty);
            // Integers wrap on overflow as in Flink (Java); an integer
            // division or modulo by zero is NULL.
            match op {
                B::Plus => numeric_op!(
                    ty,
                    l,
                    r,
                    |a: i32, b| Some(a.wrapping_add(b)),
                    |a: i64, b| Some(a.wrapping_add(b)),
                    |a: f64, b| a + b
                ),
                B::Minus => numeric_op!(
                    ty,
                    l,
                    r,
                    |a: i32, b| Some(a.wrapping_sub(b)),
                    |a: i64, b| Some(a.wrapping_sub(b)),
                    |a: f64, b| a - b
                ),
                B::Multiply => numeric_op!(
                    ty,
                    l,
                    r,
                    |a: i32, b| Some(a.wrapping_mul(b)),
                    |a: i64, b| Some(a.wrapping_mul(b)),
                    |a: f64, b| a * b
                ),
                B::Divide => numeric_op!(
                    ty,
                    l,
                    r,
                    |a: i32, b| a.checked_div(b).or_else(|| (b == -1).then(|| a.wrapping_neg())),
                    |a: i64, b| a.checked_div(b).or_else(|| (b == -1).then(|| a.wrapping_neg())),
                    |a: f64, b| a / b
                ),
                _ => numeric_op!(
                    ty,
                    l,
                    r,
                    |a: i32, b| a.checked_rem(b).or((b == -1).then_some(0)),
                    |a: i64, b| a.checked_rem(b).or((b == -1).then_some(0)),
                    |a: f64, b| a % b
                ),
            }
        }
        B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
            let comparable = l.ty == r.ty
                || (l.ty.is_numeric() && r.ty.is_numeric())
                || (l.ty.is_timestamp() && r.ty.is_timestamp());
            if !comparable {
                return Err(Error::at(span, format!("type mismatch: cannot compare {} with {}", l.ty, r.ty)));
            }
            let (l, r) = if l.ty.is_numeric() {
                let ty = wider(l.ty, r.ty);
                (coerce(l, ty).eval, coerce(r, ty).eval)
            } else {
                (l.eval, r.eval)
            };
            let test: fn(std::cmp::Ordering) -> bool = match op {
                B::Eq => |o| o.is_eq(),
                B::NotEq => |o| o.is_ne(),
                B::Lt => |o| o.is_lt(),
                B::LtEq => |o| o.is_le(),
                B::Gt => |o| o.is_gt(),
                _ => |o| o.is_ge(),
            };
            Ok(Compiled::computed(
                SqlType::Boolean,
                Arc::new(move |row| {
                    let (a, b) = (l(row), r(row));
                    if a.is_null() || b.is_null() {
                        return Value::Null;
                    }
                    // NaN compares as in Java's primitive comparisons: false.
                    a.partial_cmp(&b).map_or(Value::Bool(false), |o| Value::Bool(test(o)))
                }),
            ))
        }
        B::And | B::Or => {
            let l = boolean(l, &format!("the left side of {op}"), span)?.eval;
            let r = boolean(r, &format!("the right side of {op}"), span)?.eval;
            let and = matches!(op, B::And);
            Ok(Compiled::computed(
                SqlType::Boolean,
                Arc::new(move |row| {
                    let (a, b) = (l(row), r(row));
                    // Three-valued logic: FALSE AND NULL is FALSE, TRUE OR NULL is TRUE.
                    match (a, b) {
                        (Value::Bool(x), Value::Bool(y)) => Value::Bool(if and { x && y } else { x || y }),
                        (Value::Bool(x), _) | (_, Value::Bool(x)) if x != and => Value::Bool(x),
                        _ => Value::Null,
                    }
                }),
            ))
        }
        B::StringConcat => {
            if l.ty != SqlType::String || r.ty != SqlType::String {
                return Err(Error::at(
                    span,
                    format!("type mismatch: {} || {} (needs STRING on both sides)", l.ty, r.ty),
                ));
            }
            let (l, r) = (l.eval, r.eval);
            Ok(Compiled::computed(
                SqlType::String,
                Arc::new(move |row| match (l(row), r(row)) {
                    (Value::Str(a), Value::Str(b)) => Value::Str(format!("{a}{b}").into()),
                    _ => Value::Null,
                }),
            ))
        }
        other => Err(Error::at(span, format!("operator {other} is not supported"))),
    }
}

fn case(whens: Vec<(Eval, Compiled)>, els: Option<Compiled>, span: Span) -> Result<Compiled> {
    let mut ty = None::<SqlType>;
    for c in whens.iter().map(|(_, c)| c).chain(els.iter()) {
        ty = Some(match ty {
            None => c.ty,
            Some(t) if t == c.ty => t,
            Some(t) if t.is_numeric() && c.ty.is_numeric() => wider(t, c.ty),
            Some(t) => return Err(Error::at(span, format!("type mismatch: CASE results of types {t} and {}", c.ty))),
        });
    }
    let Some(ty) = ty else { return Err(Error::at(span, "CASE without WHEN")) };
    let whens: Vec<(Eval, Eval)> = whens.into_iter().map(|(w, c)| (w, coerce(c, ty).eval)).collect();
    let els = els.map(|c| coerce(c, ty).eval);
    Ok(Compiled::computed(
        ty,
        Arc::new(move |row| {
            for (w, v) in &whens {
                if w(row) == Value::Bool(true) {
                    return v(row);
                }
            }
            els.as_ref().map_or(Value::Null, |e| e(row))
        }),
    ))
}

fn cast(c: Compiled, to: SqlType, span: Span) -> Result<Compiled> {
    let from = c.ty;
    if from == to {
        return Ok(c);
    }
    let f = c.eval;
    let eval: Eval = match (from, to) {
        (_, SqlType::Double) if from.is_numeric() => coerce(Compiled::computed(from, f), to).eval,
        (SqlType::Int, SqlType::BigInt) => coerce(Compiled::computed(from, f), to).eval,
        // Narrowing truncates toward zero and wraps, as Java's casts do.
        (SqlType::BigInt, SqlType::Int) => {
            Arc::new(move |r| f(r).as_i64().map_or(Value::Null, |v| Value::Int(v as i32)))
        }
        (SqlType::Double, SqlType::Int) => {
            Arc::new(move |r| f(r).as_f64().map_or(Value::Null, |v| Value::Int(v as i32)))
        }
        (SqlType::Double, SqlType::BigInt) => {
            Arc::new(move |r| f(r).as_f64().map_or(Value::Null, |v| Value::BigInt(v as i64)))
        }
        (SqlType::Timestamp, SqlType::TimestampLtz) | (SqlType::TimestampLtz, SqlType::Timestamp) => f,
        (_, SqlType::String) => Arc::new(move |r| {
            let v = f(r);
            if v.is_null() {
                return Value::Null;
            }
            let mut s = String::new();
            render(&v, from, &mut s, Render::Cast);
            Value::Str(s.into())
        }),
        // A string that is not a value of the type is NULL (Flink's
        // TRY_CAST; its CAST fails the job).
        (SqlType::String, _) => Arc::new(move |r| match f(r) {
            Value::Str(s) => parse_value(&s, to).unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        _ => return Err(Error::at(span, format!("CAST from {from} to {to} is not supported"))),
    };
    Ok(Compiled::computed(to, eval))
}

/// How a value is written out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    /// Flink's CSV format: TIMESTAMP `2023-11-14 22:13:25.5`,
    /// TIMESTAMP_LTZ with a `Z`.
    Csv,
    /// Flink's print connector: `2023-11-14T22:13:25.500`.
    Print,
    /// `CAST(.. AS STRING)`: `2023-11-14 22:13:25.500`.
    Cast,
}

/// Appends `v` (of type `ty`) as text.
pub(crate) fn render(v: &Value, ty: SqlType, out: &mut String, how: Render) {
    use std::fmt::Write;
    match v {
        Value::Null => {
            if how != Render::Csv {
                out.push_str("NULL");
            }
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(d) => format_double(*d, out),
        Value::Str(s) => out.push_str(s),
        Value::Ts(ms) => match how {
            Render::Csv => {
                format_timestamp(*ms, ' ', out);
                if ty == SqlType::TimestampLtz {
                    out.push('Z');
                }
            }
            Render::Print | Render::Cast => {
                let start = out.len();
                format_timestamp(ms.div_euclid(1000) * 1000, if how == Render::Print { 'T' } else { ' ' }, out);
                let _ = write!(out, ".{:03}", ms.rem_euclid(1000));
                if how == Render::Print && ty == SqlType::TimestampLtz {
                    out.push('Z');
                }
                let _ = start;
            }
        },
    }
}

/// Parses text as a value of `ty`; `None` when it is not one. Inlined
/// where it is called: the common types are read in place, without a
/// call returning a value through memory.
#[inline(always)]
pub(crate) fn parse_value(s: &str, ty: SqlType) -> Option<Value> {
    // A number that parses as it is had nothing to trim (a number holds no
    // whitespace); anything else takes the general path.
    match ty {
        SqlType::String => Some(Value::Str(s.into())),
        SqlType::BigInt => match rivulet::text::parse_i64(s) {
            Some(v) => Some(Value::BigInt(v)),
            None => parse_trimmed(s, ty),
        },
        SqlType::Double => match rivulet::text::parse_f64(s) {
            Some(v) => Some(Value::Double(v)),
            None => parse_trimmed(s, ty),
        },
        _ => parse_trimmed(s, ty),
    }
}

/// [`parse_value`] of text that may need trimming, or of the rarer types.
#[cold]
#[inline(never)]
fn parse_trimmed(s: &str, ty: SqlType) -> Option<Value> {
    // Visible ASCII at both ends is never whitespace: nothing to trim.
    let t = match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    };
    Some(match ty {
        SqlType::String => Value::Str(s.into()),
        SqlType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return None,
        },
        SqlType::Int => Value::Int(i32::try_from(rivulet::text::parse_i64(t)?).ok()?),
        SqlType::BigInt => Value::BigInt(rivulet::text::parse_i64(t)?),
        SqlType::Double => Value::Double(rivulet::text::parse_f64(t)?),
        SqlType::Timestamp | SqlType::TimestampLtz => {
            Value::Ts(crate::types::parse_timestamp(t.strip_suffix('Z').unwrap_or(t))?)
        }
    })
}

fn args_of(f: &Function) -> Vec<&Expr> {
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

fn function(f: &Function, scope: &mut dyn Scope, span: Span) -> Result<Compiled> {
    let name = f.name.to_string().to_uppercase();
    if AGGREGATES.contains(&name.as_str()) {
        let (i, ty) = scope.aggregate(f, span)?;
        return Ok(Compiled {
            column: Some(i),
            konst: None,
            ty,
            eval: Arc::new(move |r| r.get(i).cloned().unwrap_or(Value::Null)),
            dbl: None,
        });
    }
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        return Err(Error::at(span, format!("{name}(...) with OVER, FILTER or WITHIN GROUP is not supported")));
    }
    let all = match &f.args {
        FunctionArguments::List(l) => l.args.len(),
        _ => 0,
    };
    let args = args_of(f);
    if args.len() != all {
        return Err(Error::at(span, format!("{name}: named or wildcard arguments are not supported")));
    }
    let arity = |n: usize| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(Error::at(span, format!("{name} takes {n} argument(s), found {}", args.len())))
        }
    };
    match name.as_str() {
        "TO_TIMESTAMP_LTZ" => {
            arity(2)?;
            let v = compile(args[0], scope, span)?;
            if !matches!(v.ty, SqlType::Int | SqlType::BigInt) {
                return Err(Error::at(
                    span,
                    format!("type mismatch: TO_TIMESTAMP_LTZ needs an INT or BIGINT epoch value, not {}", v.ty),
                ));
            }
            let scale = match args[1] {
                Expr::Value(l) if l.value == Lit::Number("3".into(), false) => 1,
                Expr::Value(l) if l.value == Lit::Number("0".into(), false) => 1000,
                other => {
                    return Err(Error::at(
                        span_of(other, span),
                        "TO_TIMESTAMP_LTZ precision must be 3 (milliseconds) or 0 (seconds)",
                    ))
                }
            };
            let ts = move |v: Option<i64>| v.map_or(Value::Null, |v| Value::Ts(v.saturating_mul(scale)));
            let eval: Eval = match v.column {
                // The usual event time: a column, read in place.
                Some(i) => Arc::new(move |r| ts(r.get(i).and_then(Value::as_i64))),
                None => {
                    let f = v.eval;
                    Arc::new(move |r| ts(f(r).as_i64()))
                }
            };
            Ok(Compiled::computed(SqlType::TimestampLtz, eval))
        }
        "ABS" => {
            arity(1)?;
            let v = compile(args[0], scope, span)?;
            unary_numeric(v, span, "ABS", |x| x.wrapping_abs(), |x| x.wrapping_abs(), f64::abs)
        }
        "UPPER" | "LOWER" => {
            arity(1)?;
            let v = compile(args[0], scope, span)?;
            if v.ty != SqlType::String {
                return Err(Error::at(span, format!("type mismatch: {name} needs a STRING, not {}", v.ty)));
            }
            let (f, upper) = (v.eval, name == "UPPER");
            Ok(Compiled::computed(
                SqlType::String,
                Arc::new(move |r| match f(r) {
                    Value::Str(s) => Value::Str(if upper { s.to_uppercase() } else { s.to_lowercase() }),
                    _ => Value::Null,
                }),
            ))
        }
        "COALESCE" => {
            if args.is_empty() {
                return Err(Error::at(span, "COALESCE needs at least one argument"));
            }
            let parts = args.iter().map(|a| compile(a, scope, span)).collect::<Result<Vec<_>>>()?;
            let whens = parts
                .iter()
                .map(|c| {
                    let f = c.eval.clone();
                    let test: Eval = Arc::new(move |r| Value::Bool(!f(r).is_null()));
                    (test, c.clone())
                })
                .collect();
            case(whens, None, span)
        }
        _ => Err(Error::at(span, format!("function {name} is not supported"))),
    }
}

fn unary_numeric(
    v: Compiled,
    span: Span,
    name: &str,
    i: fn(i32) -> i32,
    b: fn(i64) -> i64,
    d: fn(f64) -> f64,
) -> Result<Compiled> {
    if !v.ty.is_numeric() {
        return Err(Error::at(span, format!("type mismatch: {name} needs a number, not {}", v.ty)));
    }
    let f = v.eval;
    Ok(Compiled::computed(
        v.ty,
        Arc::new(move |r| match f(r) {
            Value::Int(x) => Value::Int(i(x)),
            Value::BigInt(x) => Value::BigInt(b(x)),
            Value::Double(x) => Value::Double(d(x)),
            _ => Value::Null,
        }),
    ))
}
