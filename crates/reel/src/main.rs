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
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
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
            eprintln!("reel: {}", one_line(e.chain().map(|c| c.to_string())));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error's causes as one line, each said once: a context that already
/// quotes its cause (as sqlx and io errors are often wrapped) does not
/// repeat it.
fn one_line(chain: impl Iterator<Item = String>) -> String {
    let mut line = String::new();
    for cause in chain {
        let cause = cause.split_whitespace().collect::<Vec<_>>().join(" ");
        if cause.is_empty() || line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

/// A command-line mistake in one line (what is wrong, and where the help
/// is), exit status 2; asking for help or the version prints it as usual.
fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    // clap's message is a paragraph (what is wrong, sometimes continued
    // on indented lines), then usage; tips are worth keeping.
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    let mut what = lines.by_ref().take_while(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    for tip in text.lines().map(str::trim).filter(|l| l.starts_with("tip:")) {
        what = format!("{what}; {tip}");
    }
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    let what = if what.is_empty() { "invalid command line" } else { what };
    eprintln!("reel: {what} (see reel --help, or reel COMMAND --help)");
    std::process::ExitCode::from(2)
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
