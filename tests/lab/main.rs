//! Everything that needs real systemd: one test binary with a module per area, so that the
//! Docker tests run concurrently (the test harness runs this binary's tests in parallel
//! threads) and share one image build. Needs a Docker Engine (see .ci/run); the offline
//! tests are in `tests/offline/`.

#[path = "../common/bin.rs"]
mod bin;
mod debian;
mod faults;
mod isolation;
mod lifecycle;
mod own_service;
mod pingers;
mod remote;
mod reliability;
mod scenarios;
mod seeds;
mod seeds_real;
mod suites;
mod support;
mod tables;
mod targets;
mod vm;
