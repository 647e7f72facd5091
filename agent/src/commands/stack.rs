//! `rivulet stack`: a manifest's Swarm objects as a compose file on stdout.

use crate::cli::StackArgs;
use rivulet_agent::deploy::{stack, Manifest, Spec};

pub(crate) fn run(a: &StackArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let spec = Spec::of(&m);
    match &a.config {
        Some(name) => {
            let Some((_, content)) = spec.configs.iter().find(|(n, _)| n == name) else {
                return Err(rivulet::Error::Config {
                    field: "--config",
                    reason: format!(
                        "the stack has no config `{name}` (it has: {})",
                        spec.configs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
                .into());
            };
            print!("{content}");
        }
        None => print!("{}", stack::render(&spec)),
    }
    Ok(())
}
