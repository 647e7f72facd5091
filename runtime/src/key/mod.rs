//! Keys, their stable hash and key groups.
//!
//! A key hashes into one of `max_parallelism` key groups (default 128); a
//! parallel instance owns a contiguous range of groups. The hash must never
//! change between versions or platforms: key groups name state on disk.

mod inline;

pub use inline::{InlineStr, TooLong};
use serde::{de::DeserializeOwned, Serialize};
use std::hash::Hash;
use std::ops::Range;

/// Default number of key groups (Flink's "max parallelism").
pub const DEFAULT_KEY_GROUPS: u16 = 128;

/// A key of a keyed stream.
pub trait Key: Clone + Eq + Hash + Serialize + DeserializeOwned + Send + 'static {
    /// A hash that is identical on every platform and version.
    fn stable_hash(&self) -> u64;
}

/// FNV-1a over bytes followed by a murmur3 finaliser: stable, fast on short keys.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

impl Key for String {
    fn stable_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

impl<const N: usize> Key for heapless::String<N> {
    fn stable_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn stable_hash(&self) -> u64 {
                hash_bytes(&self.to_le_bytes())
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Key for () {
    fn stable_hash(&self) -> u64 {
        0
    }
}

impl<A: Key, B: Key> Key for (A, B) {
    fn stable_hash(&self) -> u64 {
        fmix64(self.0.stable_hash() ^ self.1.stable_hash().rotate_left(29))
    }
}

/// The key group of `key` among `groups` groups.
#[inline]
pub fn key_group<K: Key>(key: &K, groups: u16) -> u16 {
    (key.stable_hash() % u64::from(groups)) as u16
}

/// The instance (of `parallelism`) that owns key group `group` — Flink's
/// `group * parallelism / max_parallelism`, which gives contiguous ranges.
#[inline]
pub fn instance_for_group(group: u16, groups: u16, parallelism: usize) -> usize {
    usize::from(group) * parallelism / usize::from(groups)
}

/// The contiguous key-group range owned by instance `index` of `parallelism`.
pub fn group_range(index: usize, groups: u16, parallelism: usize) -> Range<u16> {
    let g = usize::from(groups);
    let start = (index * g).div_ceil(parallelism);
    let end = ((index + 1) * g).div_ceil(parallelism);
    start as u16..end as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_groups_and_agree_with_instance_for_group() {
        for p in 1..=17 {
            let mut next = 0u16;
            for i in 0..p {
                let r = group_range(i, 128, p);
                assert_eq!(r.start, next, "p={p} i={i}");
                for g in r.clone() {
                    assert_eq!(instance_for_group(g, 128, p), i, "p={p} g={g}");
                }
                next = r.end;
            }
            assert_eq!(next, 128);
        }
    }

    #[test]
    fn hash_is_stable() {
        // Regression guard: changing the hash would move state between key groups.
        assert_eq!(hash_bytes(b"s0042"), hash_bytes(b"s0042"));
        assert_eq!(key_group(&String::from("s0042"), 128), {
            let h: heapless::String<16> = heapless::String::try_from("s0042").unwrap();
            key_group(&h, 128)
        });
    }
}
