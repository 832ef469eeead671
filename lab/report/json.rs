//! The JSON report: the verdict types' serde form, documented field by field in `SCHEMA.md`
//! (a test holds the two together).

use crate::verdict::RunReport;

pub(super) fn render(report: &RunReport) -> String {
    // Serialising plain structs of strings, numbers and vectors into a String cannot fail.
    let mut doc = serde_json::to_string_pretty(report).expect("verdict types serialise to JSON");
    doc.push('\n');
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;
    use crate::report::fixtures;

    const SCHEMA_MD: &str = include_str!("SCHEMA.md");

    /// The documented tables: marker path -> first-column names, for both `object:` (field
    /// lists) and `values:` (enumerations) markers.
    fn documented(marker: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in SCHEMA_MD.lines() {
            if let Some(path) = line.strip_prefix("<!-- ").and_then(|l| l.strip_suffix(" -->")) {
                current = path.strip_prefix(marker).map(|p| p.trim().to_string());
                if let Some(p) = &current {
                    tables.entry(p.clone()).or_default();
                }
            } else if let (Some(path), Some(row)) = (&current, line.strip_prefix("| `")) {
                let name = row.split('`').next().expect("a backticked first cell");
                tables.get_mut(path).expect("table opened by its marker").insert(name.to_string());
            } else if !line.starts_with('|') && !line.trim().is_empty() {
                current = None;
            }
        }
        tables
    }

    /// All values found at a documented path ("." is the root, "a[]" every element of a, "a.b"
    /// the member b).
    fn at_path<'v>(root: &'v Value, path: &str) -> Vec<&'v Value> {
        let mut found = vec![root];
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, each) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            found = found
                .into_iter()
                .filter_map(|v| v.get(key))
                .flat_map(|v| if each { v.as_array().expect("an array").iter().collect() } else { vec![v] })
                .collect();
        }
        found
    }

    fn rendered() -> Value {
        serde_json::from_str(&render(&fixtures::table_report())).expect("the report is valid JSON")
    }

    #[test]
    fn the_document_round_trips_and_carries_the_schema_version() {
        let report = fixtures::report();
        let parsed: Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(parsed, serde_json::to_value(&report).unwrap());
        assert_eq!(parsed["schema"], crate::verdict::SCHEMA_VERSION);
        assert!(SCHEMA_MD.contains(&format!("current schema version is **{}**", crate::verdict::SCHEMA_VERSION)));
        // Durations are seconds rounded to milliseconds.
        assert_eq!(parsed["results"][0]["timings"][1]["value"], 1.204);
        assert_eq!(parsed["results"][1]["timeline"][0]["at"], 0.005);
    }

    #[test]
    fn every_documented_field_is_rendered_and_every_rendered_field_is_documented() {
        let doc = rendered();
        let tables = documented("object:");
        assert!(tables.contains_key("."), "SCHEMA.md documents the top level");
        assert_eq!(tables.len(), 10, "{tables:?}");
        for (path, fields) in &tables {
            let objects = at_path(&doc, path);
            assert!(!objects.is_empty(), "the fixture has no object at {path}");
            let rendered: BTreeSet<String> =
                objects.iter().flat_map(|o| o.as_object().expect("an object").keys().cloned()).collect();
            assert_eq!(&rendered, fields, "fields at {path}: rendered (left) vs SCHEMA.md (right)");
        }
    }

    #[test]
    fn every_documented_value_is_rendered_and_every_rendered_value_is_documented() {
        let doc = rendered();
        let values = documented("values:");
        let strings = |vs: Vec<&Value>| -> BTreeSet<String> { vs.iter().map(|v| v.as_str().unwrap().to_string()).collect() };
        let kinds = strings(at_path(&doc, "results[].timeline[].kind"));
        assert_eq!(kinds, values["results[].timeline[].kind"]);
        let mut outcomes = strings(at_path(&doc, "results[].outcome"));
        outcomes.extend(strings(at_path(&doc, "outcome")));
        assert_eq!(outcomes, values["outcome"]);
    }

    #[test]
    fn the_example_in_the_schema_is_valid_and_uses_documented_fields_only() {
        let example = SCHEMA_MD.split("```json").nth(1).and_then(|s| s.split("```").next()).expect("an example");
        let doc: Value = serde_json::from_str(example).expect("the example parses");
        for (path, fields) in documented("object:") {
            for object in at_path(&doc, &path) {
                for key in object.as_object().unwrap().keys() {
                    assert!(fields.contains(key), "example field {path}.{key} is not documented");
                }
            }
        }
    }
}
