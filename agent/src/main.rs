//! `rivulet`: the node binary. One `match` over subcommands; `cli` parses,
//! `commands` act, the work lives in the runtime and `rivulet_agent`.

mod cli;
mod commands;

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
        cli::Command::Generate(a) => commands::generate::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Run(a) => commands::run::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Simulate(a) => commands::simulate::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Bench(a) => commands::bench::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Checkpoints(a) => commands::checkpoints::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Sql(a) => commands::sql::run(&a),
        cli::Command::Status(a) => commands::status::run(&a),
        cli::Command::Logs(a) => commands::operate::logs(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Scale(a) => commands::operate::scale(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Upgrade(a) => commands::operate::upgrade(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Rollback(a) => commands::operate::rollback(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Stack(a) => commands::stack::run(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Deploy(a) => commands::deploy::deploy(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Down(a) => commands::deploy::down(&a).map(|()| std::process::ExitCode::SUCCESS),
        cli::Command::Health(a) => commands::health::run(&a),
        cli::Command::Broker(a) => commands::broker::run(&a).map(|()| std::process::ExitCode::SUCCESS),
    };
    rivulet_agent::exit::report_code("rivulet", r)
}
