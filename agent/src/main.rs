//! The `dbhost` binary: parse the command line, hand over to the library, exit with its code.
use clap::Parser;

fn main() {
    let cli = dbhost::cli::Cli::parse();
    std::process::exit(dbhost::cli::run(cli));
}
