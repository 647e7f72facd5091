//! Keyed state on fjall. Only this module touches fjall.

pub mod codec;
mod store;
mod table;

pub use store::{Recovered, Store, StoreConfig, STATE_FORMAT};
pub(crate) use store::{outbox_epoch, outbox_key};
pub use table::{Backing, Namespace, Table};
