//! The scenario loader on arbitrary input: whatever the bytes, it returns a scenario or
//! diagnostics, never panics, and every diagnostic it returns renders. Scenario files are code
//! other people hand the lab: the loader is its first line of defence.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader reads UTF-8 text (invalid bytes are refused before parsing, with a position).
    let Ok(text) = std::str::from_utf8(data) else { return };
    match unitlab::scenario::parse_str(Path::new("fuzz.toml"), text) {
        Ok((scenario, warnings)) => {
            // A valid scenario is one the runner can plan: names, claims, rendered units.
            let _ = unitlab::run::claims(&scenario);
            for (name, unit) in scenario.units_renamed(|n| unitlab::run::unit_name(&scenario, n)) {
                assert!(!name.contains('\n'));
                let rendered = unit.render();
                // No value can smuggle a line into the unit file: every line is a section
                // header, a Key=Value, or empty.
                for line in rendered.lines() {
                    assert!(line.is_empty() || line.starts_with('[') || line.contains('='), "{line:?} in\n{rendered}");
                }
            }
            let _ = unitlab::scenario::render_all(&warnings);
        }
        Err(diagnostics) => {
            assert!(unitlab::scenario::has_errors(&diagnostics));
            let _ = unitlab::scenario::render_all(&diagnostics);
        }
    }
});
