//! buggy-server: a deliberately buggy HTTP server for unitlab's systemd chaos tests.
//! This file is the glue: the start-up sequence whose order (fork, notify, bind, pid
//! file, READY=1, pinger, fault timers) is itself part of the behaviour under test.

mod cli;
mod control;
mod duration;
mod faults;
mod http;
mod log;
mod modes;
mod notify;
mod shape;
mod state;
mod watchdog;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cli::{Cli, Ready};
use log::event;
use shape::Shape;
use state::Shared;

fn main() {
    let cli = Cli::parse_args();
    if cli.list_modes {
        print!("{}", modes::json());
        return;
    }
    std::process::exit(run(cli));
}

fn run(cli: Cli) -> i32 {
    event!(
        "starting: pid {}, shape {}, ready {}, watchdog {}, listen {}",
        std::process::id(),
        cli::name(&cli.shape),
        cli::name(&cli.ready),
        cli::name(&cli.watchdog),
        cli.listen
    );
    if cli.ignore_sigterm {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe about.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        event!("ignoring SIGTERM (--ignore-sigterm)");
    }
    // The daemon chdirs to /, so a relative pid file path is fixed against our cwd first.
    let pid_file = cli.pid_file.as_ref().map(|p| absolute(p));

    // Fork before any thread exists: fork() copies only the calling thread.
    let parent = if cli.shape == Shape::Forking {
        match shape::daemonize() {
            Ok(link) => Some(link),
            Err(e) => {
                event!("cannot daemonize: {e}");
                return 1;
            }
        }
    } else {
        None
    };

    // Read after forking: WATCHDOG_PID is compared with the pid of the serving process.
    let notifier = notify::Notifier::from_env(cli.notify_socket);
    let our_pid = std::process::id();
    let watchdog_env = notify::watchdog_env(cli.watchdog_pid, our_pid);
    let watchdog_plan = watchdog::plan(&cli.watchdog_settings(), &watchdog_env);
    if let (Err(why), true) = (&watchdog_plan, cli.watchdog != watchdog::Mode::None) {
        event!("{why}");
    }
    for spec in &cli.faults {
        event!("fault {spec} armed");
    }
    let armed = cli.faults.iter().copied().map(faults::Armed::new).collect();
    let shared = Arc::new(Shared::new(notifier, armed, cli.seed));
    let ready_message = if cli.notify_mainpid { format!("READY=1\nMAINPID={our_pid}") } else { "READY=1".to_string() };

    shared.notifier.status("starting");
    if cli.ready == Ready::BeforeListen {
        send_ready(&shared, &ready_message, "before listening");
    }
    if !cli.bind_delay.is_zero() {
        event!("waiting {} before binding (--bind-delay)", duration::show(cli.bind_delay));
        std::thread::sleep(cli.bind_delay);
    }
    let listener = match http::bind(cli.listen) {
        Ok(l) => l,
        Err(e) => {
            event!("{e}");
            shared.notifier.status(&e);
            return 1;
        }
    };
    let bound = listener.local_addr().unwrap_or(cli.listen);
    let _ = shared.bound.set(bound);
    event!("listening on {bound}");
    shared.notifier.status(&format!("listening on {bound}"));

    if let Some(path) = &pid_file {
        if let Err(e) = shape::write_pid_file(path) {
            event!("{e}");
            return 1;
        }
        event!("pid file {} written", path.display());
    }
    if let Some(link) = parent {
        link.ready();
    }

    match cli.ready {
        Ready::AfterListen => send_ready(&shared, &ready_message, "after listening"),
        Ready::BeforeListen => {}
        Ready::Delayed => {
            let delay = cli.ready_delay.unwrap_or(Duration::from_secs(5));
            event!("READY=1 delayed by {} (--ready delayed)", duration::show(delay));
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ready".into())
                .spawn(move || {
                    std::thread::sleep(delay);
                    send_ready(&shared, &ready_message, "after the delay");
                })
                .expect("spawning the delayed-ready thread at start-up");
        }
        Ready::Never => {
            event!("READY=1 withheld (--ready never)");
            shared.notifier.status("running, READY=1 withheld");
        }
    }

    if let Ok(plan) = watchdog_plan {
        watchdog::start(cli.watchdog_settings(), plan, Arc::clone(&shared));
    }
    faults::arm_timers(&shared);
    if cli.shape == Shape::Oneshot {
        shape::finish_oneshot_after(cli.work.unwrap_or(Duration::ZERO), cli.exit_code.unwrap_or(0));
    }

    http::serve(listener, Arc::clone(&shared));
    // Only close-listener ends the accept loop; the process is meant to linger.
    state::block_forever()
}

fn send_ready(shared: &Shared, message: &str, when: &str) {
    if shared.notifier.send_logged(message, &format!(" ({when})")) {
        shared.ready_sent.store(true, Ordering::SeqCst);
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}
