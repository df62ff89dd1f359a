//! `reel`: the one binary. It parses the command line, opens the store and
//! wires the libraries together; the work happens in the crates it calls.

mod cli;
mod fleet;
mod insight;
mod media;
mod recs;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reel: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: what failed, and the cause chain that says how to fix it.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("reel: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}
