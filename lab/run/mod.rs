//! The scenario runner: runs loaded scenarios on booted systemd targets, one suite after the
//! other's images are ready, several scenarios at once (`--jobs`), and emits
//! [`crate::verdict::RunEvent`]s as it goes. Async: it drives targets.
//!
//! * `plan`: which scenario runs where, under which unit names, claiming which resources.
//! * `pool`: shared targets of a suite, leased to scenarios whose resources do not collide.
//! * `execute`: one scenario on one target, step by step, into a `ScenarioResult`.
//! * `orchestrate`: the whole run.

mod execute;
mod orchestrate;
mod plan;
mod pool;
pub mod watch;

pub use orchestrate::{jobs, run, RunError, RunOptions, DEFAULT_JOBS};
pub use plan::{claims, unit_name, Claim};
