//! The aggregate functions of a window query as one runtime
//! [`Aggregate`]: each row feeds every function's accumulator.

use crate::expr::{Eval, EvalF64};
use crate::types::{Row, SqlType, Value};
use rivulet::aggregate::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// `COUNT(*)`, or `COUNT(x)`: rows where `x` is not NULL.
    Count,
    /// `COUNT(DISTINCT x)`: distinct values of `x` other than NULL.
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// `FIRST_VALUE(x)`: the first value of `x` other than NULL, in the
    /// order rows arrived (as Flink's).
    FirstValue,
    /// `LAST_VALUE(x)`: the last value of `x` other than NULL.
    LastValue,
}

/// One aggregate call: its function, argument (none for `COUNT(*)`) and
/// the argument's type.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) func: Func,
    pub(crate) arg: Option<Eval>,
    pub(crate) arg_ty: SqlType,
    /// The argument as a number, where it is DOUBLE arithmetic (SUM and
    /// AVG of it add numbers, not values).
    pub(crate) arg_f64: Option<EvalF64>,
    /// As written, for EXPLAIN.
    pub(crate) text: String,
}

impl Call {
    /// The result type, as in Flink: COUNT is BIGINT, SUM / AVG / MIN /
    /// MAX keep their argument's type (AVG of an INT is an INT).
    pub(crate) fn result_type(&self) -> SqlType {
        match self.func {
            Func::Count | Func::CountDistinct => SqlType::BigInt,
            _ => self.arg_ty,
        }
    }
}

/// The running state of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Acc {
    Count(i64),
    /// Integer sum and count of non-NULL values.
    IntSum(i64, i64),
    /// Floating sum (in arrival order) and count of non-NULL values.
    DoubleSum(f64, i64),
    /// The least or greatest value so far (NULL: none yet).
    Extreme(Value),
    /// The distinct values so far, sorted (see [`total`]).
    Distinct(Vec<Value>),
    /// The first or last value so far (NULL: none yet).
    Pick(Value),
}

/// A total order on the values of one column: DOUBLEs by IEEE total order,
/// so every value (NaN too) has one place in a distinct set.
fn total(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.total_cmp(y),
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn insert_distinct(set: &mut Vec<Value>, v: Value) {
    if let Err(at) = set.binary_search_by(|e| total(e, &v)) {
        set.insert(at, v);
    }
}

/// Every aggregate call of a query.
#[derive(Clone)]
pub(crate) struct Calls(pub(crate) Arc<Vec<Call>>);

impl Aggregate<Row> for Calls {
    type Acc = Vec<Acc>;
    type Out = Vec<Value>;

    fn create(&self) -> Vec<Acc> {
        self.0
            .iter()
            .map(|c| match (c.func, c.arg_ty) {
                (Func::Count, _) => Acc::Count(0),
                (Func::CountDistinct, _) => Acc::Distinct(Vec::new()),
                (Func::FirstValue | Func::LastValue, _) => Acc::Pick(Value::Null),
                (Func::Sum | Func::Avg, SqlType::Double) => Acc::DoubleSum(0.0, 0),
                (Func::Sum | Func::Avg, _) => Acc::IntSum(0, 0),
                (Func::Min | Func::Max, _) => Acc::Extreme(Value::Null),
            })
            .collect()
    }

    #[inline]
    fn add(&self, acc: &mut Vec<Acc>, row: &Row) {
        for (c, a) in self.0.iter().zip(acc.iter_mut()) {
            if let (Some(f), Acc::DoubleSum(s, n)) = (&c.arg_f64, &mut *a) {
                if let Some(x) = f(row) {
                    *s += x;
                    *n += 1;
                }
                continue;
            }
            if let (None, Acc::Count(n)) = (&c.arg, &mut *a) {
                *n += 1;
                continue;
            }
            let v = match &c.arg {
                Some(f) => f(row),
                None => Value::Bool(true),
            };
            if v.is_null() {
                continue;
            }
            match a {
                Acc::Count(n) => *n += 1,
                Acc::IntSum(s, n) => {
                    *s = s.wrapping_add(v.as_i64().unwrap_or(0));
                    *n += 1;
                }
                Acc::DoubleSum(s, n) => {
                    *s += v.as_f64().unwrap_or(0.0);
                    *n += 1;
                }
                Acc::Extreme(e) => {
                    let replace = e.is_null()
                        || match c.func {
                            Func::Min => v.partial_cmp(e).is_some_and(std::cmp::Ordering::is_lt),
                            _ => v.partial_cmp(e).is_some_and(std::cmp::Ordering::is_gt),
                        };
                    if replace {
                        *e = v;
                    }
                }
                Acc::Distinct(set) => insert_distinct(set, v),
                Acc::Pick(p) => {
                    if c.func == Func::LastValue || p.is_null() {
                        *p = v;
                    }
                }
            }
        }
    }

    fn merge(&self, acc: &mut Vec<Acc>, other: &Vec<Acc>) {
        for ((c, a), o) in self.0.iter().zip(acc.iter_mut()).zip(other) {
            match (a, o) {
                (Acc::Count(n), Acc::Count(m)) => *n += m,
                (Acc::IntSum(s, n), Acc::IntSum(t, m)) => {
                    *s = s.wrapping_add(*t);
                    *n += m;
                }
                (Acc::DoubleSum(s, n), Acc::DoubleSum(t, m)) => {
                    *s += t;
                    *n += m;
                }
                (Acc::Extreme(e), Acc::Extreme(v)) => {
                    let replace = !v.is_null()
                        && (e.is_null()
                            || match c.func {
                                Func::Min => v.partial_cmp(e).is_some_and(std::cmp::Ordering::is_lt),
                                _ => v.partial_cmp(e).is_some_and(std::cmp::Ordering::is_gt),
                            });
                    if replace {
                        *e = v.clone();
                    }
                }
                (Acc::Distinct(set), Acc::Distinct(more)) => {
                    for v in more {
                        insert_distinct(set, v.clone());
                    }
                }
                // `other` holds rows that arrived after `acc`'s.
                (Acc::Pick(p), Acc::Pick(v)) if !v.is_null() && (c.func == Func::LastValue || p.is_null()) => {
                    *p = v.clone();
                }
                _ => {}
            }
        }
    }

    fn result(&self, acc: &Vec<Acc>) -> Vec<Value> {
        self.0
            .iter()
            .zip(acc)
            .map(|(c, a)| match (c.func, a) {
                (_, Acc::Count(n)) => Value::BigInt(*n),
                (_, Acc::IntSum(_, 0) | Acc::DoubleSum(_, 0)) => Value::Null,
                (Func::Sum, Acc::IntSum(s, _)) => int_of(*s, c.arg_ty),
                (Func::Sum, Acc::DoubleSum(s, _)) => Value::Double(*s),
                // Flink's AVG of integers divides in their type.
                (_, Acc::IntSum(s, n)) => int_of(s / n, c.arg_ty),
                (_, Acc::DoubleSum(s, n)) => Value::Double(s / *n as f64),
                (_, Acc::Extreme(v) | Acc::Pick(v)) => v.clone(),
                (_, Acc::Distinct(set)) => Value::BigInt(set.len() as i64),
            })
            .collect()
    }
}

fn int_of(v: i64, ty: SqlType) -> Value {
    if ty == SqlType::Int {
        Value::Int(v as i32)
    } else {
        Value::BigInt(v)
    }
}
