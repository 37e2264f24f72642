//! The `xbhost` binary; the command line itself is in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
