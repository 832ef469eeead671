//! The checked scenario itself: its units, files and settings. Everything here has been
//! validated (units exist, names are valid), so the runner never re-parses text.

use crate::target::Fixture;
use std::fmt;
use std::path::PathBuf;

use crate::systemd::unit::{Directive, UnitFile};
use crate::systemd::{ManagerSettings, RestartPolicy, ServiceType, Suite};

use super::Step;

/// Where something was written: file and 1-based line/column, for reports that point back at
/// the scenario (a failed expectation names its step's line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// A validated scenario, ready to plan.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `name`: unique among the scenarios loaded together; `[a-z0-9_-]`, so the runner can use
    /// it to namespace unit names.
    pub name: String,
    /// `description`, empty when not given.
    pub description: String,
    /// `suites`: where to run, in the order written (default: bookworm, trixie).
    pub suites: Vec<Suite>,
    /// Whether the file lists `suites`: a scenario that does not runs on whichever suites
    /// `--suite` names (see `run::jobs`), its default only without `--suite`.
    pub suites_listed: bool,
    /// `fixtures`: the fixtures it may run on, when written (see [`Scenario::fixtures_for`]).
    pub fixtures: Option<Vec<Fixture>>,
    /// `shared_target` as written (default true). See [`Scenario::needs_pristine_target`].
    /// Scenarios with the same `[manager]` settings share targets booted with them.
    pub shared_target: bool,
    /// `snapshot`: keep a normalised journal snapshot of the run (default false).
    pub snapshot: bool,
    /// `[manager]`: system.conf `[Manager]` overrides.
    pub manager: ManagerSettings,
    /// `[limits]`: the target's process and memory ceilings. Targets are shared only among
    /// scenarios with the same ceilings.
    pub limits: crate::target::limits::Limits,
    /// `packages`: Debian packages installed into an image derived from the suite's target
    /// image, sorted (the order apt is given them in does not matter).
    pub packages: Vec<String>,
    /// `[[files]]`: files written into the target before the units are installed.
    pub files: Vec<ExtraFile>,
    pub(crate) units: Vec<UnitSpec>,
    /// `[[steps]]`, in order.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The fixtures to run on when `requested` were asked for (`--fixture`, empty when not
    /// given): without `fixtures` written, a scenario runs on a container, or on whatever was
    /// requested; with it, on the fixtures it lists (those requested, when some were).
    pub fn fixtures_for(&self, requested: &[Fixture]) -> Vec<Fixture> {
        match (&self.fixtures, requested.is_empty()) {
            (None, true) => vec![Fixture::Container],
            (None, false) => requested.to_vec(),
            (Some(own), true) => own.clone(),
            (Some(own), false) => own.iter().copied().filter(|f| requested.contains(f)).collect(),
        }
    }

    /// The scenario's units, in the order written. Each carries its rendered unit file under
    /// its scenario-local name.
    pub fn units(&self) -> &[UnitSpec] {
        &self.units
    }

    /// The unit a step refers to. Every [`UnitName`] inside a validated scenario resolves, so
    /// `None` only comes back for a name taken from elsewhere.
    pub fn unit(&self, name: &UnitName) -> Option<&UnitSpec> {
        self.units.iter().find(|u| &u.name == name)
    }

    /// True when the scenario asked for a target of its own (`shared_target = false`), needs
    /// packages (its target boots from an image with them), or acts on a unit already on the
    /// target (`[[units]]` with only `name`): such a unit cannot
    /// be renamed per scenario, and its drop-in, start and faults would reach every other
    /// scenario using it. `[manager]` settings do not: targets are shared among scenarios with
    /// the same settings, each booted with them.
    pub fn needs_pristine_target(&self) -> bool {
        !self.shared_target || self.units.iter().any(|u| u.origin == UnitOrigin::Installed) || !self.packages.is_empty()
    }

    /// What installing the scenario's units writes, with rendered units named by `rename` (the
    /// runner's namespacing; units that keep their own name are never passed to it): a unit
    /// file under `/etc/systemd/system/` per rendered or `file =` unit, and a drop-in
    /// `NAME.d/unitlab.conf` per unit already on the target that has section tables.
    pub fn unit_installs(&self, rename: impl Fn(&UnitName) -> String) -> Vec<UnitInstall> {
        let rename = |n: &UnitName| match self.unit(n) {
            Some(u) if u.keeps_name() => n.as_str().to_string(),
            _ => rename(n),
        };
        let rendered = self.units_renamed(rename);
        self.units
            .iter()
            .zip(rendered)
            .filter_map(|(u, (name, file))| match &u.origin {
                UnitOrigin::Rendered => {
                    Some(UnitInstall { path: format!("{UNIT_DIR}/{name}"), text: file.render(), unit: name })
                }
                UnitOrigin::File { text, .. } => Some(UnitInstall { path: format!("{UNIT_DIR}/{name}"), text: text.clone(), unit: name }),
                UnitOrigin::Installed if file.is_empty() => None,
                UnitOrigin::Installed => {
                    Some(UnitInstall { path: format!("{UNIT_DIR}/{name}.d/{DROP_IN_NAME}"), text: file.render_present(), unit: name })
                }
            })
            .collect()
    }

    /// The units' directives, with every scenario-local unit name in `[Unit]`
    /// and `[Install]` values (`After=web.service`, `WantedBy=...`) replaced by `rename(name)`.
    /// The runner namespaces units this way when several scenarios share a target; it must
    /// then use the same `rename` for the names in steps.
    pub fn units_renamed(&self, rename: impl Fn(&UnitName) -> String) -> Vec<(String, UnitFile)> {
        let names: Vec<(&str, String)> =
            self.units.iter().map(|u| (u.name.as_str(), rename(&u.name))).collect();
        let rewrite = |directives: &[Directive]| -> Vec<Directive> {
            directives
                .iter()
                .map(|d| {
                    let value = d
                        .value
                        .split(' ')
                        .map(|word| names.iter().find(|(n, _)| *n == word).map_or(word, |(_, r)| r.as_str()))
                        .collect::<Vec<_>>()
                        .join(" ");
                    Directive::new(d.key.clone(), value)
                })
                .collect()
        };
        self.units
            .iter()
            .map(|u| {
                let file = UnitFile {
                    unit: rewrite(&u.file.unit),
                    service: u.file.service.clone(),
                    install: rewrite(&u.file.install),
                };
                (rename(&u.name), file)
            })
            .collect()
    }
}

