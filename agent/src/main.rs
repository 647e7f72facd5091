//! `rivulet`: the node binary. One `match` over subcommands; the work lives
//! in the runtime and examples libraries.

mod bench;
mod bench_mqtt;
mod cli;
mod live;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    rivulet::memory::limit_malloc_arenas();
    let cli = cli::Cli::parse();
    // The live view owns the terminal: rumqttd's connection chatter and
    // per-record warnings (counted in the view) stay out of it.
    let default_filter = match cli.command {
        cli::Command::Run(_) => "warn,rumqttd=off,rivulet::source::bad_input=error",
        _ => "warn,rumqttd=off",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let r = match cli.command {
        cli::Command::Generate(a) => cli::generate(&a),
        cli::Command::Run(a) => cli::run(&a),
        cli::Command::Simulate(a) => cli::simulate(&a),
        cli::Command::Bench(a) => bench::run(&a),
        cli::Command::Checkpoints(a) => cli::checkpoints(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivulet: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
