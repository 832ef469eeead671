//! The Debian suites the lab builds targets from, each naming the systemd version it ships,
//! and the version facts the lab depends on (which options and directives exist where).

/// Debian suites the lab can build targets from, oldest systemd first (the derived order is
/// the version order, which the cross-version table follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// Debian 11, systemd 247.
    Bullseye,
    /// Debian 12, systemd 252.
    Bookworm,
    /// Debian 12 with systemd from bookworm-backports: 254.
    BookwormBackports,
    /// Debian 13, systemd 257.
    Trixie,
    /// Debian unstable, systemd 262 at the time of writing (it moves; the target reports its
    /// real version).
    Sid,
}

/// How a suite's image is assembled: which Debian base it starts from, and the apt suite its
/// systemd comes from when that is not the base's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// The Debian release debootstrapped (or pulled as `debian:<base>`).
    pub base: &'static str,
    /// An extra apt suite systemd is installed from (`apt-get install -t <suite>`), added to
    /// the base's sources on the base's own mirror.
    pub systemd_from: Option<&'static str>,
}

impl Suite {
    pub const ALL: [Suite; 5] = [Suite::Bullseye, Suite::Bookworm, Suite::BookwormBackports, Suite::Trixie, Suite::Sid];

    /// Where a scenario without a `suites` list runs when no `--suite` is given: the two
    /// suites every shipped scenario and test is written for. `--suite` (or `--suite all`)
    /// reaches the others.
    pub const DEFAULT: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Bullseye => "bullseye",
            Suite::Bookworm => "bookworm",
            Suite::BookwormBackports => "bookworm-backports",
            Suite::Trixie => "trixie",
            Suite::Sid => "sid",
        }
    }

    /// The systemd major version the suite ships (what the lab's version checks use; the
    /// version a booted target reports is read from it, see `Target::systemd_version`).
    pub fn systemd(self) -> u32 {
        match self {
            Suite::Bullseye => 247,
            Suite::Bookworm => 252,
            Suite::BookwormBackports => 254,
            Suite::Trixie => 257,
            Suite::Sid => 262,
        }
    }

    pub fn recipe(self) -> Recipe {
        match self {
            Suite::BookwormBackports => Recipe { base: "bookworm", systemd_from: Some("bookworm-backports") },
            other => Recipe { base: other.name(), systemd_from: None },
        }
    }

    /// systemd 258 dropped cgroup v1: it boots only where its cgroup namespace shows a
    /// unified (v2) hierarchy.
    pub fn needs_cgroup_v2(self) -> bool {
        self.systemd() >= 258
    }

    /// The option of `systemctl kill` that says which processes get the signal: 252 renamed
    /// `--kill-who=` to `--kill-whom=` (the old name stays accepted there, but 247 knows only
    /// the old one).
    pub fn kill_whom_option(self) -> &'static str {
        if self.systemd() >= 252 { "--kill-whom" } else { "--kill-who" }
    }

    pub fn target_tag(self) -> String {
        format!("unitlab-target:{}", self.name())
    }

    /// The base image: shared by suites with the same Debian base (bookworm-backports is
    /// bookworm's base with a newer systemd on top).
    pub fn base_tag(self) -> String {
        format!("unitlab-base:{}", self.recipe().base)
    }

    /// "bookworm (systemd 252)", for hints.
    pub fn described(self) -> String {
        format!("{} (systemd {})", self.name(), self.systemd())
    }

    /// The suites whose systemd is older than `version`, among `suites`.
    pub fn older_than(suites: &[Suite], version: u32) -> Vec<Suite> {
        suites.iter().copied().filter(|s| s.systemd() < version).collect()
    }

    /// Every suite, for hints: "bullseye (systemd 247), bookworm (systemd 252), ...".
    pub fn all_described() -> String {
        Suite::ALL.iter().map(|s| s.described()).collect::<Vec<_>>().join(", ")
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
        Suite::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or_else(|| format!("unknown suite `{s}`: expected one of {}", Suite::ALL.map(|s| s.name()).join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_versions_ascend() {
        for s in Suite::ALL {
            assert_eq!(s.name().parse::<Suite>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
        let versions: Vec<u32> = Suite::ALL.iter().map(|s| s.systemd()).collect();
        assert_eq!(versions, [247, 252, 254, 257, 262]);
        let mut sorted = Suite::ALL;
        sorted.sort();
        assert_eq!(sorted, Suite::ALL, "the derived order is the version order");
        assert!("buster".parse::<Suite>().unwrap_err().contains("bullseye, bookworm, bookworm-backports, trixie, sid"));
    }

    #[test]
    fn kill_option_follows_the_rename_in_252() {
        assert_eq!(Suite::Bullseye.kill_whom_option(), "--kill-who");
        for s in [Suite::Bookworm, Suite::BookwormBackports, Suite::Trixie, Suite::Sid] {
            assert_eq!(s.kill_whom_option(), "--kill-whom", "{s}");
        }
    }

    #[test]
    fn only_systemd_258_and_later_need_cgroup_v2() {
        assert_eq!(Suite::ALL.iter().filter(|s| s.needs_cgroup_v2()).collect::<Vec<_>>(), [&Suite::Sid]);
    }

    #[test]
    fn backports_share_bookworms_base() {
        assert_eq!(Suite::BookwormBackports.base_tag(), Suite::Bookworm.base_tag());
        assert_eq!(Suite::BookwormBackports.recipe().systemd_from, Some("bookworm-backports"));
        assert_eq!(Suite::BookwormBackports.target_tag(), "unitlab-target:bookworm-backports");
        assert_eq!(Suite::Sid.recipe(), Recipe { base: "sid", systemd_from: None });
        assert_eq!(Suite::older_than(&Suite::ALL, 254), [Suite::Bullseye, Suite::Bookworm]);
    }
}
