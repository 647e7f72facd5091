//! Counters of the network exchange, shared by every link of a node.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the links of one node did. Read them with the getters; the links
/// update them.
#[derive(Debug, Default)]
pub struct NetMetrics {
    refused: AtomicU64,
    stale_frames: AtomicU64,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    link_failures: AtomicU64,
}

impl NetMetrics {
    /// Handshakes refused by this node (bad or missing token, other job,
    /// other graph, other generation).
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
    /// Frames dropped because they carried an older generation.
    pub fn stale_frames(&self) -> u64 {
        self.stale_frames.load(Relaxed)
    }
    /// Frames written, handshake included.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Relaxed)
    }
    /// Bytes written, headers included.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Relaxed)
    }
    /// Frames read, handshake included.
    pub fn frames_received(&self) -> u64 {
        self.frames_received.load(Relaxed)
    }
    /// Bytes read, headers included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Relaxed)
    }
    /// Links that ended with an error.
    pub fn link_failures(&self) -> u64 {
        self.link_failures.load(Relaxed)
    }

    pub(crate) fn count_refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_stale(&self) {
        self.stale_frames.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_sent(&self, bytes: usize) {
        self.frames_sent.fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn count_received(&self, body: usize) {
        self.frames_received.fetch_add(1, Relaxed);
        self.bytes_received.fetch_add((body + super::frame::HEADER_LEN) as u64, Relaxed);
    }
    pub(crate) fn count_failure(&self) {
        self.link_failures.fetch_add(1, Relaxed);
    }
}
