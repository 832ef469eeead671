//! Fixtures: how a target's systemd is reached. A container shares the host's kernel (fast,
//! but systemd sees `container=docker`, the host's cgroup version and no OOM kills); a VM is a
//! QEMU machine with Debian's own kernel (slower to boot, but systemd runs as on a real host).

/// The fixture a target boots on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fixture {
    /// systemd as PID 1 of a Docker container.
    #[default]
    Container,
    /// systemd as PID 1 of a QEMU virtual machine booted with Debian's kernel.
    Vm,
}

impl Fixture {
    pub const ALL: [Fixture; 2] = [Fixture::Container, Fixture::Vm];

    pub fn name(self) -> &'static str {
        match self {
            Fixture::Container => "container",
            Fixture::Vm => "vm",
        }
    }
}

impl std::fmt::Display for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fixture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fixture::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown fixture `{s}`: expected container or vm"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_container_is_the_default() {
        for f in Fixture::ALL {
            assert_eq!(f.name().parse::<Fixture>(), Ok(f));
        }
        assert_eq!(Fixture::default(), Fixture::Container);
        assert!("kvm".parse::<Fixture>().unwrap_err().contains("container or vm"));
    }
}
