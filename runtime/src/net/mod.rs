//! The network exchange: the data plane between the nodes of a cluster.
//!
//! Records that cross a key-by to a subtask on another worker travel over
//! one TCP connection per worker pair, a [`Link`], which multiplexes every
//! edge between the two. The pieces, one file each:
//!
//! - [`frame`]: the wire format, a fixed-width little-endian header and a
//!   postcard body, with a maximum size checked before allocating.
//! - [`handshake`]: membership. A connection proves it holds the cluster
//!   token (HMAC-SHA256 challenge–response, the token never sent) and runs
//!   the same job, graph and generation, or it is refused, logged and
//!   counted. Without a token only on loopback.
//! - [`credit`]: credit-based flow control, so a task that stops reading one
//!   input during barrier alignment cannot stall the others (no head-of-line
//!   blocking) while backpressure still crosses nodes.
//! - [`dial`]: reaching a peer by name, resolved at every attempt, every
//!   address tried, the lookup and each connect bounded in time.
//! - [`link`]: the connection's writer and reader threads, heartbeats and
//!   failure delivery.
//! - [`channel`]: [`Outbox`] and [`Inbox`], the same types for local
//!   (crossbeam) and remote edges, carrying [`crate::Message`]s.
//! - [`edge`]: [`EdgeId`], how both ends name an edge without talking.
//!
//! The data plane is authenticated but **not encrypted**: anyone on the
//! network path can read records (not the token). Run clusters on a trusted
//! network; TLS (rustls, behind a cargo feature) is left for later.

pub mod channel;
pub mod credit;
pub mod dial;
pub mod edge;
mod error;
pub mod frame;
pub mod handshake;
pub mod link;
mod metrics;
mod token;

#[cfg(test)]
mod tests;

pub use channel::{Inbox, Outbox, RemoteInbox, RemoteOutbox};
pub use edge::EdgeId;
pub use error::NetError;
pub use handshake::{HandshakeConfig, Identity, Refusal, Role};
pub use link::{Link, LinkConfig};
pub use metrics::NetMetrics;
pub use token::ClusterToken;
