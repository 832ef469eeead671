//! Planning: the names a scenario's units get on a target, and what a scenario needs for itself
//! while it runs, so that scenarios sharing a target never step on each other.

use std::collections::BTreeSet;

use crate::scenario::{listen_port, Expectation, Fault, Observe, ResourceKind, Scenario, StepKind, UnitName, Wait};

/// The installed name of a scenario's unit: `SCENARIO.STEM.service`. Scenario names are
/// `[a-z0-9_-]` (no dot), so the first dot separates the two parts and no two scenarios can
/// produce the same name. Used on pristine targets too, so that a scenario's journal (and its
/// snapshot) reads the same wherever it ran. A unit from a `file` or already on the target
/// keeps its own name (its text, or the package's, names other units by their real names);
/// scenarios then stay apart by [`Claim::Unit`] or by a target of their own.
pub fn unit_name(scenario: &Scenario, unit: &UnitName) -> String {
    match scenario.unit(unit) {
        Some(u) if u.keeps_name() => unit.as_str().to_string(),
        _ => format!("{}.{}.service", scenario.name, unit.stem()),
    }
}

/// Something a scenario needs to itself on a shared target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Claim {
    /// A TCP port: one of its servers listens there, or its steps talk to it.
    Port(u16),
    /// A `[[files]]` path: another scenario may write different content there.
    File(String),
    /// The whole target: a `pause` step freezes every process in it, systemd included.
    Whole,
    /// A unit installed under its own name (`file = ...`).
    Unit(String),
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Port(p) => write!(f, "port {p}"),
            Claim::File(p) => write!(f, "file {p}"),
            Claim::Whole => f.write_str("the whole target"),
            Claim::Unit(u) => write!(f, "unit {u}"),
        }
    }
}

/// Everything the scenario claims: the ports its servers listen on (read from `--listen
/// ADDR:PORT` / `--listen=ADDR:PORT` in `exec`, buggy-server's flag), the ports its steps
/// use, its extra files, the units it installs under their own names, and the whole target if
/// it pauses it.
pub fn claims(scenario: &Scenario) -> BTreeSet<Claim> {
    let mut out = BTreeSet::new();
    for unit in scenario.units() {
        if let Some(port) = listen_port(&unit.exec) {
            out.insert(Claim::Port(port));
        }
        if unit.keeps_name() {
            out.insert(Claim::Unit(unit.name.as_str().to_string()));
        }
    }
    for file in &scenario.files {
        out.insert(Claim::File(file.path.display().to_string()));
    }
    for step in &scenario.steps {
        match &step.kind {
            StepKind::Fault(Fault::Control { targets, .. }) => out.extend(targets.iter().map(|(_, port)| Claim::Port(*port))),
            StepKind::Wait(Wait::Http { port, .. })
            | StepKind::Observe(Observe::Http { port, .. })
            | StepKind::Expect(Expectation::Http { port, .. })
            | StepKind::Expect(Expectation::Recovery { http: Some((port, _)), .. }) => {
                out.insert(Claim::Port(*port));
            }
            StepKind::Fault(Fault::PauseTarget { .. }) => {
                out.insert(Claim::Whole);
            }
            // A resource fault claims what it takes from everyone on the target: the port whose
            // traffic it drops; the whole target when it cuts a peer off (every unit's traffic
            // to it), covers a directory (other scenarios' files there vanish under it) or
            // burns a CPU (every unit pinned nowhere shares it). `oom` acts inside the unit's
            // own cgroup only.
            StepKind::Fault(Fault::Resource(r)) => match &r.kind {
                // A delay replaces the root qdisc of every interface of the target.
                ResourceKind::Network(n) if n.peer.is_none() && !matches!(n.action, crate::scenario::NetAction::Delay(_)) => out.extend(n.port.map(Claim::Port)),
                ResourceKind::Network(_) | ResourceKind::DiskFull { .. } | ResourceKind::CpuStarve => {
                    out.insert(Claim::Whole);
                }
                ResourceKind::Oom { .. } => {}
            },
            _ => {}
        }
    }
    out
}

/// The trees systemd reads units, drop-ins and its own configuration from.
const SYSTEMD_TREES: [&str; 5] = ["/etc/systemd/", "/run/systemd/", "/lib/systemd/", "/usr/lib/systemd/", "/usr/local/lib/systemd/"];

/// Whether installing the scenario needs a `daemon-reload`. A unit under its namespaced name
/// ([`unit_name`]) is one systemd has never seen on this target: asked for it, systemd reads it
/// from disk, its unit directories' changed mtime telling it to refresh its path cache
/// (measured on 247, 252, 254, 257 and 262, for a name asked for before the file existed too).
/// A unit under its own name (an earlier scenario may have left one of that name loaded), a
/// drop-in, or any other file under systemd's trees is only seen after a reload.
///
/// Fewer reloads is the point: on a shared target a reload lands in every other scenario's
/// story. On systemd before 254 (PR #28215) a reload while a service's restart job waits in the
/// queue makes systemd schedule that restart again and count it twice (seen on 252 in the
/// soak: "restart counter is at 3" then "at 4" 0.7 s later, one stop and one start), and before
/// 255 (PR #30024) a reload forgets every unit's start rate-limit count.
pub fn install_needs_reload(scenario: &Scenario) -> bool {
    let own_names: BTreeSet<&str> = scenario.units().iter().filter(|u| u.keeps_name()).map(|u| u.name.as_str()).collect();
    scenario.unit_installs(|n| unit_name(scenario, n)).iter().any(|i| own_names.contains(i.unit.as_str()))
        || scenario.files.iter().any(|f| {
            let path = f.path.display().to_string();
            SYSTEMD_TREES.iter().any(|tree| path.starts_with(tree))
        })
}

