//! Command-line glue: argument parsing (clap), terminal progress (indicatif), exit codes, and
//! Ctrl-C handling. The library knows nothing of any of this.
//!
//! Exit codes are a contract: 0 all expectations held, 1 an expectation failed, 2 bad input or
//! usage, 3 the lab's own infrastructure failed (engine down, image missing, boot failed).

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use unitlab::target::doctor::{self, Status};
use unitlab::progress::{Lines, Progress};
use unitlab::tables::cells::Table;
use unitlab::report::{self, Format, Live};
use unitlab::run::{self as runner, RunOptions};
use unitlab::scenario;
use unitlab::verdict::{Outcome, RunEvent};
use unitlab::tables::{conformance, view as matrix_view};
use unitlab::target::reaper;
use unitlab::{Engine, Suite, Target, TargetOptions};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INFRA: i32 = 3;
/// Conventional exit code after SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Parser)]
#[command(name = "unitlab", version, about = "A chaos test lab for systemd services: real systemd, buggy servers, verdicts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SuiteArg {
    Bookworm,
    Trixie,
}

impl From<SuiteArg> for Suite {
    fn from(s: SuiteArg) -> Suite {
        match s {
            SuiteArg::Bookworm => Suite::Bookworm,
            SuiteArg::Trixie => Suite::Trixie,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files, or directories searched for *.toml) on real systemd targets.
    /// Every file is validated first: any error is reported with file:line:col and nothing
    /// starts (exit 2). Exit 0 when every expectation held, 1 when one failed, 3 when the lab
    /// itself failed.
    Run {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// Run only on these suites (repeatable): each scenario runs on the suites it lists
        /// that are given here.
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// At most this many scenarios at the same time.
        #[arg(long, default_value_t = runner::DEFAULT_JOBS as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Keep the targets afterwards for inspection (and print how to enter them).
        #[arg(long)]
        keep: bool,
        /// Report format (on stdout, or into --output).
        #[arg(long, value_enum, default_value = "human")]
        format: RunFormat,
        /// Write the report in --format to this file; the human summary still goes to the terminal.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Target images (systemd + buggy servers), built from Debian's packages.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Check that this machine can run the lab; every failing check prints its fix.
    Doctor {
        /// Suites to check (default: all).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
    },
    /// Remove lab containers whose owning unitlab process has ended (kept targets included).
    Clean {
        /// Remove every lab container, even those of runs still in progress.
        #[arg(long)]
        all: bool,
    },
    /// Boot a target and report its systemd version and boot time.
    Boot {
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: SuiteArg,
        /// Keep the target running after the command ends, and print how to enter it.
        #[arg(long, conflicts_with = "count")]
        keep: bool,
        /// Boot this many targets one after another and report the boot-time median.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        count: u32,
    },
    /// Measure a documented table on real systemd: every cell as its own unit, all in one
    /// target; documented and observed side by side. Exit 1 if a cell disagrees in a way not
    /// covered by the reviewed deviations list.
    Matrix {
        #[arg(value_enum)]
        table: TableArg,
        /// Suites to measure on (default: bookworm).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        #[arg(long, value_enum, default_value = "human")]
        format: MatrixFormat,
        /// Keep the target afterwards for inspection.
        #[arg(long)]
        keep: bool,
    },
    /// Live demo: every Restart= option (or every wrong Type=) on real systemd, told step by
    /// step, ending with the measured table beside the documented one.
    Demo {
        #[arg(value_enum, default_value = "restart")]
        topic: DemoTopic,
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: SuiteArg,
    },
    /// Boot a target and run a command in it (or, on a terminal with no command, an
    /// interactive shell); the target is removed afterwards unless --keep.
    Shell {
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: SuiteArg,
        #[arg(long)]
        keep: bool,
        /// Command to run inside the target; its exit code becomes unitlab's.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TableArg {
    /// The Restart= table of systemd.service(5): 7 options x 5 exit causes.
    Restart,
    /// The wrong-Type= table: 4 program behaviours x 4 configured types.
    Type,
    /// Both tables, measured together in one target.
    All,
}

impl TableArg {
    fn tables(self) -> Vec<Table> {
        match self {
            TableArg::Restart => vec![Table::Restart],
            TableArg::Type => vec![Table::Type],
            TableArg::All => vec![Table::Restart, Table::Type],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DemoTopic {
    /// Every Restart= option against five kinds of failure.
    Restart,
    /// Every program behaviour under every Type=.
    Type,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MatrixFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RunFormat {
    Human,
    Json,
    Junit,
    Markdown,
    Html,
}

impl From<RunFormat> for Format {
    fn from(f: RunFormat) -> Format {
        match f {
            RunFormat::Human => Format::Human,
            RunFormat::Json => Format::Json,
            RunFormat::Junit => Format::Junit,
            RunFormat::Markdown => Format::Markdown,
            RunFormat::Html => Format::Html,
        }
    }
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the target image of a suite (reused when its inputs are unchanged).
    Build {
        /// Suite to build; repeat for several (default: bookworm).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// Build every suite.
        #[arg(long, conflicts_with = "suite")]
        all: bool,
        /// Rebuild even when the inputs are unchanged.
        #[arg(long)]
        force: bool,
    },
}

/// Progress on a terminal: a spinner per step with the latest detail line.
struct Spinner {
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl Spinner {
    fn new() -> Spinner {
        Spinner { bar: std::sync::Mutex::new(None) }
    }
}

impl Progress for Spinner {
    fn step(&self, message: &str) {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>3} {prefix} {wide_msg}").expect("valid template"));
        bar.set_prefix(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = self.bar.lock().unwrap().replace(bar) {
            old.finish_and_clear();
        }
    }
    fn detail(&self, line: &str) {
        if let Some(bar) = self.bar.lock().unwrap().as_ref() {
            let line: String = line.chars().take(100).collect();
            bar.set_message(format!("| {line}"));
        }
    }
    fn finish(&self, message: &str) {
        match self.bar.lock().unwrap().take() {
            Some(bar) => bar.finish_with_message(format!("-> {message}")),
            None => eprintln!("{message}"),
        }
    }
}

fn progress() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Spinner::new())
    } else {
        Box::new(Lines)
    }
}

/// An error at the CLI edge with its exit code.
struct Failure {
    code: i32,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure { code: EXIT_INFRA, message: e.to_string() }
    }
}

pub fn main() -> i32 {
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
        let work = run(cli);
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

async fn run(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Image { command: ImageCommand::Build { suite, all, force } } => {
            let suites: Vec<Suite> = if all {
                Suite::ALL.to_vec()
            } else if suite.is_empty() {
                vec![Suite::Bookworm]
            } else {
                suite.into_iter().map(Suite::from).collect()
            };
            let engine = Engine::connect().await?;
            let progress = progress();
            for suite in suites {
                let started = std::time::Instant::now();
                let image = unitlab::ensure_image(&engine, suite, force, progress.as_ref()).await?;
                let how = if image.reused { "unchanged, reused" } else { "built" };
                println!(
                    "{}  {}  inputs {}  ({how} in {:.2} s)",
                    image.tag,
                    short_id(&image.id),
                    image.inputs_hash,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(EXIT_OK)
        }
        Command::Doctor { suite } => {
            let suites: Vec<Suite> =
                if suite.is_empty() { Suite::ALL.to_vec() } else { suite.into_iter().map(Suite::from).collect() };
            let checks = doctor::run_checks(&suites).await;
            let mut worst = Status::Ok;
            for c in &checks {
                let mark = match c.status {
                    Status::Ok => "ok  ",
                    Status::Warn => "warn",
                    Status::Fail => "FAIL",
                };
                println!("[{mark}] {:<16} {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    println!("       {:<16} fix: {fix}", "");
                }
                if c.status == Status::Fail || (c.status == Status::Warn && worst == Status::Ok) {
                    worst = c.status;
                }
            }
            Ok(if worst == Status::Fail { EXIT_INFRA } else { EXIT_OK })
        }
        Command::Clean { all } => {
            let engine = Engine::connect().await?;
            let removed = reaper::clean(&engine, all).await?;
            for c in &removed {
                let owner = c.owner.as_ref().map(|o| format!("pid {} `{}`", o.pid, o.cmd)).unwrap_or_else(|| "unknown owner".into());
                println!("removed {} ({}, {}, run {}, {owner})", c.name, c.image, c.state, c.run_id);
            }
            let left = reaper::list_lab_containers(&engine).await?.len();
            println!("{} removed; {} lab container(s) left (owned by runs still in progress)", removed.len(), left);
            let images = unitlab::target::image::prune_superseded(&engine).await?;
            println!("{} superseded target image(s) removed", images.len());
            Ok(EXIT_OK)
        }
        Command::Matrix { table, suite, format, keep } => {
            let suites: Vec<Suite> = if suite.is_empty() { vec![Suite::Bookworm] } else { suite.into_iter().map(Suite::from).collect() };
            let engine = Engine::connect().await?;
            let progress = progress();
            let mut all_expected = true;
            let mut json_docs = Vec::new();
            for suite in suites {
                let image = unitlab::ensure_image(&engine, suite, false, progress.as_ref()).await?;
                let run = conformance::run(&engine, &image, &table.tables(), keep, progress.as_ref()).await?;
                all_expected &= run.cells.iter().all(|c| c.as_expected());
                for t in table.tables() {
                    match format {
                        MatrixFormat::Human => println!("{}", matrix_view::human(&run, t)),
                        MatrixFormat::Markdown => println!("{}", matrix_view::markdown(&run, t)),
                        MatrixFormat::Json => json_docs.push(matrix_view::to_json(&run, t)),
                    }
                }
                if format != MatrixFormat::Json {
                    println!(
                        "measured {} cells on {} in {:.1} s wall, boot included (boot {:.2} s)\n",
                        run.cells.len(),
                        run.systemd,
                        run.elapsed_ms as f64 / 1000.0,
                        run.boot_time_ms as f64 / 1000.0
                    );
                }
            }
            if format == MatrixFormat::Json {
                let doc = if json_docs.len() == 1 { json_docs.remove(0) } else { serde_json::Value::Array(json_docs) };
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            Ok(if all_expected { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Demo { topic, suite } => {
            let engine = Engine::connect().await?;
            let progress = progress();
            let suite = Suite::from(suite);
            let image = unitlab::ensure_image(&engine, suite, false, progress.as_ref()).await?;
            let table = match topic {
                DemoTopic::Restart => Table::Restart,
                DemoTopic::Type => Table::Type,
            };
            let run = conformance::run(&engine, &image, &[table], false, progress.as_ref()).await?;
            let text = match topic {
                DemoTopic::Restart => unitlab::tables::demo::restart(&run),
                DemoTopic::Type => unitlab::tables::demo::types(&run),
            };
            println!("{text}");
            println!("measured {} cells in {:.1} s wall, boot included", run.cells.len(), run.elapsed_ms as f64 / 1000.0);
            Ok(if run.cells.iter().all(|c| c.as_expected()) { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Shell { suite, keep, command } => shell(suite.into(), keep, command).await,
        Command::Run { paths, suite, jobs, keep, format, output } => {
            let opts = RunOptions { jobs: jobs as usize, keep, suites: suite.into_iter().map(Suite::from).collect() };
            run_scenarios(&paths, opts, format.into(), output).await
        }
        Command::Boot { suite, keep, count } => {
            let engine = Engine::connect().await?;
            let progress = progress();
            let image = unitlab::ensure_image(&engine, suite.into(), false, progress.as_ref()).await?;
            let mut times = Vec::new();
            for i in 0..count {
                progress.step(&format!("booting {} target {}/{count}", image.suite, i + 1));
                let opts = TargetOptions { keep, purpose: "boot".into(), ..Default::default() };
                let target = Target::boot(&engine, &image, opts).await?;
                progress.finish(&format!("{} running after {:.2} s", target.systemd_version(), target.boot_time().as_secs_f64()));
                println!("{}: {} (boot {:.3} s)", target.name(), target.systemd_version(), target.boot_time().as_secs_f64());
                times.push(target.boot_time());
                if keep {
                    println!("{}", target.enter_hint());
                }
                target.teardown().await?;
            }
            if count > 1 {
                times.sort();
                let median = times[times.len() / 2];
                println!(
                    "boot to running, {count} boots of {}: median {:.3} s, min {:.3} s, max {:.3} s",
                    image.tag,
                    median.as_secs_f64(),
                    times[0].as_secs_f64(),
                    times[times.len() - 1].as_secs_f64()
                );
            }
            Ok(EXIT_OK)
        }
    }
}

/// Boot a target and run `command` in it: through the API (output relayed, exit code
/// returned), or for an interactive shell through the docker CLI, which owns the terminal.
async fn shell(suite: Suite, keep: bool, command: Vec<String>) -> Result<i32, Failure> {
    let engine = Engine::connect().await?;
    let progress = progress();
    let image = unitlab::ensure_image(&engine, suite, false, progress.as_ref()).await?;
    progress.step(&format!("booting a {suite} target"));
    let opts = TargetOptions { keep, purpose: "shell".into(), ..Default::default() };
    let target = Target::boot(&engine, &image, opts).await?;
    progress.finish(&format!("{} {} running after {:.2} s", target.name(), target.systemd_version(), target.boot_time().as_secs_f64()));
    let code = if command.is_empty() {
        if !std::io::stdin().is_terminal() {
            target.teardown().await?;
            return Err(Failure {
                code: EXIT_USAGE,
                message: "an interactive shell needs a terminal; give a command after `--` (e.g. `unitlab shell -- systemctl status`)".into(),
            });
        }
        let name = target.name().to_string();
        let status = tokio::process::Command::new("docker").args(["exec", "-it", &name, "bash"]).status().await;
        match status {
            Ok(s) => s.code().unwrap_or(EXIT_INFRA),
            Err(e) => {
                target.teardown().await?;
                return Err(Failure { code: EXIT_INFRA, message: format!("cannot run the docker CLI for the shell: {e}\n  fix: install docker.io, or use `unitlab shell --keep` and your own client") });
            }
        }
    } else {
        let argv: Vec<&str> = command.iter().map(String::as_str).collect();
        let out = target.exec(&argv).await?;
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        out.exit_code as i32
    };
    if keep {
        println!("{}", target.enter_hint());
    }
    target.teardown().await?;
    Ok(code)
}

/// `unitlab run`: validate everything before touching the engine, run, report.
async fn run_scenarios(
    paths: &[std::path::PathBuf],
    opts: RunOptions,
    format: Format,
    output: Option<std::path::PathBuf>,
) -> Result<i32, Failure> {
    let loaded = scenario::load_paths(paths);
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", scenario::render_all(&loaded.diagnostics));
    }
    if loaded.has_errors() {
        // Bad input: no engine connection, no container.
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!("error: {errors} error(s) in the scenarios; nothing was run");
        return Ok(EXIT_USAGE);
    }
    let total = runner::jobs(&loaded.scenarios, &opts).len();
    if total == 0 {
        let suites: Vec<&str> = opts.suites.iter().map(|s| s.name()).collect();
        eprintln!("error: none of the {} scenario(s) runs on {}", loaded.scenarios.len(), suites.join(", "));
        return Ok(EXIT_USAGE);
    }
    let engine = Engine::connect().await?;
    let tty = std::io::stderr().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let live = std::sync::Mutex::new(Live::new(color).with_total(total));
    // On a terminal, a spinner shows the latest step and finished scenarios print above it;
    // elsewhere (CI, pipes) only the plain lines.
    let bar = tty.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let on_event = |ev: RunEvent| {
        if let (Some(bar), RunEvent::StepFinished { name, suite, step, of, what }) = (&bar, &ev) {
            bar.set_message(format!("{name} ({suite}) {step}/{of}: {what}"));
        }
        if let Some(line) = live.lock().unwrap().event(&ev) {
            match &bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
    };
    let progress = progress();
    let report = runner::run(&engine, &loaded.scenarios, &loaded.diagnostics, &opts, progress.as_ref(), &on_event).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    let stdout_color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match &output {
        Some(path) => {
            std::fs::write(path, report::render(format, &report))
                .map_err(|e| Failure { code: EXIT_INFRA, message: format!("write the {format} report to {}: {e}", path.display()) })?;
            print!("{}", report::render_human(&report, stdout_color));
            eprintln!("{format} report written to {}", path.display());
        }
        None if format == Format::Human => print!("{}", report::render_human(&report, stdout_color)),
        None => print!("{}", report::render(format, &report)),
    }
    Ok(match report.outcome {
        Outcome::Pass => EXIT_OK,
        Outcome::Fail => EXIT_FAILED,
        Outcome::Error => EXIT_INFRA,
    })
}

fn short_id(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}

