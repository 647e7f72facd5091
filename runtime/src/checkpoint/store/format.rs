//! The on-disk format of every store object: a fixed header, a postcard
//! body, and a CRC32 over the body.
//!
//! Header (20 bytes, little-endian): magic `RVCS`, format version `u16`,
//! kind `u8`, reserved `u8` (0), body length `u64`, CRC32 of the body
//! `u32`. No `usize` appears in the header or in any body type.

use super::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

const MAGIC: &[u8; 4] = b"RVCS";
const VERSION: u16 = 1;
const HEADER: usize = 20;

/// What an object holds; checked on read so one kind is never misread as
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Generation = 1,
    Delta = 2,
    Meta = 3,
    Latest = 4,
    Materialised = 5,
    GcFloor = 6,
    Output = 7,
    Published = 8,
    Finished = 9,
    Ingest = 10,
    Pin = 11,
    RolledBack = 12,
}

/// Encodes `body` as an object of `kind`.
pub(crate) fn encode<T: Serialize>(kind: Kind, body: &T) -> Result<Vec<u8>> {
    let body = postcard::to_stdvec(body).map_err(|e| Error::invalid(format!("encode {kind:?}: {e}")))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(kind as u8);
    out.push(0);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The CRC32 the header of an encoded object carries.
pub(crate) fn crc_of(encoded: &[u8]) -> u32 {
    encoded.get(16..20).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// Decodes an object of `kind` read from `object`; any damage or a foreign
/// file is a [`Error::Damaged`] naming `object`.
pub(crate) fn decode<T: DeserializeOwned>(object: &str, kind: Kind, bytes: &[u8]) -> Result<T> {
    let Some((header, body)) = bytes.split_at_checked(HEADER) else {
        return Err(Error::damaged(object, format!("{} bytes, shorter than the {HEADER}-byte header", bytes.len())));
    };
    if &header[0..4] != MAGIC {
        return Err(Error::damaged(object, "not a Rivulet checkpoint object (bad magic)"));
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(Error::damaged(object, format!("format version {version}, this build reads {VERSION}")));
    }
    if header[6] != kind as u8 {
        return Err(Error::damaged(object, format!("object kind {}, expected {kind:?}", header[6])));
    }
    if header[7] != 0 {
        return Err(Error::damaged(object, format!("reserved header byte is {}, expected 0", header[7])));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[8..16]);
    let len = u64::from_le_bytes(len);
    if len != body.len() as u64 {
        return Err(Error::damaged(object, format!("body is {} bytes, header says {len} (truncated?)", body.len())));
    }
    let crc = crc_of(bytes);
    if crc32fast::hash(body) != crc {
        return Err(Error::damaged(object, "CRC32 mismatch"));
    }
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| Error::damaged(object, format!("undecodable body: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::damaged(object, format!("{} trailing bytes after the body", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards: every single-byte flip and every truncation of an object is
    // refused (never misread, never a panic).
    #[test]
    fn flips_and_truncations_are_refused() {
        let ok = encode(Kind::Meta, &(7u64, vec![1u8, 2, 3])).unwrap();
        assert_eq!(decode::<(u64, Vec<u8>)>("o", Kind::Meta, &ok).unwrap(), (7, vec![1, 2, 3]));
        for i in 0..ok.len() {
            let mut bad = ok.clone();
            bad[i] ^= 0x40;
            assert!(decode::<(u64, Vec<u8>)>("o", Kind::Meta, &bad).is_err(), "flip at {i}");
            assert!(decode::<(u64, Vec<u8>)>("o", Kind::Meta, &ok[..i]).is_err(), "cut at {i}");
        }
        let err = decode::<(u64, Vec<u8>)>("epochs/x/meta", Kind::Delta, &ok).unwrap_err();
        assert!(err.to_string().contains("epochs/x/meta"), "{err}");
    }
}
