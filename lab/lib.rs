//! unitlab: a chaos test lab for systemd services.
//!
//! The data path runs one way: scenario -> plan -> target -> observation -> verdict -> report.
//! Only the engine/target layer (`engine`, `image`, `target`, `reaper`, `doctor`) is async and
//! talks to Docker; everything else is plain synchronous code.

pub mod artifacts;
pub mod conformance;
pub mod demo;
pub mod doctor;
pub mod engine;
pub mod image;
pub mod journal;
pub mod matrix;
pub mod matrix_view;
pub mod observe;
pub mod oracle;
pub mod progress;
pub mod reaper;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod target;
pub mod unit;
pub mod verdict;
pub mod watch;

pub use engine::{CgroupVersion, Engine, EngineError};
pub use image::{ensure_image, ImageError, ImageRef, Suite};
pub use target::{ExecOutput, JournalEntry, Target, TargetError, TargetOptions};
