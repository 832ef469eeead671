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
    // The scenario's own lines first, then those of the unit files it reads (`file =`).
    diags.sort_by_key(|d| (d.path != path, d.line, d.col));
    match scenario {
        Some(s) if !has_errors(&diags) => Ok((s, diags)),
        _ => Err(diags),
    }
}

/// The largest scenario file read: a scenario is a page or two of TOML, so anything bigger is
/// not one (and `unitlab run /dev/zero` must not read until memory runs out).
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;
/// How far a directory is searched for scenarios: `unitlab run /` must end at once with a
/// clear error, not walk the whole filesystem.
pub const MAX_WALK_ENTRIES: usize = 10_000;
const MAX_WALK_DEPTH: usize = 16;
/// How deeply tables and arrays may nest: the format needs three levels; the limit only
/// keeps an absurd file from being reported at a meaningless position.
const MAX_NESTING: usize = 64;

fn read_error(path: &Path, message: impl Into<String>, hint: &str) -> Vec<Diagnostic> {
    vec![Diagnostic::whole_file(Severity::Error, path, message).with_hint(hint)]
}

/// Read a scenario file's text, refusing what is not one before opening it: anything but a
/// regular file (opening a FIFO blocks until a writer comes; a device never ends), a file over
/// [`MAX_SCENARIO_BYTES`], bytes that are not UTF-8 (with the position of the first bad byte).
fn read_scenario(path: &Path) -> Result<String, Vec<Diagnostic>> {
    let unreadable = |e: std::io::Error| read_error(path, format!("cannot read scenario: {e}"), "check the path and its permissions");
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        let what = describe_file_type(&meta.file_type());
        return Err(read_error(path, format!("not a scenario file: it is {what}"), "name a regular *.toml file (or a directory holding them)"));
    }
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(read_error(
            path,
            format!("scenario file is {} bytes, over the limit of {MAX_SCENARIO_BYTES}", meta.len()),
            "a scenario is a page of TOML; large content belongs in a file the scenario copies in",
        ));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let d = SourceMap::new(path, &text)
            .error(valid..valid, "the file is not valid UTF-8 from here on")
            .with_hint("TOML files are UTF-8: re-save the file as UTF-8, or remove the stray bytes");
        vec![d]
    })
}

/// What kind of file `t` is, for a message saying why it cannot be read or copied.
pub(crate) fn describe_file_type(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "a regular file"
    }
}

/// The byte offset where `source` nests tables or arrays deeper than [`MAX_NESTING`], looking
/// past strings and comments (the TOML parser gives such a file no useful position).
fn too_deep(source: &str) -> Option<usize> {
    const QUOTES: [&str; 4] = ["\"\"\"", "'''", "\"", "'"];
    let (mut depth, mut quote, mut comment) = (0usize, None::<&str>, false);
    let mut i = 0;
    while let Some(c) = source[i..].chars().next() {
        let rest = &source[i..];
        if comment {
            comment = c != '\n';
        } else if let Some(q) = quote {
            if c == '\\' && q.starts_with('"') {
                // An escaped character inside a basic string: skip it too.
                i += c.len_utf8();
                i += source[i..].chars().next().map_or(0, char::len_utf8);
                continue;
            }
            if rest.starts_with(q) {
                i += q.len();
                quote = None;
                continue;
            }
        } else if let Some(q) = QUOTES.into_iter().find(|q| rest.starts_with(q)) {
            quote = Some(q);
            i += q.len();
            continue;
        } else if c == '#' {
            comment = true;
        } else if c == '[' || c == '{' {
            depth += 1;
            if depth > MAX_NESTING {
                return Some(i);
            }
        } else if c == ']' || c == '}' {
            depth = depth.saturating_sub(1);
        }
        i += c.len_utf8();
    }
    None
}

