//! The command line: argument parsing, command dispatch, and exit codes.
//!
//! Owns the mapping from outcomes to exit codes (0 ok, 1 runtime failure, 2 usage, 78
//! invalid config) and the rendering of errors on stderr. stdout carries only data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, ConfigErrors, ProcessEnvironment, Topology};
use crate::telemetry::{self, LogFormat};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about = "A WebAssembly-extensible event router")]
pub struct Cli {
    /// Log format on stderr (`RUST_LOG` sets the level).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the router.
    Run(ConfigArgument),
    /// Check a config file and report every error in it.
    Validate(ConfigArgument),
}

#[derive(Debug, clap::Args)]
struct ConfigArgument {
    /// The config file.
    #[arg(short, long, default_value = "switchyard.toml")]
    config: PathBuf,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    telemetry::init_logging(cli.log_format);
    match cli.command {
        Command::Run(arguments) => run(&arguments.config),
        Command::Validate(arguments) => validate(&arguments.config),
    }
}

fn load(path: &Path) -> Result<Topology, ExitCode> {
    config::load(path, &ProcessEnvironment).map_err(|errors| {
        print_config_errors(path, &errors);
        ExitCode::from(EXIT_CONFIG)
    })
}

fn print_config_errors(path: &Path, errors: &ConfigErrors) {
    eprint!("error: invalid config `{}`: {errors}", path.display());
}

fn validate(path: &Path) -> ExitCode {
    match load(path) {
        Ok(topology) => {
            for warning in &topology.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "config `{}` is valid: {}, {}, {}, {}",
                path.display(),
                count(topology.sources.len(), "source"),
                count(topology.endpoints.len(), "endpoint"),
                count(topology.routes.len(), "route"),
                count(topology.plugins.len(), "plugin"),
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &Path) -> ExitCode {
    let topology = match load(path) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return runtime_failure(&anyhow::Error::new(error).context("cannot start")),
    };
    match runtime.block_on(crate::app::run(topology)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => runtime_failure(&error),
    }
}

fn runtime_failure(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(EXIT_RUNTIME)
}

fn count(number: usize, noun: &str) -> String {
    format!("{number} {noun}{}", if number == 1 { "" } else { "s" })
}
