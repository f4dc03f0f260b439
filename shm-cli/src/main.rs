//! `shm`: see, change and clean up the shared-memory segments made with `shm-core`.
//!
//! Every segment carries the layout of what it holds, so this command shows any segment's fields
//! and values without the program's source. Exit status: 0 when all went well, 1 on an error
//! (one line on stderr per error, starting with `shm:`; notes such as `set`'s "waiting for its
//! lock" are such lines too), 2 on a usage error.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod clean;
mod export;
mod json;
mod ls;
mod out;
mod set;
mod show;
mod table;
mod units;
mod watch;

/// See, change and clean up shm-core shared-memory segments (/dev/shm).
#[derive(Parser, Debug)]
#[command(name = "shm", version, propagate_version = true)]
#[command(
    after_help = "Field paths name one value: `load`, `hist[3]`, `inner.x`, `[2].count` \
    (element 2 of an array segment), `.` (a single-value segment)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List segments: type, size in /dev/shm and payload size, element count, creator and
    /// whether it lives, kept, age.
    Ls {
        /// Also list objects that are not shm-core segments, or that this user may not open.
        #[arg(long)]
        all: bool,
        /// Print JSON: one object per entry.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's layout (fields, type codes, offsets) and a consistent snapshot of it.
    Inspect {
        /// The segment's name, as given to `create` (without `/dev/shm/`).
        name: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Show at most this many elements of an array segment (0: all).
        #[arg(long, value_name = "N", default_value_t = show::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Show a segment's values again and again, with the rate of change of integer fields.
    Watch {
        /// The segment's name.
        name: String,
        /// Time between refreshes: `500ms`, `2s`, `1.5s`, `1m`.
        #[arg(long, value_name = "TIME", default_value = "500ms", value_parser = units::parse_interval)]
        interval: Duration,
        /// Stop after this many refreshes (default: until Ctrl-C, or the segment is removed).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Show at most this many elements of an array segment (0: all).
        #[arg(long, value_name = "N", default_value_t = show::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Write one field, parsed by its type code, under the segment's lock (as `update` does).
    ///
    /// While another process holds the lock, waits: after a second it says which process holds
    /// it and whether that one is alive; after --timeout it gives up (exit status 1).
    Set {
        /// The segment's name.
        name: String,
        /// The field: `load`, `hist[3]`, `inner.x`, `[2].count`, or `.` for a single value.
        field: String,
        /// The value: `42`, `-1`, `0x2a`, `0.5`, `1e-9`, `inf`, `true`, `x`; an enum's variant
        /// by name (`Busy`); text as it is (`10.0.0.7`), at most the field's capacity in bytes.
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// How long to wait for the segment's lock: `200ms`, `5s`, `1m`.
        #[arg(long, value_name = "TIME", default_value = "5s", value_parser = units::parse_interval)]
        timeout: Duration,
    },
    /// Remove segments. Objects that are not shm-core segments, or are another user's, are
    /// refused; so is a segment whose creator is alive, unless --force.
    Rm {
        /// The segments' names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Also remove segments whose creator is alive (it keeps its mapping; new opens fail).
        #[arg(long)]
        force: bool,
    },
    /// Remove stale segments: creator dead (by pid and start time) and not kept, or never
    /// made ready.
    Gc {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Only consider segments whose name starts with this (not empty: leave it out to
        /// consider every segment).
        #[arg(long, value_name = "PREFIX", value_parser = clean::parse_prefix)]
        prefix: Option<String>,
    },
    /// Serve segments as Prometheus metrics: `GET /metrics` on ADDR answers in the Prometheus
    /// text format, or OpenMetrics if the scraper asks for it. Runs until killed.
    Export {
        /// Address to listen on: `127.0.0.1:9095`, `[::1]:9095`, `0.0.0.0:9095`. Port 0 picks a
        /// free port; the address is printed on stdout.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// The segments to export (default: every shm-core segment).
        #[arg(conflicts_with = "prefix")]
        names: Vec<String>,
        /// Export every object whose name starts with this.
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Skip (and count as an error) a segment that would give more samples than this.
        #[arg(long, value_name = "N", default_value_t = export::DEFAULT_MAX_SAMPLES)]
        max_samples: u64,
    },
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Ls { all, json } => ls::run(all, json),
        Command::Inspect { name, json, limit } => show::run(&name, json, limit),
        Command::Watch {
            name,
            interval,
            count,
            limit,
        } => watch::run(&name, interval, count, limit),
        Command::Set {
            name,
            field,
            value,
            timeout,
        } => set::run(&name, &field, &value, timeout),
        Command::Rm { names, force } => clean::rm(&names, force),
        Command::Gc { dry_run, prefix } => clean::gc(dry_run, prefix.as_deref()),
        Command::Export {
            listen,
            names,
            prefix,
            max_samples,
        } => {
            let selection = match prefix {
                Some(p) => export::Selection::Prefix(p),
                None if names.is_empty() => export::Selection::All,
                None => export::Selection::Names(names),
            };
            export::run(&listen, selection, max_samples)
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            out::error(&message);
            ExitCode::FAILURE
        }
    }
}