/// Two claim sets can run on one target at the same time.
pub fn compatible(a: &BTreeSet<Claim>, b: &BTreeSet<Claim>) -> bool {
    if a.contains(&Claim::Whole) && !b.is_empty() || b.contains(&Claim::Whole) && !a.is_empty() {
        return false;
    }
    a.is_disjoint(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Scenario {
        crate::scenario::parse_str(Path::new("t.toml"), text).unwrap_or_else(|d| panic!("{d:?}")).0
    }

    const WEB: &str = r#"
name = "a"
[[units]]
name = "web"
exec = ["/usr/local/bin/buggy-server", "--listen", "0.0.0.0:8080"]
[[units]]
name = "other"
exec = ["/usr/local/bin/buggy-server", "--listen=127.0.0.1:9000"]
[[steps]]
do = "start"
unit = "web"
[[steps]]
do = "probe"
port = 8181
"#;

    #[test]
    fn claims_read_listen_flags_and_step_ports() {
        let s = load(WEB);
        let c = claims(&s);
        assert_eq!(c, [Claim::Port(8080), Claim::Port(8181), Claim::Port(9000)].into_iter().collect());
        assert_eq!(unit_name(&s, &s.units()[0].name), "a.web.service");
    }

    #[test]
    fn units_from_files_keep_their_names_and_claim_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("units")).unwrap();
        std::fs::write(dir.path().join("units/app.service"), "[Service]\nExecStart=/bin/sleep 9\n").unwrap();
        let path = dir.path().join("t.toml");
        let text = "name = \"a\"\n[[units]]\nfile = \"units/app.service\"\n[[units]]\nname = \"web\"\nexec = [\"/bin/true\"]\n[units.Unit]\nAfter = \"app.service\"\n[[steps]]\ndo = \"start\"\nunit = \"web\"\n";
        std::fs::write(&path, text).unwrap();
        let s = crate::scenario::load_file(&path).unwrap_or_else(|d| panic!("{d:?}")).0;
        assert_eq!(unit_name(&s, &s.units()[0].name), "app.service");
        assert_eq!(unit_name(&s, &s.units()[1].name), "a.web.service");
        assert!(claims(&s).contains(&Claim::Unit("app.service".into())));
        let installs = s.unit_installs(|n| unit_name(&s, n));
        assert!(installs[1].text.contains("After=app.service\n"), "a reference to a unit from a file is not renamed: {}", installs[1].text);
        assert!(install_needs_reload(&s), "app.service may have been loaded by an earlier scenario on the target");
    }

    #[test]
    fn only_units_systemd_may_already_know_need_a_reload() {
        assert!(!install_needs_reload(&load(WEB)), "namespaced units are new to the target");
        let with_file = |path: &str| load(&WEB.replacen("[[steps]]", &format!("[[files]]\npath = \"{path}\"\ncontent = \"x\"\n\n[[steps]]"), 1));
        assert!(!install_needs_reload(&with_file("/etc/app.conf")));
        assert!(install_needs_reload(&with_file("/etc/systemd/system/extra.socket")));
        assert!(install_needs_reload(&with_file("/usr/lib/systemd/system/x.service.d/y.conf")));
        let installed = "name = \"a\"\n[[units]]\nname = \"cron.service\"\n[[steps]]\ndo = \"start\"\nunit = \"cron.service\"\n";
        assert!(!install_needs_reload(&load(installed)), "a unit on the target left as it is writes nothing");
        let drop_in = installed.replace("[[steps]]", "[units.Service]\nRestart = \"always\"\n\n[[steps]]");
        assert!(install_needs_reload(&load(&drop_in)), "a drop-in changes a unit systemd knows");
    }

    #[test]
    fn a_pause_claims_the_whole_target() {
        let s = load(&WEB.replace("do = \"probe\"\nport = 8181", "do = \"pause\"\nduration = \"1s\""));
        let c = claims(&s);
        assert!(c.contains(&Claim::Whole));
        let other: BTreeSet<Claim> = [Claim::Port(1)].into_iter().collect();
        assert!(!compatible(&c, &other));
        assert!(compatible(&c, &BTreeSet::new()), "an empty target can take it");
        let a: BTreeSet<Claim> = [Claim::Port(1), Claim::File("/x".into())].into_iter().collect();
        let b: BTreeSet<Claim> = [Claim::Port(2)].into_iter().collect();
        assert!(compatible(&a, &b));
        assert!(!compatible(&a, &[Claim::File("/x".into())].into_iter().collect()));
    }
}
