//! The documented tables (Restart= of systemd.service(5), the wrong-Type= table): the claims
//! as documented with the reviewed deviations (`oracle`), the cells as plans (`cells`), how
//! they are measured and presented.

pub mod cells;
pub mod conformance;
pub mod demo;
pub mod oracle;
pub mod view;
