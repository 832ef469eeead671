//! The checked scenario: domain types the runner consumes. Everything here has been validated
//! (units exist, durations parse, enums are closed sets), so the runner never re-parses text.

mod expect;
mod resources;
mod scenario;
mod steps;

pub use expect::{CountRange, Expectation, HttpExpect, PropertyCheck, WindowSource};
pub use scenario::{ExtraFile, Location, Scenario, UnitInstall, UnitName, UnitOrigin, UnitSpec, DROP_IN_NAME, UNIT_DIR};
pub use steps::{ControlFault, Fault, HangPart, Observe, Step, StepKind, TextMatch, Wait};
pub use resources::{Direction, NetAction, NetworkFault, ResourceFault, ResourceKind, DEFAULT_OOM_LIMIT, MAX_OOM_LIMIT};
