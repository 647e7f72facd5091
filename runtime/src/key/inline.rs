//! [`InlineStr`]: a short string key held in place, `Copy`, so a record
//! carrying it is copied with a few moves, never a call.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A string of at most `N` bytes (`N` ≤ 255) stored inline. It serializes
/// and hashes ([`super::Key::stable_hash`]) exactly as the same text in a
/// `String` or `heapless::String`, so state written with either reads
/// back with it and lands in the same key groups.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u8,
    /// The text, then zeros: equality compares the whole array.
    bytes: [u8; N],
}

/// The text is longer than the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text longer than its inline capacity")
    }
}

impl std::error::Error for TooLong {}

impl<const N: usize> InlineStr<N> {
    const FITS: () = assert!(N <= 255, "InlineStr holds at most 255 bytes");

    /// The empty string.
    pub const fn new() -> Self {
        let () = Self::FITS;
        Self { len: 0, bytes: [0; N] }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether it holds no text.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `s`.
    ///
    /// # Errors
    /// [`TooLong`] if the result would not fit (nothing is appended then).
    pub fn push_str(&mut self, s: &str) -> Result<(), TooLong> {
        let at = usize::from(self.len);
        let end = at + s.len();
        let dst = self.bytes.get_mut(at..end).ok_or(TooLong)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| TooLong)?;
        Ok(())
    }

    /// `bytes` as text, when they are ASCII and fit; else `None`.
    #[inline]
    pub fn from_ascii(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > N {
            return None;
        }
        let mut out = Self::new();
        if copy_short(&mut out.bytes, bytes) >= 0x80 {
            return None;
        }
        out.len = u8::try_from(bytes.len()).ok()?;
        Some(out)
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TryFrom<&str> for InlineStr<N> {
    type Error = TooLong;

    #[inline]
    fn try_from(s: &str) -> Result<Self, TooLong> {
        let mut out = Self::new();
        let src = s.as_bytes();
        let len = u8::try_from(src.len()).map_err(|_| TooLong)?;
        if src.len() > N {
            return Err(TooLong);
        }
        copy_short(&mut out.bytes, src);
        out.len = len;
        Ok(out)
    }
}

/// Copies `src` (at most `dst.len()` bytes) to the start of `dst` with two
/// overlapping word moves for its size class instead of a `memcpy` call:
/// ids are short. Returns the bitwise or of the bytes copied (the words
/// moved cover them all), whose high bit tells a non-ASCII byte.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) -> u8 {
    let n = src.len();
    macro_rules! two {
        ($t:ty, $w:expr) => {{
            let head = <$t>::from_ne_bytes(src[..$w].try_into().unwrap_or([0; $w]));
            let tail = <$t>::from_ne_bytes(src[n - $w..].try_into().unwrap_or([0; $w]));
            dst[..$w].copy_from_slice(&head.to_ne_bytes());
            dst[n - $w..n].copy_from_slice(&tail.to_ne_bytes());
            (head | tail).to_ne_bytes().iter().fold(0, |a, b| a | b)
        }};
    }
    match n {
        0 => 0,
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
            src[0] | src[n / 2] | src[n - 1]
        }
        4..=7 => two!(u32, 4),
        8..=15 => two!(u64, 8),
        16..=31 => two!(u128, 16),
        _ => {
            dst[..n].copy_from_slice(src);
            src.iter().fold(0, |a, b| a | b)
        }
    }
}

impl<const N: usize> fmt::Write for InlineStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s).map_err(|_| fmt::Error)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialOrd for InlineStr<N> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// As the texts' bytes.
impl<const N: usize> Ord for InlineStr<N> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// The whole array, eight bytes at a time (the bytes past the text are
/// zeros, as equality assumes), then the length: a fixed number of word
/// writes, not a loop over the text.
impl<const N: usize> Hash for InlineStr<N> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut words = self.bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            state.write_u64(u64::from_le_bytes(b));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        state.write_u64(u64::from_le_bytes(tail) ^ (u64::from(self.len) << 56));
    }
}

