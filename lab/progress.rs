//! How long-running library work reports progress without knowing about terminals: the CLI
//! implements [`Progress`] with spinners, tests use [`Silent`] or a collector.

/// Receiver of progress for work that takes more than a moment (image builds, boots).
pub trait Progress: Send + Sync {
    /// A new step starts ("bootstrapping debian trixie with debootstrap").
    fn step(&self, message: &str);
    /// A line of detail inside the current step (a build log line).
    fn detail(&self, line: &str);
    /// The current step finished.
    fn finish(&self, message: &str);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str) {}
    fn detail(&self, _: &str) {}
    fn finish(&self, _: &str) {}
}

/// Progress written as plain lines to stderr: for logs and CI, where spinners are noise.
pub struct Lines;

impl Progress for Lines {
    fn step(&self, message: &str) {
        eprintln!("unitlab: {message}");
    }
    fn detail(&self, _: &str) {}
    fn finish(&self, message: &str) {
        eprintln!("unitlab: {message}");
    }
}
