//! The `dbhost` binary: hand the command line to the library, exit with its code.

fn main() {
    std::process::exit(dbhost::cli::main());
}
