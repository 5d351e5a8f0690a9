//! The `fpn` command.
use std::process::ExitCode;

fn main() -> ExitCode {
    fpn_cli::main()
}
