//! Loading scenario files and directories: read, parse, validate, and report every diagnostic
//! of every file before anything runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::diagnostic::{has_errors, Diagnostic, Severity, SourceMap};
use super::model::Scenario;
use super::{raw, validate};

/// Parse and validate scenario text. `path` is only used in diagnostics and
/// [`Scenario::path`]. `Ok` carries the warnings; `Err` carries every diagnostic (errors and
/// warnings, in file order).
pub fn parse_str(path: &Path, source: &str) -> Result<(Scenario, Vec<Diagnostic>), Vec<Diagnostic>> {
    let map = SourceMap::new(path, source);
    let (raw, mut diags) = raw::parse(&map, source);
    let Some(raw) = raw else { return Err(diags) };
    let (scenario, more) = validate::validate(&map, raw);
    diags.extend(more);
    diags.sort_by_key(|d| (d.line, d.col));
    match scenario {
        Some(s) if !has_errors(&diags) => Ok((s, diags)),
        _ => Err(diags),
    }
}

/// Load one scenario file.
pub fn load_file(path: &Path) -> Result<(Scenario, Vec<Diagnostic>), Vec<Diagnostic>> {
    match std::fs::read_to_string(path) {
        Ok(source) => parse_str(path, &source),
        Err(e) => Err(vec![Diagnostic::whole_file(Severity::Error, path, format!("cannot read scenario: {e}"))
            .with_hint("check the path and its permissions")]),
    }
}

/// Everything loaded from a set of paths.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The scenarios without errors, in load order (files sorted by path within a directory).
    pub scenarios: Vec<Scenario>,
    /// All diagnostics of all files, in load order then file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// True when any file had an error: `unitlab run` must then exit 2 and start nothing.
    pub fn has_errors(&self) -> bool {
        has_errors(&self.diagnostics)
    }
}

/// Load files and directories. A directory contributes every `*.toml` below it, recursively,
/// sorted by path; a file named directly is loaded whatever its extension. Scenario names must
/// be unique across everything loaded together (the runner namespaces units by name).
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            if let Err(e) = collect_toml(path, &mut files) {
                loaded.diagnostics.push(Diagnostic::whole_file(Severity::Error, path, format!("cannot read directory: {e}")));
                continue;
            }
            if files.len() == before {
                loaded.diagnostics.push(
                    Diagnostic::whole_file(Severity::Error, path, "no scenario (*.toml) in this directory")
                        .with_hint("name a directory holding scenario files, or the files themselves"),
                );
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok((scenario, warnings)) => {
                loaded.diagnostics.extend(warnings);
                if let Some(first) = names.get(&scenario.name) {
                    let mut d = Diagnostic::whole_file(
                        Severity::Error,
                        &file,
                        format!("scenario name `{}` is already used by {}", scenario.name, first.display()),
                    )
                    .with_hint("give every scenario its own `name`");
                    // Point at the name when the file can be re-read (it just was).
                    if let Ok(source) = std::fs::read_to_string(&file) {
                        if let Some(at) = find_name_value(&source) {
                            d = SourceMap::new(&file, &source).error(at, d.message.clone()).with_hint(d.hint.unwrap_or_default());
                        }
                    }
                    loaded.diagnostics.push(d);
                } else {
                    names.insert(scenario.name.clone(), file.clone());
                    loaded.scenarios.push(scenario);
                }
            }
            Err(diags) => loaded.diagnostics.extend(diags),
        }
    }
    loaded
}

/// The span of the top-level `name` value.
fn find_name_value(source: &str) -> Option<std::ops::Range<usize>> {
    let table = toml::de::DeTable::parse(source).ok()?;
    let (_, value) = table.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == "name")?;
    Some(value.span())
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}
