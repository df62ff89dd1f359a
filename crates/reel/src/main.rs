//! `reel`: the one binary. It parses the command line, opens the store and
//! wires the libraries together; the work happens in the crates it calls.

mod cli;
mod fleet;
mod insight;
mod media;
mod recs;

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
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

/// `reel … | head` closes the pipe early: like any Unix tool, stop quietly
/// (exit status 141, as if killed by SIGPIPE) instead of reporting the
/// failed write as a crash.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info);
    }));
}
