//! The built-in aggregates. Each reads an `f64` from the record with a
//! field function, except [`Count`].

use super::Aggregate;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Number of elements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> Aggregate<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _: &T) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

macro_rules! field_aggregate {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<T, F> {
            field: F,
            _t: PhantomData<fn(&T)>,
        }
        impl<T, F: Fn(&T) -> f64 + Clone + Send + 'static> $name<T, F> {
            /// Aggregates the value `field` reads from each element.
            pub fn of(field: F) -> Self {
                Self { field, _t: PhantomData }
            }
        }
        impl<T, F: Clone> Clone for $name<T, F> {
            fn clone(&self) -> Self {
                Self { field: self.field.clone(), _t: PhantomData }
            }
        }
    };
}

field_aggregate!(
    /// Sum of a field, in arrival order.
    Sum
);
field_aggregate!(
    /// Smallest value of a field (`None` for an empty window).
    Min
);
field_aggregate!(
    /// Largest value of a field (`None` for an empty window).
    Max
);
field_aggregate!(
    /// Arithmetic mean of a field: `sum / count`, summed in arrival order.
    Avg
);
field_aggregate!(
    /// Value of the first element to arrive.
    First
);
field_aggregate!(
    /// Value of the last element to arrive.
    Last
);
field_aggregate!(
    /// Sample standard deviation of a field (Welford; Chan's merge).
    StdDev
);

impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for Sum<T, F> {
    type Acc = f64;
    type Out = f64;
    fn create(&self) -> f64 {
        0.0
    }
    #[inline]
    fn add(&self, acc: &mut f64, v: &T) {
        *acc += (self.field)(v);
    }
    fn merge(&self, acc: &mut f64, other: &f64) {
        *acc += other;
    }
    fn result(&self, acc: &f64) -> f64 {
        *acc
    }
}

macro_rules! extreme {
    ($name:ident, $pick:ident) => {
        impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for $name<T, F> {
            type Acc = Option<f64>;
            type Out = Option<f64>;
            fn create(&self) -> Option<f64> {
                None
            }
            #[inline]
            fn add(&self, acc: &mut Option<f64>, v: &T) {
                let x = (self.field)(v);
                *acc = Some(acc.map_or(x, |a| a.$pick(x)));
            }
            fn merge(&self, acc: &mut Option<f64>, other: &Option<f64>) {
                if let Some(o) = *other {
                    *acc = Some(acc.map_or(o, |a| a.$pick(o)));
                }
            }
            fn result(&self, acc: &Option<f64>) -> Option<f64> {
                *acc
            }
        }
    };
}
extreme!(Min, min);
extreme!(Max, max);

/// Accumulator of [`Avg`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AvgAcc {
    /// Running sum.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
}

impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for Avg<T, F> {
    type Acc = AvgAcc;
    type Out = f64;
    fn create(&self) -> AvgAcc {
        AvgAcc::default()
    }
    #[inline]
    fn add(&self, acc: &mut AvgAcc, v: &T) {
        acc.sum += (self.field)(v);
        acc.count += 1;
    }
    fn merge(&self, acc: &mut AvgAcc, other: &AvgAcc) {
        acc.sum += other.sum;
        acc.count += other.count;
    }
    fn result(&self, acc: &AvgAcc) -> f64 {
        if acc.count == 0 {
            f64::NAN
        } else {
            acc.sum / acc.count as f64
        }
    }
}

impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for First<T, F> {
    type Acc = Option<f64>;
    type Out = Option<f64>;
    fn create(&self) -> Option<f64> {
        None
    }
    #[inline]
    fn add(&self, acc: &mut Option<f64>, v: &T) {
        if acc.is_none() {
            *acc = Some((self.field)(v));
        }
    }
    fn merge(&self, acc: &mut Option<f64>, other: &Option<f64>) {
        if acc.is_none() {
            *acc = *other;
        }
    }
    fn result(&self, acc: &Option<f64>) -> Option<f64> {
        *acc
    }
}

impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for Last<T, F> {
    type Acc = Option<f64>;
    type Out = Option<f64>;
    fn create(&self) -> Option<f64> {
        None
    }
    #[inline]
    fn add(&self, acc: &mut Option<f64>, v: &T) {
        *acc = Some((self.field)(v));
    }
    fn merge(&self, acc: &mut Option<f64>, other: &Option<f64>) {
        if other.is_some() {
            *acc = *other;
        }
    }
    fn result(&self, acc: &Option<f64>) -> Option<f64> {
        *acc
    }
}

/// Accumulator of [`StdDev`]: count, mean and sum of squared deviations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl<T: 'static, F: Fn(&T) -> f64 + Clone + Send + 'static> Aggregate<T> for StdDev<T, F> {
    type Acc = Moments;
    type Out = Option<f64>;
    fn create(&self) -> Moments {
        Moments::default()
    }
    #[inline]
    fn add(&self, m: &mut Moments, v: &T) {
        let x = (self.field)(v);
        m.n += 1;
        let d = x - m.mean;
        m.mean += d / m.n as f64;
        m.m2 += d * (x - m.mean);
    }
    fn merge(&self, m: &mut Moments, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if m.n == 0 {
            *m = *o;
            return;
        }
        let n = m.n + o.n;
        let d = o.mean - m.mean;
        m.mean += d * o.n as f64 / n as f64;
        m.m2 += o.m2 + d * d * (m.n as f64) * (o.n as f64) / n as f64;
        m.n = n;
    }
    fn result(&self, m: &Moments) -> Option<f64> {
        (m.n >= 2).then(|| (m.m2 / (m.n - 1) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<A: Aggregate<f64>>(a: &A, xs: &[f64]) -> A::Out {
        let mut acc = a.create();
        for x in xs {
            a.add(&mut acc, x);
        }
        a.result(&acc)
    }

    fn split<A: Aggregate<f64>>(a: &A, xs: &[f64], at: usize) -> A::Out {
        let (l, r) = xs.split_at(at);
        let mut acc = a.create();
        l.iter().for_each(|x| a.add(&mut acc, x));
        let mut acc2 = a.create();
        r.iter().for_each(|x| a.add(&mut acc2, x));
        a.merge(&mut acc, &acc2);
        a.result(&acc)
    }

    #[test]
    fn builtins() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0];
        let id = |x: &f64| *x;
        assert_eq!(run(&Count, &xs), 6);
        assert_eq!(run(&Sum::of(id), &xs), 23.0);
        assert_eq!(run(&Min::of(id), &xs), Some(1.0));
        assert_eq!(run(&Max::of(id), &xs), Some(9.0));
        assert_eq!(run(&First::of(id), &xs), Some(3.0));
        assert_eq!(run(&Last::of(id), &xs), Some(9.0));
        assert!((run(&Avg::of(id), &xs) - 23.0 / 6.0).abs() < 1e-12);
        let sd = run(&StdDev::of(id), &xs).unwrap();
        assert!((sd - 2.994_439_290_863_427).abs() < 1e-9, "{sd}");
        for at in 0..=xs.len() {
            assert_eq!(split(&(Count, Max::of(id)), &xs, at), (6, Some(9.0)));
            assert_eq!(split(&First::of(id), &xs, at), Some(3.0));
            assert_eq!(split(&Last::of(id), &xs, at), Some(9.0));
            let s = split(&StdDev::of(id), &xs, at).unwrap();
            assert!((s - sd).abs() < 1e-9);
        }
        assert_eq!(run(&StdDev::of(id), &[1.0]), None);
    }
}
