//! The `unitlab` binary: thin glue from the command line to the library (see `cli`).

mod cli;

fn main() {
    std::process::exit(cli::main());
}
