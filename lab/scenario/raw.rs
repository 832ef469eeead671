//! First parsing step: TOML text -> raw structs that mirror the file, every value with its byte
//! span. Only TOML syntax and shapes (types, unknown and missing keys) are checked here; what
//! the values mean is `validate`'s job.
//!
//! The top-level table is split by hand and every `[[units]]`, `[[steps]]` and `[[files]]`
//! entry is deserialised on its own, so that one bad entry does not hide the errors of the
//! next (serde stops at the first error of a value).

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::diagnostic::{Diagnostic, SourceMap};

/// A scalar where the format allows more than one type (a directive value, `mode`,
/// `n_restarts`, a probe's `expect`, a signal). Deserialised with a visitor, not
/// `#[serde(untagged)]`, so a wrong type gets a precise message.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl Scalar {
    /// The value as it is rendered into a unit file.
    pub fn render(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, integer, float or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        i64::try_from(v).map(Scalar::Int).map_err(|_| E::custom("integer too large"))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A directive's value: one scalar (one line) or an array of them (one line each, in order:
/// the way to repeat a directive such as `ExecStartPre=`).
#[derive(Debug, Clone, PartialEq)]
pub enum DirectiveValue {
    One(Scalar),
    Many(Vec<Spanned<Scalar>>),
}

impl<'de> Deserialize<'de> for DirectiveValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DirectiveValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DirectiveValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, integer, boolean, or an array of them (one line each)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DirectiveValue, E> {
                ScalarVisitor.visit_str(v).map(DirectiveValue::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DirectiveValue, E> {
                ScalarVisitor.visit_i64(v).map(DirectiveValue::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DirectiveValue, E> {
                ScalarVisitor.visit_u64(v).map(DirectiveValue::One)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<DirectiveValue, E> {
                ScalarVisitor.visit_bool(v).map(DirectiveValue::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DirectiveValue, E> {
                ScalarVisitor.visit_f64(v).map(DirectiveValue::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DirectiveValue, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Scalar>>()? {
                    out.push(item);
                }
                Ok(DirectiveValue::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A table of directives (`[units.Service]`, `[manager]`) in the order written. TOML tables
/// are maps; the order is recovered from the keys' positions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section(pub Vec<(Spanned<String>, Spanned<DirectiveValue>)>);

impl<'de> Deserialize<'de> for Section {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Section, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Section;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of directives (Key = \"value\")")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Section, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<DirectiveValue>>()?;
                    out.push((key, value));
                }
                out.sort_by_key(|(k, _)| k.span().start);
                Ok(Section(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One `[[units]]` entry.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUnit {
    /// Required unless `file` is given (the file's name is then the unit's).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// The program and its arguments; without `exec`, `text` or `file` the unit is one
    /// already on the target.
    #[serde(default)]
    pub exec: Option<Spanned<Vec<Spanned<String>>>>,
    /// The whole unit file as text, instead of `exec` and the section tables.
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    /// A unit file on the host, relative to the scenario file, installed as written.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(rename = "Unit", default)]
    pub unit: Option<Spanned<Section>>,
    #[serde(rename = "Service", default)]
    pub service: Option<Spanned<Section>>,
    #[serde(rename = "Install", default)]
    pub install: Option<Spanned<Section>>,
}

/// One `[[files]]` entry.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub path: Spanned<String>,
    /// Exactly one of `content` and `source`.
    #[serde(default)]
    pub content: Option<Spanned<String>>,
    /// A host file or directory, relative to the scenario file, copied byte for byte.
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    #[serde(default)]
    pub mode: Option<Spanned<Scalar>>,
}

/// `[limits]`: the target's ceilings, each optional.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default)]
    pub pids: Option<Spanned<i64>>,
    #[serde(default)]
    pub memory: Option<Spanned<String>>,
}

/// Declares `RawStep` (every key any step kind takes, all optional) with a `present()` that
/// lists the keys written, so `validate` can say which key does not belong to which `do`.
macro_rules! raw_step {
    ($($field:ident $key:literal : $ty:ty),+ $(,)?) => {
        /// One `[[steps]]` entry: the union of all step kinds' keys.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawStep {
            $(#[serde(rename = $key, default)] pub $field: Option<Spanned<$ty>>,)+
        }

        impl RawStep {
            /// Every key a step may have, as written in TOML (validate checks its table against it).
            #[allow(dead_code)]
            pub const KEYS: &'static [&'static str] = &[$($key),+];

            /// The keys written in this step, with their value spans, in file order.
            pub fn present(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut out = Vec::new();
                $(if let Some(v) = &self.$field { out.push(($key, v.span())); })+
                out.sort_by_key(|(_, span)| span.start);
                out
            }
        }
    };
}

raw_step! {
    action "do": String,
    unit "unit": String,
    units "units": Vec<Spanned<String>>,
    no_block "no_block": bool,
    what "what": String,
    kind "kind": String,
    part "part": String,
    code "code": i64,
    signal "signal": Scalar,
    whom "whom": String,
    after "after": String,
    duration "duration": String,
    active "active": String,
    sub "sub": String,
    result "result": String,
    n_restarts "n_restarts": Scalar,
    exit_code "exit_code": i64,
    exit_signal "exit_signal": Scalar,
    core_dumped "core_dumped": bool,
    contains "contains": String,
    not_contains "not_contains": String,
    matches "matches": String,
    not_matches "not_matches": String,
    port "port": i64,
    path "path": String,
    status "status": i64,
    expect "expect": Scalar,
    timeout "timeout": String,
    within "within": String,
    window "window": String,
    fault_name "name": String,
    limit "limit": String,
    traffic "action": String,
    percent "percent": i64,
    delay "delay": String,
    peer "peer": String,
    direction "direction": String,
}

/// The whole file, raw. `None`/empty for keys not written.
#[derive(Debug, Default)]
pub struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub suites: Option<Spanned<Vec<Spanned<String>>>>,
    pub fixtures: Option<Spanned<Vec<Spanned<String>>>>,
    pub shared_target: Option<Spanned<bool>>,
    pub snapshot: Option<Spanned<bool>>,
    pub allow_unknown_directives: Option<Spanned<bool>>,
    pub allow_invalid_values: Option<Spanned<bool>>,
    pub manager: Option<Spanned<Section>>,
    pub limits: Option<Spanned<RawLimits>>,
    pub packages: Option<Spanned<Vec<Spanned<String>>>>,
    /// `(span of the entry, entry)`; entries that failed to deserialise are left out (their
    /// diagnostics are reported).
    pub files: Vec<(Range<usize>, RawFile)>,
    pub units: Vec<(Range<usize>, RawUnit)>,
    pub steps: Vec<(Range<usize>, RawStep)>,
    /// Every `name` string written in a `[[units]]` table (or the file name of a `file`), also
    /// of entries that failed to deserialise.
    pub unit_names: Vec<String>,
    /// How many `[[steps]]` entries were written, also those that failed to deserialise.
    pub steps_written: usize,
    /// The span of the `steps` key's value, when written (also when it was an empty array).
    pub steps_span: Option<Range<usize>>,
}

/// Every top-level key, as written in TOML.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name", "description", "suites", "fixtures", "shared_target", "snapshot", "allow_unknown_directives",
    "allow_invalid_values", "manager", "limits", "packages", "files", "units", "steps",
];

/// Parse `source` into a [`RawScenario`], collecting every syntax and shape error. `None` when
/// the TOML itself does not parse (then only syntax errors are reported).
pub fn parse(map: &SourceMap<'_>, source: &str) -> (Option<RawScenario>, Vec<Diagnostic>) {
    let (root, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        let diags = syntax_errors
            .iter()
            .map(|e| {
                let span = e.span().unwrap_or(0..0);
                map.error(span, format!("TOML syntax: {}", first_line(e.message())))
                    .with_hint("fix the TOML syntax first; nothing else in this file was checked")
            })
            .collect();
        return (None, diags);
    }
    let mut diags = Vec::new();
    let mut raw = RawScenario::default();
    let mut entries: Vec<(Spanned<std::borrow::Cow<'_, str>>, Spanned<DeValue<'_>>)> =
        root.into_inner().into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let key_span = key.span();
        let value_span = value.span();
        match key.as_ref().as_ref() {
            "name" => raw.name = one(map, value, &mut diags),
            "description" => raw.description = one(map, value, &mut diags),
            "suites" => raw.suites = one(map, value, &mut diags),
            "fixtures" => raw.fixtures = one(map, value, &mut diags),
            "shared_target" => raw.shared_target = one(map, value, &mut diags),
            "snapshot" => raw.snapshot = one(map, value, &mut diags),
            "allow_unknown_directives" => raw.allow_unknown_directives = one(map, value, &mut diags),
            "allow_invalid_values" => raw.allow_invalid_values = one(map, value, &mut diags),
            "manager" => raw.manager = one(map, value, &mut diags),
            "limits" => raw.limits = one(map, value, &mut diags),
            "packages" => raw.packages = one(map, value, &mut diags),
            "files" => raw.files = each(map, "files", value, &mut diags),
            "units" => {
                if let DeValue::Array(items) = value.get_ref() {
                    for item in items {
                        if let DeValue::Table(t) = item.get_ref() {
                            if let Some((_, name)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == "name") {
                                if let DeValue::String(n) = name.get_ref() {
                                    raw.unit_names.push(n.to_string());
                                }
                            }
                            if let Some((_, file)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == "file") {
                                // A unit read from a file is named by the file.
                                if let DeValue::String(f) = file.get_ref() {
                                    raw.unit_names.push(f.rsplit('/').next().unwrap_or(f).to_string());
                                }
                            }
                        }
                    }
                }
                raw.units = each(map, "units", value, &mut diags);
            }
            "steps" => {
                raw.steps_span = Some(value_span);
                if let DeValue::Array(items) = value.get_ref() {
                    raw.steps_written = items.len();
                }
                raw.steps = each(map, "steps", value, &mut diags);
            }
            other => {
                let mut d = map.error(key_span, format!("unknown top-level key `{other}`"));
                d = match crate::systemd::directives::suggest(other, TOP_LEVEL_KEYS) {
                    Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                    None => d.with_hint(format!("top-level keys are: {}", TOP_LEVEL_KEYS.join(", "))),
                };
                diags.push(d);
            }
        }
    }
    (Some(raw), diags)
}

/// Deserialise one value, turning a serde error into a diagnostic.
fn one<'de, T: Deserialize<'de>>(
    map: &SourceMap<'_>,
    value: Spanned<DeValue<'de>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(serde_diagnostic(map, &e, span));
            None
        }
    }
}

/// Deserialise each entry of an array of tables on its own.
fn each<'de, T: Deserialize<'de>>(
    map: &SourceMap<'_>,
    key: &str,
    value: Spanned<DeValue<'de>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(Range<usize>, T)> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        diags.push(
            map.error(span, format!("`{key}` must be an array of tables"))
                .with_hint(format!("write each entry under its own `[[{key}]]` header")),
        );
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let span = item.span();
            one::<T>(map, item, diags).map(|v| (span, v))
        })
        .collect()
}

/// A serde error as a diagnostic at the error's span (or the value's), with a hint where one
/// helps: the closest key for an unknown field, what to write for a missing one.
fn serde_diagnostic(map: &SourceMap<'_>, e: &toml::de::Error, fallback: Range<usize>) -> Diagnostic {
    // serde names Rust types; say TOML's.
    let message = first_line(e.message())
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("expected struct Raw", "expected a table for ")
        .replace("expected a borrowed string", "expected a string");
    let span = e.span().unwrap_or(fallback);
    let mut d = map.error(span, message.clone());
    if let Some(field) = between(&message, "unknown field `", "`") {
        // serde lists the expected fields between backticks after "expected".
        let expected: Vec<&str> = message
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        if let Some(s) = crate::systemd::directives::suggest(field, &expected) {
            d = d.with_hint(format!("did you mean `{s}`?"));
        } else if field.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            d = d.with_hint("directives go in a section table: [units.Unit], [units.Service] or [units.Install]");
        } else {
            d = d.with_hint("remove it, or check the spelling against scenarios/README.md");
        }
    } else if let Some(field) = between(&message, "missing field `", "`") {
        d = d.with_hint(match field {
            "exec" => "add `exec = [\"/usr/local/bin/buggy-server\", ...]`: the program and its arguments".to_string(),
            "name" => "add `name = \"...\"`".to_string(),
            other => format!("add `{other} = ...`"),
        });
    } else if message.starts_with("invalid type") {
        d = d.with_hint("see scenarios/README.md for the type of each key");
    }
    d
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}
