//! What can stop a scenario that is not about the service: the lab's own infrastructure. Each
//! error names the operation and the object; none is ever mistaken for a failed expectation.

use std::sync::Arc;

use super::session::SyncError;
use crate::target::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{operation}: {source}")]
    Target {
        operation: String,
        #[source]
        source: Arc<TargetError>,
    },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("`{command}` did not return within {seconds} s in {target}")]
    Deadline { command: String, target: String, seconds: u64 },
    /// The target's journal stopped flowing: it was killed, removed or crashed.
    #[error("{0}")]
    TargetGone(String),
    #[error("the fault of step {step} was not recorded")]
    NoFault { step: usize },
    /// The host cannot do what the scenario asks (a `network` delay without the kernel's netem).
    #[error("{0}")]
    Unsupported(String),
    /// A resource fault could not be undone: the target is no longer what the image holds.
    #[error("{0}")]
    Undo(String),
    #[error(transparent)]
    Guard(#[from] crate::target::reaper::GuardError),
}

impl ExecError {
    /// A failed command of the target, with what the lab was doing.
    pub fn target(operation: impl Into<String>) -> impl FnOnce(Arc<TargetError>) -> ExecError {
        let operation = operation.into();
        move |source| ExecError::Target { operation, source }
    }

    /// Same, for an error not yet shared.
    pub fn target_owned(operation: impl Into<String>) -> impl FnOnce(TargetError) -> ExecError {
        let operation = operation.into();
        move |source| ExecError::Target { operation, source: Arc::new(source) }
    }
}

/// An infrastructure failure at a step, naming the step and where it is written.
#[derive(Debug, thiserror::Error)]
#[error("step {number} (`do = \"{word}\"` at {location}): {source}")]
pub struct StepError {
    pub number: usize,
    pub word: &'static str,
    pub location: String,
    #[source]
    pub source: ExecError,
}
