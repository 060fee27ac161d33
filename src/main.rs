//! The `cronusfs` binary: parses the command line and runs it; all logic lives in `app` and the
//! library.

mod app;
mod cli;

fn main() -> std::process::ExitCode {
    app::main()
}
