//! What each subcommand does, one module each. They depend on `cli` for
//! their arguments and on `rivulet_agent`, never on each other, except
//! `run`, which hands live runs to `live` and sits above it.

pub(crate) mod bench;
pub(crate) mod broker;
pub(crate) mod checkpoints;
pub(crate) mod deploy;
pub(crate) mod generate;
pub(crate) mod health;
pub(crate) mod live;
pub(crate) mod operate;
pub(crate) mod run;
pub(crate) mod simulate;
pub(crate) mod sql;
pub(crate) mod stack;
pub(crate) mod status;
