//! A step in a few words, for progress lines and the lab's notes on timelines.

use crate::judge::describe_property;
use crate::scenario::{ControlFault, Expectation, Fault, NetAction, Observe, ResourceFault, ResourceKind, StepKind, UnitName, Wait};
use crate::systemd::{format_duration, Suite};

fn stems(units: &[&UnitName]) -> String {
    units.iter().map(|u| u.stem()).collect::<Vec<_>>().join(", ")
}

/// A short line for progress output, in the words of `suite`'s systemd (247 spells
/// `systemctl kill --kill-whom=` as `--kill-who=`).
pub fn describe(kind: &StepKind, suite: Suite) -> String {
    match kind {
        StepKind::Start { unit, no_block: false } => format!("start {}", unit.stem()),
        StepKind::Start { unit, no_block: true } => format!("start {} (no block)", unit.stem()),
        StepKind::Fault(f) => {
            let units = stems(&f.units());
            match f {
                Fault::Control { fault, after, .. } => {
                    let detail = match fault {
                        ControlFault::Hang(parts) => format!("hang({})", parts.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")),
                        ControlFault::Exit(c) => format!("exit({c})"),
                        ControlFault::Signal(s) => format!("signal({})", s.name()),
                        other => other.kind().to_string(),
                    };
                    let after = after.map(|a| format!(" after {}", format_duration(a))).unwrap_or_default();
                    format!("fault {detail}{after} in {units}")
                }
                Fault::Signal { signal, .. } => format!("SIG{} to {units}", signal.name()),
                Fault::Freeze { .. } => format!("freeze {units}"),
                Fault::Thaw { .. } => format!("thaw {units}"),
                Fault::PauseTarget { duration } => format!("pause the target for {}", format_duration(*duration)),
                Fault::Stop { .. } => format!("systemctl stop {units}"),
                Fault::Restart { .. } => format!("systemctl restart {units}"),
                Fault::Kill { signal, whom, .. } => format!("systemctl kill {}={whom} SIG{} {units}", suite.kill_whom_option(), signal.name()),
                Fault::Resource(r) => describe_resource(r, &units),
                Fault::Heal { step, .. } => format!("heal the fault of step {}", step + 1),
            }
        }
        StepKind::Wait(w) => match w {
            Wait::State { unit, active, sub, .. } => format!(
                "wait for {} {}",
                unit.stem(),
                [active.map(|a| a.to_string()), sub.map(|s| format!("({s})"))].into_iter().flatten().collect::<Vec<_>>().join(" ")
            ),
            Wait::Journal { matcher, .. } => format!("wait for journal {matcher}"),
            Wait::Http { port, path, status, .. } => format!("wait for GET :{port}{path} {status}"),
        },
        StepKind::Settle { unit, window, .. } => format!("settle {} for {}", unit.stem(), format_duration(*window)),
        StepKind::Observe(o) => match o {
            Observe::State { unit } => format!("observe the state of {}", unit.stem()),
            Observe::Restart { unit, .. } => format!("observe whether {} restarts", unit.stem()),
            Observe::Http { port, path, .. } => format!("observe GET :{port}{path}"),
        },
        StepKind::Expect(e) => match e {
            Expectation::Unit { unit, checks } => {
                format!("expect {}: {}", unit.stem(), checks.iter().map(describe_property).collect::<Vec<_>>().join(", "))
            }
            Expectation::Http { port, path, expect, .. } => format!("probe :{port}{path} -> {expect}"),
            Expectation::RestartedWithin { unit, within, .. } => format!("expect {} restarted within {}", unit.stem(), format_duration(*within)),
            Expectation::NoRestart { unit, window, .. } => format!("expect no restart of {} for {}", unit.stem(), format_duration(*window)),
            Expectation::Recovery { unit, within, .. } => format!("expect {} recovered within {}", unit.stem(), format_duration(*within)),
            Expectation::Journal { matcher, present, .. } => format!("expect journal {}{matcher}", if *present { "" } else { "without " }),
        },
    }
}

/// A resource fault in a few words: what runs out, where, for how long.
fn describe_resource(r: &ResourceFault, units: &str) -> String {
    let what = match &r.kind {
        ResourceKind::Oom { limit: Some(l) } => format!("oom in {units} (MemoryMax={}M)", l >> 20),
        ResourceKind::Oom { limit: None } => format!("oom in {units} (its own MemoryMax=)"),
        ResourceKind::Network(n) => {
            let action = match n.action {
                NetAction::Loss(p) => format!("lose {p}% of"),
                NetAction::Delay(d) => format!("delay by {}", format_duration(d)),
                other => other.word().to_string(),
            };
            let mut on = Vec::new();
            if let Some(p) = n.port {
                on.push(format!("port {p}"));
            }
            if let Some(a) = n.peer {
                on.push(format!("peer {a}"));
            }
            format!("network: {action} traffic of {} ({})", on.join(" and "), n.direction)
        }
        ResourceKind::DiskFull { path } => format!("disk-full {} for {units}", path.display()),
        ResourceKind::CpuStarve => format!("cpu-starve {units}"),
    };
    match r.duration {
        Some(d) => format!("{what} for {}", format_duration(d)),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_step_is_described_with_the_suites_option_name() {
        let text = "name = \"s\"\n[[units]]\nname = \"a\"\nexec = [\"/bin/sleep\", \"60\"]\n[[steps]]\ndo = \"kill\"\nunit = \"a\"\nsignal = \"SIGKILL\"\nwhom = \"main\"\n";
        let scenario = crate::scenario::parse_str(std::path::Path::new("s.toml"), text).expect("valid").0;
        let kind = &scenario.steps[0].kind;
        assert_eq!(describe(kind, Suite::Bullseye), "systemctl kill --kill-who=main SIGKILL a");
        assert_eq!(describe(kind, Suite::Trixie), "systemctl kill --kill-whom=main SIGKILL a");
    }
}
