//! `rivulet checkpoints`: the retained checkpoints of a state directory.

use crate::cli::CheckpointsArgs;

pub(crate) fn run(a: &CheckpointsArgs) -> anyhow::Result<()> {
    print!("{}", rivulet::state::Store::list_checkpoints(&a.state_dir)?);
    Ok(())
}