/// A full unit name (`web.service`) local to its scenario. A scenario may write `web` or
/// `web.service`; both resolve to the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName(pub(crate) String);

impl UnitName {
    /// `web.service`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `web`: the name without `.service`.
    pub fn stem(&self) -> &str {
        self.0.strip_suffix(".service").unwrap_or(&self.0)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the lab writes unit files and drop-ins in a target.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// The name of the drop-in the lab writes for a unit already on the target.
pub const DROP_IN_NAME: &str = "unitlab.conf";

/// One file that installing a scenario's units writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInstall {
    /// The unit it belongs to, as installed.
    pub unit: String,
    /// Absolute path in the target: the unit file, or its drop-in.
    pub path: String,
    pub text: String,
}

/// Where a unit's definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitOrigin {
    /// Rendered by the lab from `exec` and section tables, or given as `text`: a service,
    /// renamed per scenario on the target.
    Rendered,
    /// `file = "..."`: a unit file of any type read from the host, installed byte for byte
    /// under its own file name (the text refers to other units by their real names, which
    /// the lab does not rewrite).
    File { source: PathBuf, text: String },
    /// Only `name`: a unit already on the target (from the image or a package). Its section
    /// tables, if any, are a drop-in; `UnitSpec::file` holds only those directives.
    Installed,
}

/// One `[[units]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub name: UnitName,
    /// How the unit reaches the target.
    pub origin: UnitOrigin,
    /// `exec`: the program and its arguments (argv[0] absolute).
    pub exec: Vec<String>,
    /// The unit file: `[Unit]`, then `[Service]` starting with `ExecStart=` (escaped with
    /// [`crate::systemd::unit::exec_line`]), then `[Install]`; directives verbatim, in the order written.
    pub file: UnitFile,
    /// The `Type=` systemd will use: the last valid `Type=` line, else `simple`.
    pub service_type: ServiceType,
    /// The `Restart=` systemd will use: the last valid `Restart=` line, else `no`.
    pub restart: RestartPolicy,
    pub location: Location,
}

impl UnitSpec {
    /// Whether the unit is installed under its own name rather than one namespaced per
    /// scenario.
    pub fn keeps_name(&self) -> bool {
        self.origin != UnitOrigin::Rendered
    }
}

/// A file placed into the target before units are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute path inside the target.
    pub path: PathBuf,
    /// The bytes: `content` as written, or a `source` file's bytes as read at validation.
    pub content: Vec<u8>,
    /// Permission bits: `mode`, else the source file's own, else 0o644.
    pub mode: u32,
}

