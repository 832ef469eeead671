//! Everything that needs no Docker Engine: the scenario format and its malformed corpus, the
//! command line's contracts on bad input, the reporters (HTML rendered in a headless browser
//! when one is installed), and the docs kept in step with the code. The fast loop:
//! `cargo test --lib --test offline`.

#[path = "../common/bin.rs"]
mod bin;
mod cli;
mod docs;
mod report_html;
mod scenario_format;
