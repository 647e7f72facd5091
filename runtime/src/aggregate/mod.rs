//! Incremental aggregation: `create / add / merge / result`.
//!
//! Built-ins: [`Count`], [`Sum`], [`Min`], [`Max`], [`Avg`], [`First`],
//! [`Last`], [`StdDev`]. A tuple of aggregates is an aggregate of tuples, so
//! `(Avg::of(f), Count)` yields `(avg, count)` per window.

mod builtin;

pub use builtin::{Avg, Count, First, Last, Max, Min, StdDev, Sum};

use serde::{de::DeserializeOwned, Serialize};

/// An incremental aggregate over values of `T`.
///
/// `merge` must be associative: sliding windows merge panes and session
/// windows merge sessions.
pub trait Aggregate<T>: Clone + Send + 'static {
    /// The running accumulator, stored in keyed state.
    type Acc: Clone + Serialize + DeserializeOwned + Send + 'static;
    /// What a window emits.
    type Out: Send + 'static;

    /// A fresh accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds one value.
    fn add(&self, acc: &mut Self::Acc, value: &T);
    /// Folds `other` into `acc` (`other` came later in event order).
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
    /// The result of an accumulator.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

macro_rules! tuple_aggregate {
    ($(($A:ident, $i:tt)),+) => {
        impl<T, $($A: Aggregate<T>),+> Aggregate<T> for ($($A,)+) {
            type Acc = ($($A::Acc,)+);
            type Out = ($($A::Out,)+);
            fn create(&self) -> Self::Acc {
                ($(self.$i.create(),)+)
            }
            #[inline]
            fn add(&self, acc: &mut Self::Acc, value: &T) {
                $(self.$i.add(&mut acc.$i, value);)+
            }
            fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
                $(self.$i.merge(&mut acc.$i, &other.$i);)+
            }
            fn result(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$i.result(&acc.$i),)+)
            }
        }
    };
}
tuple_aggregate!((A, 0), (B, 1));
tuple_aggregate!((A, 0), (B, 1), (C, 2));
tuple_aggregate!((A, 0), (B, 1), (C, 2), (D, 3));
