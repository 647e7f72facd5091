//! Which process of a job serves an endpoint: what the endpoint
//! (`endpoint.rs`) is started with and the HTTP server (`http/`) reads.

use std::sync::Arc;

/// Which process of a job the endpoint serves.
#[derive(Debug, Clone, Default)]
pub enum Role {
    /// The whole job runs in this process.
    #[default]
    Single,
    /// A cluster's coordinator: it serves the whole job's view, gathered
    /// from the workers' reports.
    Coordinator(Arc<rivulet::cluster::ClusterView>),
    /// A worker slot: its own tasks only.
    Worker {
        /// Its slot.
        slot: u16,
    },
}
