//! The cluster token: the shared secret that makes a process a member.

use std::path::Path;

/// The cluster's shared secret. It never leaves the process: the handshake
/// proves possession with an HMAC, and `Debug` prints `ClusterToken(<redacted>)`.
/// There is deliberately no `Display`.
#[derive(Clone)]
pub struct ClusterToken(Vec<u8>);

impl ClusterToken {
    /// A token from bytes; `None` when empty.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<ClusterToken> {
        let b = bytes.into();
        if b.is_empty() {
            return None;
        }
        Some(ClusterToken(b))
    }

    /// Reads a token file (a Swarm secret): its contents without trailing
    /// whitespace. An empty or unreadable file is an error naming the path
    /// and never quoting the contents.
    pub fn from_file(path: &Path) -> crate::Result<ClusterToken> {
        let raw = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
        let end = raw.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        ClusterToken::new(&raw[..end])
            .ok_or_else(|| crate::Error::config("--cluster-token-file", format!("{} is empty", path.display())))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ClusterToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterToken(<redacted>)")
    }
}
