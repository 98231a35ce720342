//! The `fleetpipe` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetpipe::app::Cli::parse();
    match fleetpipe::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fleetpipe: {error:#}");
            ExitCode::FAILURE
        }
    }
}
