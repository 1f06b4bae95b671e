//! `salon`: the binary. It parses the command line, resolves settings, and
//! wires the crates together; the work happens in them.

mod bootstrap;
mod cli;
mod cluster;
mod commands;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use settings::{LogFormat, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli.flags) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("salon: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);

    // The relay floor is one thread by design: it runs without a runtime.
    let command = match cli.command.unwrap_or(Command::Serve) {
        Command::BenchRelay(args) => return exit_code(commands::bench_relay::run(args)),
        command => command,
    };

    // A load test of a Janus the tool starts moves this process into a
    // network namespace of its own. Namespaces belong to threads, so that
    // happens here, while the process has one thread: the runtime's threads
    // are created after and inherit it.
    let prepared = match &command {
        Command::Loadtest(args) => match commands::loadtest::prepare(args) {
            Ok(prepared) => prepared,
            Err(e) => {
                eprintln!("salon: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => commands::loadtest::Prepared::default(),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("salon: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve => commands::serve::run(&settings).await,
            Command::Token(command) => commands::token::run(&settings, command).await,
            Command::Keys(command) => commands::keys::run(&settings, command).await,
            Command::Rooms(command) => commands::rooms::run(&settings, command).await,
            Command::Nodes(command) => commands::nodes::run(&settings, command).await,
            Command::Loadtest(args) => commands::loadtest::run(&settings, args, prepared).await,
            // Handled above, before the runtime; harmless here.
            Command::BenchRelay(args) => commands::bench_relay::run(args),
        }
    });
    exit_code(result)
}

fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("salon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings) {
    // RUST_LOG, when set, refines the configured filter.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("{},sqlx=warn,tower_http=warn", settings.log));
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("salon: ignoring invalid log filter {filter:?}: {e}");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
