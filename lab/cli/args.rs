//! The command line (clap derive). Value enums map onto the library's own types; the library
//! knows nothing of clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use unitlab::report::Format;
use unitlab::run::Partition;
use unitlab::tables::Table;
use unitlab::{Fixture, Suite};

#[derive(Parser)]
#[command(name = "unitlab", version, about = "A chaos test lab for systemd services: real systemd, buggy servers, verdicts")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A suite on the command line; `all` is every suite (where a command takes several).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteArg {
    /// Debian 11, systemd 247.
    Bullseye,
    /// Debian 12, systemd 252.
    Bookworm,
    /// Debian 12 with systemd 254 from bookworm-backports.
    BookwormBackports,
    /// Debian 13, systemd 257.
    Trixie,
    /// Debian unstable, systemd 262 (needs cgroup v2).
    Sid,
    /// Every suite above.
    All,
}

impl SuiteArg {
    /// The suites this argument names.
    pub fn suites(self) -> Vec<Suite> {
        match self {
            SuiteArg::Bullseye => vec![Suite::Bullseye],
            SuiteArg::Bookworm => vec![Suite::Bookworm],
            SuiteArg::BookwormBackports => vec![Suite::BookwormBackports],
            SuiteArg::Trixie => vec![Suite::Trixie],
            SuiteArg::Sid => vec![Suite::Sid],
            SuiteArg::All => Suite::ALL.to_vec(),
        }
    }
}

/// One suite, for the commands that boot a single target.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OneSuiteArg {
    Bullseye,
    Bookworm,
    BookwormBackports,
    Trixie,
    Sid,
}

impl From<OneSuiteArg> for Suite {
    fn from(s: OneSuiteArg) -> Suite {
        match s {
            OneSuiteArg::Bullseye => Suite::Bullseye,
            OneSuiteArg::Bookworm => Suite::Bookworm,
            OneSuiteArg::BookwormBackports => Suite::BookwormBackports,
            OneSuiteArg::Trixie => Suite::Trixie,
            OneSuiteArg::Sid => Suite::Sid,
        }
    }
}

/// Fixtures: how a target's systemd is reached.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FixtureArg {
    /// systemd as PID 1 of a Docker container (fast; shares the host's kernel).
    Container,
    /// systemd as PID 1 of a QEMU machine with Debian's kernel (KVM when it works, else TCG).
    Vm,
}

impl From<FixtureArg> for Fixture {
    fn from(f: FixtureArg) -> Fixture {
        match f {
            FixtureArg::Container => Fixture::Container,
            FixtureArg::Vm => Fixture::Vm,
        }
    }
}

/// Report formats, on stdout or into `--output`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Human,
    Json,
    Junit,
    Markdown,
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
            FormatArg::Junit => Format::Junit,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
        }
    }
}

