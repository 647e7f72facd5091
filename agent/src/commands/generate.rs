//! `rivulet generate`: synthetic readings as CSV.

use crate::cli::GenerateArgs;
use anyhow::Context;
use rivulet_agent::dataset::write_csv;
use std::io::Write;

pub(crate) fn run(a: &GenerateArgs) -> anyhow::Result<()> {
    let out: Box<dyn Write> = if a.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output.display()))?)
    };
    write_csv(out, a.lines, a.sensors).with_context(|| format!("writing {}", a.output.display()))
}
