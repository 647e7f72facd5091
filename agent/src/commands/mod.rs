//! What each subcommand does, one module each. They depend on `cli` for
//! their arguments and on `rivulet_agent`, never on each other, except
//! `run`, which hands live runs to `live` and sits above it.

pub mod bench;
pub mod checkpoints;
pub mod generate;
pub mod live;
pub mod run;
pub mod simulate;