/// Where a report goes.
#[derive(clap::Args, Clone)]
pub struct ReportArgs {
    /// Report format (on stdout, or into --output).
    #[arg(long, value_enum, default_value = "human")]
    pub format: FormatArg,
    /// Write the report in --format to this file; the human summary still goes to the terminal.
    /// Checked before anything starts: its directory must exist.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run scenarios (files, or directories searched for *.toml) on real systemd targets.
    /// Every file is validated first: any error is reported with file:line:col and nothing
    /// starts (exit 2). Exit 0 when every expectation held, 1 when one failed, 3 when the lab
    /// itself failed.
    Run {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Run on these suites (repeatable; `all` for every suite): a scenario with a `suites`
        /// list runs on those of its suites given here, one without runs on all given here.
        /// Default: each scenario's own list, else bookworm and trixie.
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// Run on these fixtures (repeatable): scenarios without `fixtures` run on them, those
        /// with `fixtures` on the ones they list that are given here (default: each scenario's
        /// own, a container when it names none).
        #[arg(long, value_enum)]
        fixture: Vec<FixtureArg>,
        /// At most this many scenarios at the same time (default: all, longest first; they
        /// mostly wait on systemd's timers, while boots take one host-wide slot per core and
        /// wait for room on the host).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: Option<u16>,
        /// Run only share K of N of the (scenario, suite) jobs, e.g. `--partition 2/3` on the
        /// second of three CI machines; every machine computes the same split.
        #[arg(long, value_name = "K/N")]
        partition: Option<Partition>,
        /// Keep the targets afterwards for inspection (and print how to enter them).
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Measure a documented table on real systemd: every cell as its own scenario, all of a
    /// suite's cells at once on one target; documented and observed side by side. Exit 1 if a
    /// cell disagrees in a way not covered by the reviewed deviations list.
    Matrix {
        /// The tables to measure, one or more (`restart type` measures both on the same
        /// targets; `all` is every table).
        #[arg(value_enum, required = true, num_args = 1..)]
        table: Vec<TableArg>,
        /// Suites to measure on (repeatable; `all` for every suite: one cross-version table;
        /// default: bookworm).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// Fixtures to measure on (default: container).
        #[arg(long, value_enum)]
        fixture: Vec<FixtureArg>,
        #[command(flatten)]
        report: ReportArgs,
        /// Keep the targets afterwards for inspection.
        #[arg(long)]
        keep: bool,
        /// Write each cell's scenario file into this directory instead of measuring (replay
        /// them with `unitlab run DIR`).
        #[arg(long, value_name = "DIR")]
        emit: Option<PathBuf>,
    },
    /// Live demo: every Restart= option (or every wrong Type=) on real systemd, told step by
    /// step, ending with the measured table beside the documented one.
    Demo {
        #[arg(value_enum, default_value = "restart")]
        topic: DemoTopic,
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: OneSuiteArg,
        #[arg(long, value_enum, default_value = "container")]
        fixture: FixtureArg,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Target images (systemd + buggy servers), built from Debian's packages.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Check that this machine can run the lab; every failing check prints its fix.
    Doctor {
        /// Suites to check (default: all).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// Fixtures to check (default: container; `vm` checks QEMU, qemu-img, KVM and the VM
        /// disk, and boots a VM per suite).
        #[arg(long, value_enum)]
        fixture: Vec<FixtureArg>,
    },
    /// Remove lab containers whose owning unitlab process has ended (kept targets included).
    Clean {
        /// Remove every lab container, even those of runs still in progress.
        #[arg(long)]
        all: bool,
    },
    /// Boot a target and report its systemd version and boot time.
    Boot {
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: OneSuiteArg,
        #[arg(long, value_enum, default_value = "container")]
        fixture: FixtureArg,
        /// Keep the target running after the command ends, and print how to enter it.
        #[arg(long, conflicts_with = "count")]
        keep: bool,
        /// Boot this many targets one after another and report the boot-time median.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        count: u32,
    },
    /// Boot a target and run a command in it (or, on a terminal with no command, an
    /// interactive shell); the target is removed afterwards unless --keep.
    Shell {
        #[arg(long, value_enum, default_value = "bookworm")]
        suite: OneSuiteArg,
        #[arg(long, value_enum, default_value = "container")]
        fixture: FixtureArg,
        #[arg(long)]
        keep: bool,
        /// Command to run inside the target; its exit code becomes unitlab's.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableArg {
    /// The Restart= table of systemd.service(5): 7 options x 5 exit causes.
    Restart,
    /// The wrong-Type= table: 4 program behaviours x 4 configured types.
    Type,
    /// Restart= x every way a service can end (18 endings: each Result, the clean signals,
    /// the exit-status lists), against systemd.service(5) and the rule in service.c.
    Results,
    /// Every table, measured together on one target per suite.
    All,
}

impl TableArg {
    pub fn tables(self) -> Vec<Table> {
        match self {
            TableArg::Restart => vec![Table::Restart],
            TableArg::Type => vec![Table::Type],
            TableArg::Results => vec![Table::Results],
            TableArg::All => Table::ALL.to_vec(),
        }
    }
}

/// The tables named on the command line, each once, in the order first named.
pub fn tables(args: &[TableArg]) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for table in args.iter().flat_map(|a| a.tables()) {
        if !out.contains(&table) {
            out.push(table);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoTopic {
    /// Every Restart= option against five kinds of failure.
    Restart,
    /// Every program behaviour under every Type=.
    Type,
    /// Every Restart= option against every way a service can end.
    Results,
}

impl DemoTopic {
    pub fn table(self) -> Table {
        match self {
            DemoTopic::Restart => Table::Restart,
            DemoTopic::Type => Table::Type,
            DemoTopic::Results => Table::Results,
        }
    }
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the target image of a suite (reused when its inputs are unchanged).
    Build {
        /// Suite to build; repeat for several (default: bookworm).
        #[arg(long, value_enum)]
        suite: Vec<SuiteArg>,
        /// Build every suite.
        #[arg(long, conflicts_with = "suite")]
        all: bool,
        /// Rebuild even when the inputs are unchanged.
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn tables_named_together_are_measured_once_each_in_order() {
        assert_eq!(tables(&[TableArg::Restart, TableArg::Type]), vec![Table::Restart, Table::Type]);
        assert_eq!(tables(&[TableArg::Type, TableArg::All]), vec![Table::Type, Table::Restart, Table::Results]);
        assert_eq!(tables(&[TableArg::Results, TableArg::Results]), vec![Table::Results]);
    }
}
