//! The manager's own settings (systemd-system.conf(5) `[Manager]`), as the lab writes them into
//! a drop-in of a target: how time is compressed without touching units.

use super::unit::Directive;

/// system.conf `[Manager]` overrides, as a drop-in (`/etc/systemd/system.conf.d/*.conf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerSettings {
    pub directives: Vec<Directive>,
}

impl ManagerSettings {
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }

    /// The last value given for `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.directives.iter().rev().find(|d| d.key == key).map(|d| d.value.as_str())
    }

    /// The drop-in's text: `[Manager]` and the directives, or an empty string when there are none.
    pub fn render(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::from("[Manager]\n");
        for d in &self.directives {
            out.push_str(&format!("{}={}\n", d.key, d.value));
        }
        out
    }
}