/// Load one scenario file.
pub fn load_file(path: &Path) -> Result<(Scenario, Vec<Diagnostic>), Vec<Diagnostic>> {
    let source = read_scenario(path)?;
    if let Some(at) = too_deep(&source) {
        let map = SourceMap::new(path, &source);
        return Err(vec![map
            .error(at..at + 1, format!("tables or arrays nested more than {MAX_NESTING} deep"))
            .with_hint("a scenario nests three levels at most ([[units]] > [units.Service] > an array)")]);
    }
    parse_str(path, &source)
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
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            if let Err(e) = (Walk { entries: 0 }).collect(path, 0, &mut files) {
                loaded.diagnostics.push(e.diagnostic(path));
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
    // The same file named twice (directly, through a directory, or by another spelling) is
    // loaded once: it is one scenario, not a duplicate of itself.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
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
                    if let Ok(source) = read_scenario(&file) {
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

/// Why a directory could not be searched.
enum WalkError {
    Io(std::io::Error),
    TooMany,
    TooDeep(PathBuf),
}

impl WalkError {
    fn diagnostic(&self, root: &Path) -> Diagnostic {
        let hint = "name the directory that holds the scenarios (e.g. scenarios/), not a whole tree";
        match self {
            WalkError::Io(e) => Diagnostic::whole_file(Severity::Error, root, format!("cannot read directory: {e}")),
            WalkError::TooMany => {
                Diagnostic::whole_file(Severity::Error, root, format!("more than {MAX_WALK_ENTRIES} entries below this directory: not a scenario directory")).with_hint(hint)
            }
            WalkError::TooDeep(at) => {
                Diagnostic::whole_file(Severity::Error, root, format!("directories nested more than {MAX_WALK_DEPTH} deep (at {})", at.display())).with_hint(hint)
            }
        }
    }
}

/// A bounded search for `*.toml` files. Symbolic links to directories are not followed (no
/// loops); a `*.toml` that is not a regular file (a FIFO, a device) is kept, so that loading
/// it reports what it is instead of blocking on it.
struct Walk {
    entries: usize,
}

impl Walk {
    fn collect(&mut self, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), WalkError> {
        if depth > MAX_WALK_DEPTH {
            return Err(WalkError::TooDeep(dir.to_path_buf()));
        }
        let read = std::fs::read_dir(dir).map_err(WalkError::Io)?;
        let mut entries: Vec<PathBuf> = read.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(WalkError::Io)?;
        self.entries += entries.len();
        if self.entries > MAX_WALK_ENTRIES {
            return Err(WalkError::TooMany);
        }
        entries.sort();
        for path in entries {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                self.collect(&path, depth + 1, out)?;
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_error(loaded: &Loaded) -> &Diagnostic {
        assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
        assert!(loaded.diagnostics[0].is_error());
        &loaded.diagnostics[0]
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.toml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // Named directly, and found in a directory: both end at once (nobody writes the FIFO).
        for paths in [vec![fifo.clone()], vec![dir.path().to_path_buf()]] {
            let loaded = load_paths(&paths);
            assert!(only_error(&loaded).message.contains("a FIFO"), "{:?}", loaded.diagnostics);
        }
        let loaded = load_paths(&[PathBuf::from("/dev/zero")]);
        assert!(only_error(&loaded).message.contains("a device"));
    }

    #[test]
    fn a_huge_file_and_bad_utf8_are_refused_with_where() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_SCENARIO_BYTES as usize + 1]).unwrap();
        assert!(only_error(&load_paths(&[big])).message.contains("over the limit"));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"name = \"x\"\ndescription = \"caf\xe9\"\n").unwrap();
        let loaded = load_paths(&[bad]);
        let d = only_error(&loaded);
        assert_eq!((d.line, d.col), (2, 19), "{d}");
        assert!(d.message.contains("not valid UTF-8"));
    }

    #[test]
    fn absurd_nesting_is_reported_where_it_goes_too_deep() {
        let deep = format!("name = \"x\"\n# [[[[ in a comment\ns = \"[[[[[\"\na = {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(&deep), Some(deep.find("a = ").unwrap() + 4 + MAX_NESTING));
        assert_eq!(too_deep("a = [[1], {b = [2]}]\n"), None);
    }

    #[test]
    fn a_file_named_twice_is_one_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(&f, "name = \"a\"\n[[units]]\nname = \"w\"\nexec = [\"/bin/true\"]\n[[steps]]\ndo = \"start\"\nunit = \"w\"\n").unwrap();
        let loaded = load_paths(&[f.clone(), dir.path().to_path_buf(), dir.path().join(".").join("a.toml")]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.scenarios.len(), 1);
    }

    #[test]
    fn a_walk_of_a_whole_tree_stops_with_an_error() {
        let loaded = load_paths(&[PathBuf::from("/usr")]);
        let d = only_error(&loaded);
        assert!(d.message.contains("entries below this directory") || d.message.contains("nested more than"), "{d}");
    }
}
