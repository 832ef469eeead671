//! Observation: what systemd did, read from its journal. Typed events and timelines
//! (`events`), the one redaction layer for snapshots (`journal`), and the evidence judging
//! needs, extracted from timelines (`evidence`). Plain synchronous code: the runner feeds it
//! journal entries.

pub mod events;
pub mod evidence;
pub mod http;
pub mod journal;

pub use events::{classify, entry_monotonic_usec, entry_unit, message_id, monotonic_now_usec, Event, EventKind, Timeline};
pub use http::Answer;
pub use journal::JournalEntry;
