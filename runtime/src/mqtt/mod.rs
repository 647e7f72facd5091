//! MQTT pieces shared by the source and the sink: the connection (an event
//! loop polled on its own thread, reconnecting forever) and topic templates.

mod client;
mod topic;

pub use client::{parse_url, Protocol, Session, MSG_ID_PROPERTY};
pub(crate) use client::{Conn, Inbound};
pub use topic::TopicTemplate;
