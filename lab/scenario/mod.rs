//! Scenarios: the TOML format users replay (documented in `scenarios/README.md`), parsed in two
//! steps (raw serde structs with spans -> checked domain types) and validated completely, with
//! file:line:col diagnostics, before any container starts. Synchronous, no Docker.

mod diagnostic;
mod load;
mod model;
mod raw;
mod unit_text;
mod validate;

pub use diagnostic::{has_errors, render_all, Diagnostic, Severity, SourceMap};
pub use load::{load_file, load_paths, parse_str, Loaded};
pub use model::{
    ActiveState, ControlFault, CountRange, ExtraFile, Expectation, Fault, HangPart, HttpExpect, KillWhom,
    Location, MainExit, ManagerSettings, PropertyCheck, RestartPolicy, Scenario, ServiceResult, ServiceType,
    Signal, Step, StepKind, SubState, TextMatch, UnitName, UnitSpec, Wait, WindowSource,
};
pub use validate::{DEFAULT_CONTROL_PORT, DEFAULT_PROBE_TIMEOUT, DEFAULT_WAIT};
