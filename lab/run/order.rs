//! The order jobs start in: longest first.
//!
//! Boots are the one part of a run that queues (one per core at a time, see
//! `target::slots`), so whatever boots last starts last; a run ends when its last-started long
//! scenario does. Measured on 2 cores before this order (2026-12-04): the 72 shipped jobs in
//! path order started seed 000's 29 s scenario after 62 s and seed 001's 23 s one after 93 s,
//! for a 118 s run whose longest job took 31 s. Starting the longest first is the classic
//! longest-processing-time rule: the short jobs fill in around the long ones.
//!
//! How long a job takes is what it took last time on this machine (a small JSON file in the
//! user's cache directory, written after every run); a job never run before counts as longest,
//! so that an unknown long job is not left to the end. Ties keep the given order, so the order
//! is deterministic for the same history. The history only orders jobs: which jobs run (and
//! `--partition`'s split) never depends on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Durations of earlier jobs by [`key`], in seconds.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
}

/// A job's name in the history: its file, scenario, suite and fixture.
pub fn key(path: &Path, scenario: &str, suite: &str, fixture: &str) -> String {
    format!("{}#{scenario}@{suite}/{fixture}", path.display())
}

impl History {
    /// The history file: `$XDG_CACHE_HOME/unitlab/durations.json`, else `~/.cache/...`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("unitlab").join("durations.json"))
    }

    /// Read the history; a missing or unreadable file is an empty history (it only orders).
    pub fn load(path: &Path) -> History {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Record these durations over the old ones and write the file (atomically: a temporary
    /// file renamed). Failure is reported to the caller, who only logs it.
    pub fn record(path: &Path, durations: impl IntoIterator<Item = (String, f64)>) -> std::io::Result<()> {
        let mut history = History::load(path);
        history.seconds.extend(durations);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&history).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    /// Sort `jobs` longest first by their keys; unknown jobs first, ties in the given order.
    pub fn order<T>(&self, jobs: &mut [T], key_of: impl Fn(&T) -> String) {
        jobs.sort_by(|a, b| {
            let (a, b) = (self.seconds.get(&key_of(a)), self.seconds.get(&key_of(b)));
            match (a, b) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => b.total_cmp(a),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_unknown_before_known_ties_keep_their_order() {
        let history = History { seconds: BTreeMap::from([("a".into(), 3.0), ("b".into(), 30.0), ("c".into(), 3.0)]) };
        let mut jobs = vec!["a", "c", "new", "b", "other-new"];
        history.order(&mut jobs, |j| j.to_string());
        assert_eq!(jobs, ["new", "other-new", "b", "a", "c"]);
    }

    #[test]
    fn the_history_survives_a_round_trip_and_merges_new_durations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("durations.json");
        assert_eq!(History::load(&path), History::default(), "no file is an empty history");
        History::record(&path, [("x".to_string(), 1.5), ("y".to_string(), 2.0)]).unwrap();
        History::record(&path, [("y".to_string(), 4.0)]).unwrap();
        let h = History::load(&path);
        assert_eq!(h.seconds.get("x"), Some(&1.5));
        assert_eq!(h.seconds.get("y"), Some(&4.0));
        std::fs::write(&path, b"not json").unwrap();
        assert_eq!(History::load(&path), History::default(), "a damaged file only loses the ordering");
    }

    #[test]
    fn keys_name_file_scenario_suite_and_fixture() {
        assert_eq!(key(Path::new("scenarios/a.toml"), "a", "trixie", "vm"), "scenarios/a.toml#a@trixie/vm");
    }
}
