//! The job as the endpoint shows it, read at one moment: from this
//! process's counters, or (on a cluster's coordinator) gathered from the
//! workers' reports. `/metrics`, the API and the rates all read it.

use super::Shared;
use crate::role::Role;
use rivulet::cluster::ClusterSnapshot;
use rivulet::metrics::{Snapshot, TaskSnapshot};

/// The job at one moment.
pub(crate) struct Now {
    /// Job-wide counters.
    pub(crate) totals: Snapshot,
    /// Every task, with the worker slot it runs on (in a cluster).
    pub(crate) tasks: Vec<(Option<u16>, TaskSnapshot)>,
    /// The sinks' watermark (ms).
    pub(crate) watermark: Option<i64>,
    /// The job graph's edges between operators.
    pub(crate) edges: Vec<(String, String)>,
    /// The coordinator's view of the workers.
    pub(crate) cluster: Option<ClusterSnapshot>,
}

pub(crate) fn now(shared: &Shared) -> Now {
    let m = &shared.job.metrics;
    match &shared.job.role {
        Role::Coordinator(view) => {
            let c = view.snapshot();
            let tasks: Vec<(Option<u16>, TaskSnapshot)> = c.tasks().into_iter().map(|(s, t)| (Some(s), t)).collect();
            // The sinks' watermark: the least of the sink tasks'.
            let watermark =
                tasks.iter().filter(|(_, t)| t.operator.starts_with("sink-")).filter_map(|(_, t)| t.watermark).min();
            let mut totals = c.totals();
            totals.checkpoints = m.snapshot().checkpoints;
            Now { totals, tasks, watermark, edges: c.edges.clone(), cluster: Some(c) }
        }
        Role::Single | Role::Worker { .. } => {
            let slot = match shared.job.role {
                Role::Worker { slot } => Some(slot),
                _ => None,
            };
            Now {
                totals: m.snapshot(),
                tasks: m.tasks().into_iter().map(|t| (slot, t)).collect(),
                watermark: m.watermark_ms(),
                edges: m.edges(),
                cluster: None,
            }
        }
    }
}
