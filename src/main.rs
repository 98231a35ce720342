//! The `fleetpipe` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

// glibc's malloc slowed the whole process once analytics held windows: its searches through a
// heap where minutes-long window buffers sit among each request's short-lived ones doubled
// forwarding's time in `_int_malloc` (benches/HISTORY.md, 2026-12-02 evening).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
