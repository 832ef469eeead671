//! Resource faults: what any unit can run out of (memory, network, disk space, CPU), each held
//! until a `heal` step, its own `duration`, or the end of the scenario, whichever comes first.
//! How they are put in place and undone is the runner's (`run::resources`); here they are
//! only the checked values.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::systemd::words::word_enum;

use super::UnitName;

/// The default memory limit of an `oom` fault on a unit whose file sets none: far above what a
/// small service uses at rest, far below the target's own 512 MiB.
pub const DEFAULT_OOM_LIMIT: u64 = 64 * 1024 * 1024;
/// The largest `limit` an `oom` fault may set: the hog allocates a little more than the limit,
/// and all of it must fit in the target's 512 MiB with systemd and the other units, or the
/// target's own OOM killer (not the unit's) would act.
pub const MAX_OOM_LIMIT: u64 = 256 * 1024 * 1024;

/// One resource fault, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceFault {
    /// `name = "..."`, for a `heal` step that names it.
    pub name: Option<String>,
    /// The unit it hits; `None` only for a `network` fault on a peer address alone.
    pub unit: Option<UnitName>,
    pub kind: ResourceKind,
    /// Undone this long after it was put in place (in the background: later steps run
    /// meanwhile); `None`: held until a `heal` step or the end of the scenario.
    pub duration: Option<Duration>,
}

/// What runs out.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceKind {
    /// `do = "oom"`: the unit's memory limit is exceeded inside its cgroup. `limit` is set with
    /// `systemctl set-property --runtime MemoryMax=` for the fault's life; `None` uses the
    /// limit the unit's own file sets.
    Oom { limit: Option<u64> },
    /// `do = "network"`.
    Network(NetworkFault),
    /// `do = "disk-full"`: the directory `path` becomes a full filesystem.
    DiskFull { path: PathBuf },
    /// `do = "cpu-starve"`: the unit's processes lose their CPU to a busy neighbour.
    CpuStarve,
}

impl ResourceKind {
    /// The `do = ...` word.
    pub fn word(&self) -> &'static str {
        match self {
            ResourceKind::Oom { .. } => "oom",
            ResourceKind::Network(_) => "network",
            ResourceKind::DiskFull { .. } => "disk-full",
            ResourceKind::CpuStarve => "cpu-starve",
        }
    }
}

/// `do = "network"`: which packets, and what happens to them.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkFault {
    pub action: NetAction,
    /// Traffic to (and from) this port of the target: the unit's `--listen` port, or `port`.
    pub port: Option<u16>,
    /// Traffic to (and from) this address.
    pub peer: Option<IpAddr>,
    pub direction: Direction,
}

/// What happens to the matched packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NetAction {
    /// Silently dropped: a client sees a timeout.
    Drop,
    /// Refused: a TCP reset (a client sees "connection refused"), an ICMP error otherwise.
    Reject,
    /// This percentage (1..=100) of them dropped at random.
    Loss(u8),
    /// Held back this long (tc netem; the host's kernel must have it).
    Delay(Duration),
}

impl NetAction {
    pub fn word(&self) -> &'static str {
        match self {
            NetAction::Drop => "drop",
            NetAction::Reject => "reject",
            NetAction::Loss(_) => "loss",
            NetAction::Delay(_) => "delay",
        }
    }
}

word_enum! {
    /// Which way the matched packets travel, seen from the target.
    Direction { In = "in", Out = "out", Both = "both" }
}
