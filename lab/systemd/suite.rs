//! The Debian suites the lab builds targets from, each naming the systemd version it ships.

/// Debian suites the lab can build targets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Debian 12, systemd 252.
    Bookworm,
    /// Debian 13, systemd 257.
    Trixie,
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }

    pub fn target_tag(self) -> String {
        format!("unitlab-target:{}", self.name())
    }

    pub fn base_tag(self) -> String {
        format!("unitlab-base:{}", self.name())
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bookworm" => Ok(Suite::Bookworm),
            "trixie" => Ok(Suite::Trixie),
            other => Err(format!("unknown suite `{other}`: expected bookworm or trixie")),
        }
    }
}

