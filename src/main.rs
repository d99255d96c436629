//! Command line of gpu-device-plugin: the daemon (default) and its subcommands.

mod cdi_command;
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
