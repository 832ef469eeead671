//! Targets: booted systemd reached through a fixture (a container or a VM). The engine
//! connection, the images, the artifacts that go into them, the reaper that guarantees nothing
//! is left running, and the doctor. This layer is async and is the only one that talks to the
//! Docker Engine.

pub mod artifacts;
pub mod capacity;
pub mod channel;
pub mod container;
pub mod doctor;
pub mod engine;
pub mod fixture;
pub mod image;
pub mod limits;
pub mod packages;
pub mod reaper;
pub mod slots;
pub mod vm;

pub use container::{parse_properties, ExecOutput, Target, TargetError, TargetOptions, TargetState};
pub use fixture::Fixture;
pub use engine::{CgroupVersion, Engine, EngineError};
pub use image::{ensure_image, ImageError, ImageRef};
