//! Edge addresses: which channel of the job graph a frame belongs to.

use super::error::NetError;

/// The id of one channel between two subtasks, the same on both nodes.
///
/// An edge is addressed as Arroyo does, by (source operator, source subtask,
/// destination operator, destination subtask). Operators are numbered by
/// their position in the job's logical graph (which every node builds from
/// the same config) and subtasks by their index. The id packs the four parts
/// one byte each, most significant first:
/// `src_op << 24 | src_sub << 16 | dst_op << 8 | dst_sub`. So it is exact (no
/// hash, no collision) and both sides compute it without talking; the price
/// is a limit of 256 operators and a parallelism of 256, far beyond a Pi
/// cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeId(pub u32);

impl EdgeId {
    /// The id of the edge from `(src_op, src_sub)` to `(dst_op, dst_sub)`;
    /// [`NetError::EdgeOutOfRange`] when a part is 256 or more.
    pub fn new(src_op: u32, src_sub: u32, dst_op: u32, dst_sub: u32) -> Result<EdgeId, NetError> {
        if src_op > 255 || src_sub > 255 || dst_op > 255 || dst_sub > 255 {
            return Err(NetError::EdgeOutOfRange { src_op, src_sub, dst_op, dst_sub });
        }
        Ok(EdgeId(src_op << 24 | src_sub << 16 | dst_op << 8 | dst_sub))
    }

    /// The four parts: (source operator, source subtask, destination
    /// operator, destination subtask).
    pub fn parts(self) -> (u32, u32, u32, u32) {
        (self.0 >> 24, (self.0 >> 16) & 0xff, (self.0 >> 8) & 0xff, self.0 & 0xff)
    }
}

impl std::fmt::Display for EdgeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c, d) = self.parts();
        write!(f, "{a}.{b}->{c}.{d}")
    }
}
