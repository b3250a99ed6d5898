//! `cargo run -p quickstart`: tracks events into the embedded reference server and prints
//! which companies they were attributed to.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdout = std::io::stdout();
    match quickstart::run(&mut stdout) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the quickstart failed: {error}");
            ExitCode::FAILURE
        }
    }
}
