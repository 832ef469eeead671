//! The VM fixture: systemd as PID 1 of a QEMU machine booted with Debian's kernel on the
//! target image's own filesystem. `image` makes the disk, `qemu` owns the process and its
//! monitor, `agent` is the exec channel, `machine` one running VM. [`crate::target::Target`]
//! is the one public face of both fixtures.

pub mod agent;
pub mod doctor;
pub mod image;
pub mod machine;
pub mod qemu;

pub use image::{ensure_vm_image, VmImage, VmImageError};
pub use machine::{Machine, VmError, VmStatus};
pub use qemu::{host_support, Accel, HostSupport};
