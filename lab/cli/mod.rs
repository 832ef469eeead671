//! Command-line glue: argument parsing (`args`, clap), terminal output and report delivery
//! (`output`, indicatif), the commands themselves (`commands`), exit codes and Ctrl-C. The
//! library knows nothing of any of this.
//!
//! Exit codes are a contract: 0 all expectations held, 1 an expectation failed, 2 bad input or
//! usage, 3 the lab's own infrastructure failed (engine down, image missing, boot failed), 130
//! interrupted.

mod args;
mod commands;
mod output;

use clap::Parser;
use unitlab::target::reaper;
use unitlab::Engine;

use args::Cli;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INFRA: i32 = 3;
/// Conventional exit code after SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error at the CLI edge with its exit code.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure { code: EXIT_INFRA, message: e.to_string() }
    }
}

pub fn main() -> i32 {
    // The pause guard is this binary run by the lab itself, not a user command.
    let args: Vec<String> = std::env::args().collect();
    if let [_, command, container] = args.as_slice() {
        if command == reaper::PAUSE_GUARD_COMMAND {
            return reaper::pause_guard_main(container);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("UNITLAB_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("unitlab: cannot start the async runtime: {e}");
            return EXIT_INFRA;
        }
    };
    rt.block_on(async {
        // Pinned outside select! so that an interrupt does not drop it (and its targets) before
        // the handler has counted and removed them itself.
        let work = commands::dispatch(cli.command);
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => match result {
                Ok(code) => code,
                Err(f) => {
                    eprintln!("error: {}", f.message);
                    f.code
                }
            },
            _ = interrupted() => {
                let n = reaper::live_ids().len();
                eprintln!("\ninterrupted: removing {n} target(s) this run started");
                if let Ok(engine) = Engine::connect().await {
                    reaper::remove_all_live(engine.docker()).await;
                }
                // VMs would die with this process anyway; this also removes their directories.
                unitlab::target::vm::machine::stop_all_live();
                EXIT_INTERRUPTED
            }
        }
    })
}

async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
