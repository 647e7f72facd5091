//! `rivulet`: the node binary. One `match` over subcommands; the work lives
//! in the runtime and examples libraries.

mod bench;
mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = cli::Cli::parse();
    let r = match cli.command {
        cli::Command::Generate(a) => cli::generate(&a),
        cli::Command::Run(a) => cli::run_seed(&a),
        cli::Command::Bench(a) => bench::run(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivulet: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
