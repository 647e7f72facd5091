//! Dropping redelivered duplicates. A broker may redeliver a message after
//! a reconnect (with or without DUP), and a restarted source may meet again
//! what its ingest log already holds. A message's identity is its
//! `rivulet-msg-id` user property when the publisher set one, else the hash
//! of topic and payload; the last `window` identities are remembered.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The identity of a message (64-bit SipHash).
pub(crate) fn identity(topic: &str, payload: &[u8], msg_id: Option<&str>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    match msg_id {
        Some(id) => {
            1u8.hash(&mut h);
            id.hash(&mut h);
        }
        None => {
            0u8.hash(&mut h);
            topic.hash(&mut h);
            payload.hash(&mut h);
        }
    }
    h.finish()
}

/// Identities are already hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The last `window` identities seen.
pub(crate) struct Dedupe {
    seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
    order: VecDeque<u64>,
    window: usize,
}

impl Dedupe {
    pub(crate) fn new(window: usize) -> Self {
        Self { seen: HashSet::default(), order: VecDeque::new(), window }
    }

    /// Records `id`; false if it was already among the last `window`.
    pub(crate) fn insert(&mut self, id: u64) -> bool {
        if self.window == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_oldest() {
        let mut d = Dedupe::new(2);
        assert!(d.insert(1));
        assert!(!d.insert(1));
        assert!(d.insert(2));
        assert!(d.insert(3));
        assert!(d.insert(1), "1 fell out of the window");
        assert_ne!(identity("a", b"x", None), identity("a", b"y", None));
        assert_ne!(identity("a", b"x", None), identity("a", b"x", Some("id")));
    }
}
