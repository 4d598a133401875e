//! The `csgis` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use csgis::cli::{parse, run};

fn main() -> ExitCode {
    csgis::memory::keep_freed_memory();
    let cli = parse();
    match run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            // A closed pipe (`csgis smooth - | head -c1`) is not an error.
            if err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("csgis: {err:#}");
            ExitCode::from(2)
        }
    }
}
