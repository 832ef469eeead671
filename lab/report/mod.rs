//! Reporters: one [`RunReport`] rendered as a terminal summary, JSON (schema in `SCHEMA.md`),
//! JUnit XML, Markdown or a self-contained HTML page; [`Live`] turns the runner's events into
//! progress lines while it works. Every format reads the same verdict types, so they cannot
//! disagree about what happened.

mod demo;
mod html;
mod human;
mod json;
mod junit;
mod markdown;
mod svg;
mod tables;
mod text;
mod timeline;
mod versions;

#[cfg(test)]
mod fixtures;

use std::fmt;
use std::str::FromStr;

use crate::verdict::RunReport;

pub use demo::render_demo;
pub use human::{render_human, Live};

/// An output format of `unitlab run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Human,
    Json,
    Junit,
    Markdown,
    Html,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Human, Format::Json, Format::Junit, Format::Markdown, Format::Html];

    /// The name users type (`--format junit`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format '{0}' (expected one of: human, json, junit, markdown, html)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// The complete document of `report` in `format`. The human form comes without colour here
/// (it may go to a file or a pipe); a terminal gets [`render_human`] with colour.
pub fn render(format: Format, report: &RunReport) -> String {
    match format {
        Format::Human => human::render_human(report, false),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip_and_unknown_names_list_the_choices() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(err, UnknownFormat("xml".into()));
        assert!(err.to_string().contains("human, json, junit, markdown, html"), "{err}");
    }

    #[test]
    fn every_format_renders_a_nonempty_document() {
        let report = fixtures::report();
        for f in Format::ALL {
            let doc = render(f, &report);
            assert!(doc.contains("watchdog-hang"), "{f} lacks the failing scenario:\n{doc}");
        }
    }
}
