//! Byte layouts of everything stored.
//!
//! Values are postcard with a one-byte format tag in front: postcard has no
//! field names, so a changed stored type needs a new tag, never a silent
//! reinterpretation. State keys are `key_group u16 BE | op u16 BE | key |
//! namespace`, so one key group is one contiguous key range.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Tag of the current value format.
pub const VALUE_V1: u8 = 1;

/// Key group used for non-keyed (operator) state such as source positions.
pub const OPERATOR_GROUP: u16 = u16::MAX;

/// Encodes a value with its format tag.
pub fn encode_value<V: Serialize>(v: &V, out: &mut Vec<u8>) -> Result<()> {
    out.push(VALUE_V1);
    postcard::to_io(v, &mut *out)
        .map_err(|e| Error::Corrupt { what: "value being written".into(), reason: e.to_string() })?;
    Ok(())
}

/// Decodes a tagged value; `what` names it in errors.
pub fn decode_value<V: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<V> {
    let Some((&tag, body)) = bytes.split_first() else {
        return Err(corrupt(what, "empty value"));
    };
    if tag != VALUE_V1 {
        return Err(corrupt(what, &format!("unknown value format tag {tag}")));
    }
    postcard::from_bytes(body).map_err(|e| corrupt(what, &e.to_string()))
}

pub(crate) fn corrupt(what: &str, reason: &str) -> Error {
    Error::Corrupt { what: what.to_string(), reason: reason.to_string() }
}

/// Appends the state-key prefix `key_group | op`.
#[inline]
pub fn key_prefix(group: u16, op: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&group.to_be_bytes());
    out.extend_from_slice(&op.to_be_bytes());
}

/// Encodes a full state key.
pub fn state_key<K: Serialize, N: Serialize>(group: u16, op: u16, key: &K, ns: &N) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(24);
    state_key_into(group, op, key, ns, &mut out)?;
    Ok(out)
}

/// Encodes a full state key into `out`, replacing what it held.
pub fn state_key_into<K: Serialize, N: Serialize>(
    group: u16,
    op: u16,
    key: &K,
    ns: &N,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    key_prefix(group, op, out);
    let enc = |e: postcard::Error| corrupt("state key", &e.to_string());
    postcard::to_io(key, &mut *out).map_err(enc)?;
    postcard::to_io(ns, &mut *out).map_err(enc)?;
    Ok(())
}

/// Decodes the key and namespace of a state key.
pub fn decode_state_key<K: DeserializeOwned, N: DeserializeOwned>(bytes: &[u8]) -> Result<(u16, u16, K, N)> {
    if bytes.len() < 4 {
        return Err(corrupt("state key", "shorter than its prefix"));
    }
    let group = u16::from_be_bytes([bytes[0], bytes[1]]);
    let op = u16::from_be_bytes([bytes[2], bytes[3]]);
    let (k, rest) = postcard::take_from_bytes(&bytes[4..]).map_err(|e| corrupt("state key", &e.to_string()))?;
    let n = postcard::from_bytes(rest).map_err(|e| corrupt("state key namespace", &e.to_string()))?;
    Ok((group, op, k, n))
}

/// Stage keys: `epoch u64 BE | state key`.
pub fn stage_key(epoch: u64, state_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + state_key.len());
    stage_key_into(epoch, state_key, &mut k);
    k
}

/// [`stage_key`] into `out`, which is cleared first.
pub fn stage_key_into(epoch: u64, state_key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(state_key);
}

/// A staged or spilled entry: `0` is a deletion, `1 | value` a put, `2 |
/// value` a put of a key that no checkpoint holds yet (applying it needs
/// no read of the key's previous version for its undo record).
pub const TOMBSTONE: &[u8] = &[0];

const PUT: u8 = 1;
const PUT_NEW: u8 = 2;

/// Wraps a put for the stage or spill keyspace.
pub fn put_entry(value: &[u8]) -> Vec<u8> {
    marked(PUT, value)
}

/// Wraps a put of a key no lower layer holds (never checkpointed or
/// spilled, or deleted there) for the stage or spill keyspace.
pub fn put_new_entry(value: &[u8]) -> Vec<u8> {
    marked(PUT_NEW, value)
}

/// Encodes `v` as a put entry into `out` (cleared first): [`put_entry`] of
/// its encoding when a lower layer holds the key (`persisted`), else
/// [`put_new_entry`], without the intermediate buffers.
pub fn encode_entry<V: Serialize>(v: &V, persisted: bool, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.push(if persisted { PUT } else { PUT_NEW });
    encode_value(v, out)
}

fn marked(marker: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 1);
    v.push(marker);
    v.extend_from_slice(value);
    v
}

/// Turns an entry made by [`put_new_entry`] into one made by
/// [`put_entry`], once the key has been written below memory.
pub fn mark_persisted(entry: &mut [u8]) {
    if entry.first() == Some(&PUT_NEW) {
        entry[0] = PUT;
    }
}

/// True for an entry made by [`put_new_entry`].
pub fn is_new(entry: &[u8]) -> bool {
    entry.first() == Some(&PUT_NEW)
}

/// Unwraps a stage/spill entry: `None` for a deletion.
pub fn read_entry(entry: &[u8]) -> Result<Option<&[u8]>> {
    match entry.split_first() {
        Some((0, _)) => Ok(None),
        Some((&(PUT | PUT_NEW), v)) => Ok(Some(v)),
        _ => Err(corrupt("staged entry", "bad entry marker")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let k = state_key(7, 3, &"s0042".to_string(), &1_700_000_000_000i64).unwrap();
        assert_eq!(&k[..4], &[0, 7, 0, 3]);
        let (g, op, key, ns): (u16, u16, String, i64) = decode_state_key(&k).unwrap();
        assert_eq!((g, op, key.as_str(), ns), (7, 3, "s0042", 1_700_000_000_000));
        let mut v = Vec::new();
        encode_value(&(1.5f64, 3u64), &mut v).unwrap();
        assert_eq!(decode_value::<(f64, u64)>(&v, "x").unwrap(), (1.5, 3));
        assert!(decode_value::<(f64, u64)>(&[9, 1], "x").is_err());
        assert_eq!(read_entry(&put_entry(b"ab")).unwrap(), Some(&b"ab"[..]));
        assert_eq!(read_entry(TOMBSTONE).unwrap(), None);
        assert_eq!(read_entry(&put_new_entry(b"ab")).unwrap(), Some(&b"ab"[..]));
        assert!(is_new(&put_new_entry(b"ab")) && !is_new(&put_entry(b"ab")) && !is_new(TOMBSTONE));
        assert!(read_entry(&[3, 1]).is_err() && read_entry(&[]).is_err());
    }
}
