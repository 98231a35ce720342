//! The `fleetpipe` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

// glibc's malloc slowed the whole process once analytics held windows: searching a heap where
// minutes-long window buffers sit among each request's short-lived ones, it took about two
// thirds of what analytics at its default cap added to the process's CPU time
// (benches/HISTORY.md, 2026-12-02 evening).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = fleetpipe::app::Cli::parse();
    match fleetpipe::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fleetpipe: {}", fleetpipe::app::error_message(&error));
            ExitCode::FAILURE
        }
    }
}
