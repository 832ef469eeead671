//! What the terminal shows while work goes on, and where reports go: spinners for long steps
//! (plain lines when stderr is not a terminal), one line per finished scenario, and the report
//! in the chosen format on stdout or in `--output`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use unitlab::progress::{Lines, Progress};
use unitlab::report::{self, Format, Live};
use unitlab::verdict::{RunEvent, RunReport};

use super::Failure;

/// Progress on a terminal: a spinner per step with the latest detail line.
struct Spinner {
    bar: Mutex<Option<ProgressBar>>,
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

/// Spinners on a terminal, plain lines elsewhere (CI, pipes).
pub fn progress() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Spinner { bar: Mutex::new(None) })
    } else {
        Box::new(Lines)
    }
}

/// The runner's events on the terminal: a spinner with the latest step, and a line per
/// finished scenario printed above it (only the ones that did not pass, for a table run).
pub struct Events {
    bar: Option<ProgressBar>,
    live: Mutex<Live>,
    only_problems: bool,
}

impl Events {
    pub fn new(total: usize, only_problems: bool) -> Events {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        let bar = tty.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}").expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Events { bar, live: Mutex::new(Live::new(color).with_total(total)), only_problems }
    }

    pub fn on_event(&self, ev: RunEvent) {
        if let (Some(bar), RunEvent::StepFinished { name, suite, step, of, what }) = (&self.bar, &ev) {
            bar.set_message(format!("{name} ({suite}) {step}/{of}: {what}"));
        }
        let passed = matches!(&ev, RunEvent::ScenarioFinished(r) if r.outcome == unitlab::verdict::Outcome::Pass);
        let line = self.live.lock().unwrap().event(&ev);
        if let (Some(line), false) = (line, self.only_problems && passed) {
            match &self.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
    }

    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Refuse an `--output` that could not be written, before anything starts: a run can take
/// minutes, and its report must not be lost at the end.
pub fn check_output(output: Option<&Path>) -> Result<(), Failure> {
    let Some(path) = output else { return Ok(()) };
    let usage = |message: String| Failure { code: super::EXIT_USAGE, message };
    if path.is_dir() {
        return Err(usage(format!("--output {} is a directory\n  fix: name a file inside it, e.g. {}", path.display(), path.join("report.json").display())));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(usage(format!("--output {}: the directory {} does not exist\n  fix: create it first (mkdir -p {})", path.display(), parent.display(), parent.display())));
    }
    Ok(())
}

/// Write the report: into `output` in `format` (and the human summary on stdout), or on stdout
/// in `format`. `human` renders the terminal form (the demo narrates instead of listing).
pub fn deliver(report: &RunReport, format: Format, output: Option<&Path>, human: impl Fn(&RunReport, bool) -> String) -> Result<(), Failure> {
    let stdout_color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match output {
        Some(path) => {
            std::fs::write(path, report::render(format, report))
                .map_err(|e| Failure { code: super::EXIT_INFRA, message: format!("write the {format} report to {}: {e}", path.display()) })?;
            print!("{}", human(report, stdout_color));
            eprintln!("{format} report written to {}", path.display());
        }
        None if format == Format::Human => print!("{}", human(report, stdout_color)),
        None => print!("{}", report::render(format, report)),
    }
    Ok(())
}
