//! Scenarios: the TOML format users replay (documented in `scenarios/README.md`), parsed in two
//! steps (raw serde structs with spans -> checked domain types) and validated completely, with
//! file:line:col diagnostics, before any container starts. Synchronous, no Docker.

mod diagnostic;
mod load;
mod model;
mod raw;
mod unit_text;
mod validate;

pub use diagnostic::{has_errors, printable, render_all, Diagnostic, Severity, SourceMap};
pub use load::{load_file, load_paths, parse_str, Loaded};
pub use model::{
    ControlFault, CountRange, Expectation, ExtraFile, Fault, HangPart, HttpExpect, Location, Observe, PropertyCheck,
    Scenario, Step, StepKind, TextMatch, UnitInstall, UnitName, UnitOrigin, UnitSpec, Wait, WindowSource, DROP_IN_NAME,
    UNIT_DIR,
};
pub use model::{Direction, NetAction, NetworkFault, ResourceFault, ResourceKind, DEFAULT_OOM_LIMIT, MAX_OOM_LIMIT};
pub use validate::{
    listen_address, listen_port, DEFAULT_CONTROL_PORT, DEFAULT_PROBE_TIMEOUT, DEFAULT_WAIT, MAX_SOURCE_BYTES, MAX_SOURCE_FILES,
    MAX_UNIT_FILE_BYTES,
};