impl<const N: usize> Serialize for InlineStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for InlineStr<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Text<N> {
            type Value = InlineStr<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {N} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                InlineStr::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_str(Text::<N>)
    }
}

impl<const N: usize> super::Key for InlineStr<N> {
    fn stable_hash(&self) -> u64 {
        super::hash_bytes(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Key;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Guards the promise of the type: the same bytes on disk, the same
        // key group, the same text back, as a heapless::String of it;
        // equality and order as the text's; equal texts hash equal, and
        // (with SipHash) different ones differently.
        #[test]
        fn it_is_its_text(a in "\\PC{0,10}", b in "\\PC{0,10}") {
            prop_assume!(a.len() <= 32 && b.len() <= 32);
            let x = InlineStr::<32>::try_from(a.as_str()).unwrap();
            let y = InlineStr::<32>::try_from(b.as_str()).unwrap();
            let h = heapless::String::<32>::try_from(a.as_str()).unwrap();
            prop_assert_eq!(postcard::to_allocvec(&x).unwrap(), postcard::to_allocvec(&h).unwrap());
            prop_assert_eq!(x.stable_hash(), h.stable_hash());
            let back: InlineStr<32> = postcard::from_bytes(&postcard::to_allocvec(&x).unwrap()).unwrap();
            prop_assert_eq!(back, x);
            prop_assert_eq!(x.as_str(), a.as_str());
            prop_assert_eq!(x.to_string(), a.clone());
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()));
            let std_hash = |v: &InlineStr<32>| {
                let mut s = std::collections::hash_map::DefaultHasher::new();
                v.hash(&mut s);
                s.finish()
            };
            let again = InlineStr::<32>::try_from(a.as_str()).unwrap();
            prop_assert_eq!(std_hash(&x), std_hash(&again));
            if a != b {
                prop_assert_ne!(std_hash(&x), std_hash(&y), "{:?} {:?}", a, b);
            }
        }
    }

    // Every length up to the capacity copies exactly (the word moves of
    // each size class overlap).
    #[test]
    fn every_length_is_copied_exactly() {
        let text = "abcdefghijklmnopqrstuvwxyz012345";
        for n in 0..=32 {
            let s = InlineStr::<32>::try_from(&text[..n]).unwrap();
            assert_eq!((s.as_str(), s.len()), (&text[..n], n));
            assert!(s.bytes[n..].iter().all(|b| *b == 0), "{n}: padding not zero");
        }
        assert!(InlineStr::<32>::try_from(&format!("{text}6")[..]).is_err());
    }

    #[test]
    fn ascii_bytes_are_taken_and_others_refused() {
        let text = "abcdefghijklmnopqrstuvwxyz012345";
        for n in 0..=32 {
            let s = InlineStr::<32>::from_ascii(&text.as_bytes()[..n]);
            assert_eq!(s, InlineStr::try_from(&text[..n]).ok(), "{n}");
        }
        assert_eq!(InlineStr::<32>::from_ascii(format!("{text}6").as_bytes()), None);
        assert_eq!(InlineStr::<32>::from_ascii("é".as_bytes()), None);
        assert_eq!(InlineStr::<32>::from_ascii(b"abcdefghijklmnopqrstuvwxyz01234\xff"), None);
    }

    #[test]
    fn too_long_is_refused_and_changes_nothing() {
        let mut s = InlineStr::<4>::try_from("abc").unwrap();
        assert_eq!(s.push_str("de"), Err(TooLong));
        assert_eq!(s.as_str(), "abc");
        assert!(InlineStr::<4>::try_from("abcde").is_err());
        let long: Result<InlineStr<4>, _> = postcard::from_bytes(&postcard::to_allocvec("abcde").unwrap());
        assert!(long.is_err());
        s.push_str("d").unwrap();
        assert_eq!((s.len(), s.is_empty()), (4, false));
    }
}
