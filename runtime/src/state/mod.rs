//! Keyed state on fjall. Only this module touches fjall.
//!
//! [`Table`] is the typed, bounded cache every stateful operator uses; the
//! handles ([`ValueState`], [`MapState`], [`ListState`],
//! [`AggregatingState`]) put it in the hands of process functions, with an
//! optional processing-time [`StateTtl`].

mod cluster;
pub mod codec;
mod handles;
mod ingest;
mod manifest;
mod packed;
mod retain;
mod store;
mod table;
mod timers;
mod ttl;

pub use handles::{
    state_table_id, AggregatingState, ListState, MapState, Scope, StateContext, StateRegistry, StateValue, ValueState,
    MAX_PROCESS_OP, MAX_TABLES,
};
pub(crate) use handles::{Slot, TableSite};
pub use ingest::IngestLog;
pub(crate) use ingest::MirrorSpec;
pub use retain::{CheckpointList, RetainedCheckpoint};
pub(crate) use store::{outbox_epoch, outbox_key};
pub use store::{Recovered, Store, StoreConfig, DEFAULT_RETAIN_CHECKPOINTS, STATE_FORMAT};
pub use table::{Backing, Namespace, ScanCursor, Table};
pub(crate) use timers::TimerQueue;
pub use ttl::{StateTtl, TtlUpdate};
