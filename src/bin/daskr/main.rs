//! The `daskr` command: runs graph files (docs/graph-format.md) and lists what
//! plugins declare.
//!
//! Exit status: 0 on success; 1 when the graph could not be read or run (stdout holds
//! `{"error": {...}}`, stderr a sentence); 2 when the command line is wrong (usage on stderr).
//!
//! Plugins loaded by this command take the `daskr_*` functions from it: build.rs links it with
//! `--export-dynamic`, and `C_ABI` below keeps every C ABI function in the binary.

mod cache_cmd;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use daskr::graphfile::{self, error_to_json, value_to_json};
use daskr::{Error, ErrorKind, Options, Plugin, Profiler, Progress, Scheduler, Value, SCHEDULERS};

// Every function of the C ABI (include/daskr.h), listed by build.rs. Referring to them from a
// `#[used]` static makes the linker keep them, and the dynamic list daskr.dynlist puts them
// (and nothing else) in the dynamic symbol table, where plugins find them.
include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

#[derive(Parser)]
#[command(
    name = "daskr",
    version,
    about = "Run Dask-style task graphs natively: graph files of plugin tasks",
    long_about = "Run Dask-style task graphs natively.\n\n\
        A graph file (JSON) maps keys to computations: literals, references to other keys, \
        lists, and tasks that call functions in plugin libraries. `daskr run` computes the \
        keys asked for, running only the tasks they need, in parallel, and prints the results \
        as JSON. The README's section \"Graph files, plugins and the daskr command\" describes \
        the format.\n\n\
        Examples:\n  \
        daskr run examples/pipeline.json\n  \
        daskr run examples/pipeline.json --keys analyze --scheduler sync\n  \
        daskr plugins target/plugins/libexample.so"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the run arguments' variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run a graph file and print the results as JSON on stdout
    #[command(
        long_about = "Run a graph file and print the results as JSON on stdout.\n\n\
        The output has the shape of the keys asked for: one --keys gives its value, several \
        give a list, none gives the file's \"keys\". Values print as JSON; bytes as \
        {\"bytes\": \"<base64>\"}, a pointer as {\"pointer\": \"<type tag>\"}.\n\n\
        Exit status: 0 on success; 1 if the graph could not be read or a task failed (stdout \
        then holds {\"error\": {\"kind\", \"key\", \"keys\", \"message\"}} and stderr says the \
        same in words); 2 for a wrong command line."
    )]
    Run(RunArgs),
    /// List the tasks a plugin library declares
    Plugins(PluginsArgs),
    /// Run as a worker process of the processes scheduler (started by daskr itself)
    #[command(long_about = "Run as a worker process of the processes scheduler.\n\n\
        The processes scheduler starts `daskr worker` when it cannot fork its caller (a Go \
        program, or DASKR_PROCESSES_START=exec): the worker reads partitions of a graph \
        (plugin tasks, loaded by path) from the scheduler, runs them and answers, until the \
        scheduler closes the connection. It speaks daskr's worker protocol \
        (docs/wire-format.md) on --fd, or on stdin and stdout; it is not meant to be run by \
        hand.")]
    Worker(WorkerArgs),
    /// Inspect or empty a result cache directory (`daskr run --cache DIR`).
    Cache(cache_cmd::CacheArgs),
}

#[derive(Args)]
struct WorkerArgs {
    /// A connected socket to speak on [default: read stdin, write stdout]
    #[arg(long, value_name = "FD")]
    fd: Option<i32>,
    /// A memory file shared with the scheduler, where the worker notes the task it is in
    #[arg(long, value_name = "FD")]
    page_fd: Option<i32>,
    /// The scheduler's process: the worker is killed when it ends, even in the middle of a task
    #[arg(long, value_name = "PID")]
    parent_pid: Option<i32>,
}

#[derive(Args)]
struct RunArgs {
    /// The graph file (JSON). Relative plugin paths in it are relative to its folder
    #[arg(value_name = "GRAPH.json")]
    graph: PathBuf,
    /// A key to compute; give --keys several times for a list of results [default: the
    /// file's "keys"]
    #[arg(long = "keys", value_name = "KEY", action = clap::ArgAction::Append)]
    keys: Vec<String>,
    /// Which scheduler runs the tasks
    #[arg(long, value_parser = scheduler_parser(), default_value = "threads")]
    scheduler: Scheduler,
    // The options below are read by some schedulers only: `with_scheduler_notes` adds which
    // to their help, from the engine's registry.
    /// Threads (this one included), or worker processes [default: the available cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    workers: Option<u32>,
    /// The Dask scheduler to run on [default: $DASKR_ADDRESS]
    #[arg(long, value_name = "tcp://HOST:PORT")]
    address: Option<String>,
    /// Run a task whose worker process died up to N more times on a fresh worker
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Kill the worker of a task running longer than SECONDS, and fail the task
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<f64>,
    /// Draw progress on stderr: a bar redrawn in place on a terminal, otherwise a plain line
    /// about once a second
    #[arg(long)]
    progress: bool,
    /// Write a Chrome trace / Perfetto JSON of the run: one slice per entry on the worker that
    /// ran it, and the build, plan and run phases
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Write a picture of the graph (culled to the keys): Graphviz DOT, or SVG if the name ends
    /// in .svg (needs Graphviz's `dot`). Entries are coloured by run time, a failed one red
    #[arg(long, value_name = "FILE.dot|FILE.svg")]
    dot: Option<PathBuf>,
    /// Print run statistics on stderr after the run: entries run, times, per-worker busy
    /// share, peak results held, the failing key
    #[arg(long)]
    stats: bool,
    /// Write the statistics as JSON, with the order in which entries started
    #[arg(long, value_name = "FILE.json")]
    stats_json: Option<PathBuf>,
    /// Keep task results in DIR and reuse them: a rerun runs only what changed or did not
    /// finish (docs/cache.md)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// With --cache: remove least recently used entries after the run until DIR holds at
    /// most this many bytes
    #[arg(long, value_name = "BYTES", requires = "cache")]
    cache_max_bytes: Option<u64>,
    /// With --cache: results whose encoding is larger than this are not stored
    #[arg(long, value_name = "BYTES", requires = "cache")]
    cache_max_entry_bytes: Option<u64>,
}

#[derive(Args)]
struct PluginsArgs {
    /// The plugin library (a shared object exporting daskr_plugin_info)
    path: PathBuf,
    /// Print the declaration as JSON
    #[arg(long)]
    json: bool,
}

/// `--scheduler`: the names the engine's registry lists, each with its summary.
fn scheduler_parser() -> impl clap::builder::TypedValueParser<Value = Scheduler> {
    PossibleValuesParser::new(
        SCHEDULERS
            .iter()
            .map(|s| PossibleValue::new(s.name).help(s.summary)),
    )
    .map(|name| Scheduler::from_name(&name).expect("a name the registry lists"))
}

/// `daskr run`'s options that only some schedulers read, with the `Options` field each sets
/// (as the registry names them).
const SCHEDULER_ARGS: [(&str, &str); 4] = [
    ("workers", "num_workers"),
    ("address", "address"),
    ("retries", "retries"),
    ("timeout", "task_timeout"),
];

/// The command line, each scheduler-specific option's help saying which schedulers read it.
fn with_scheduler_notes(command: clap::Command) -> clap::Command {
    command.mut_subcommand("run", |mut run| {
        for (arg, option) in SCHEDULER_ARGS {
            let readers: Vec<&str> = SCHEDULERS
                .iter()
                .filter(|s| s.options.contains(&option))
                .map(|s| s.name)
                .collect();
            run = run.mut_arg(arg, |a| {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                a.help(format!("{help} (--scheduler {})", readers.join(" or ")))
            });
        }
        run
    })
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

fn main() -> ExitCode {
    let matches = with_scheduler_notes(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Run(args) => run(args),
        Command::Plugins(args) => plugins(args),
        Command::Cache(args) => cache_cmd::main(args),
        Command::Worker(args) => {
            if let Some(parent) = args.parent_pid {
                if !daskr::sched::processes::end_with_parent(parent) {
                    return ExitCode::from(7); // the scheduler is gone already
                }
            }
            let (input, output) = args.fd.map_or((0, 1), |fd| (fd, fd));
            let status = daskr::sched::processes::serve_worker(input, output, args.page_fd);
            ExitCode::from(status.clamp(0, 255) as u8)
        }
    }
}

/// Reports a failure: the JSON error on stdout, a sentence on stderr; exit status 1.
fn failed(e: &Error) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", error_to_json(e));
    let _ = out.flush();
    eprintln!("daskr: {} ({})", e.message, e.kind.name());
    ExitCode::from(1)
}

fn run(args: RunArgs) -> ExitCode {
    let scheduler = args.scheduler;
    // An option the scheduler would ignore is a wrong command line (exit 2), like any other.
    let asked = Options {
        scheduler,
        retries: args.retries,
        task_timeout: args.timeout.map(|_| Duration::ZERO),
        ..Options::default()
    };
    if let Some(e) = asked.unsupported(["--retries", "--timeout"]) {
        // clap's own usage error: "error: ...", the usage line, status 2.
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e.message)
            .exit();
    }
    let started = Instant::now();
    let file = match graphfile::read(&args.graph) {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    let build = started.elapsed();
    let keys = match args.keys.len() {
        0 => match file.keys {
            Some(k) => k,
            None => {
                return failed(&Error::new(
                    ErrorKind::MissingKey,
                    format!(
                        "no keys to compute: '{}' has no \"keys\"; name some with --keys",
                        args.graph.display()
                    ),
                ))
            }
        },
        1 => Value::str(&args.keys[0]),
        _ => Value::list(args.keys.iter().map(|k| Value::str(k)).collect())
            .expect("a flat list of keys nests one level"),
    };
    // Diagnostics that need each entry's timing attach a profiler (two clock reads a task).
    let cache = match args
        .cache
        .as_deref()
        .map(|d| cache_cmd::open(d, (args.cache_max_bytes, args.cache_max_entry_bytes)))
    {
        Some(Err(e)) => return failed(&e),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let profiler = Profiler::new();
    let profiling =
        args.trace.is_some() || args.dot.is_some() || args.stats || args.stats_json.is_some();
    let progress = Progress::new();
    let options = Options {
        scheduler,
        num_workers: args.workers.unwrap_or(0) as usize,
        profiler: profiling.then_some(&profiler),
        progress: args.progress.then_some(&progress),
        measure_memory: args.stats || args.stats_json.is_some(),
        retries: args.retries,
        task_timeout: args
            .timeout
            .map(|t| Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)),
        address: args.address.as_deref(),
        cache: cache.as_ref(),
        ..Options::default()
    };
    let (result, stats) = report::with_progress(args.progress, &progress, || {
        file.graph.get_with_stats(&keys, &options)
    });
    let profile = report::with_build_phase(profiler.profile(), build);
    let diagnostics = write_diagnostics(
        &args,
        &file.graph,
        &keys,
        &profile,
        &stats,
        build,
        result.as_ref().err(),
    );
    let code = match &result {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", value_to_json(value));
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    };
    // Results are dropped before the graph (and the plugins it keeps loaded).
    drop(result);
    match diagnostics {
        Err(e) if code == ExitCode::SUCCESS => failed(&e),
        Err(e) => {
            eprintln!("daskr: {} ({})", e.message, e.kind.name());
            code
        }
        Ok(()) => code,
    }
}

/// Writes what --trace, --dot, --stats and --stats-json ask for; the first failure is returned
/// after trying them all.
fn write_diagnostics(
    args: &RunArgs,
    graph: &daskr::Graph,
    keys: &Value,
    profile: &daskr::Profile,
    stats: &daskr::Stats,
    build: std::time::Duration,
    error: Option<&Error>,
) -> Result<(), Error> {
    let mut first_error = None;
    let mut note = |r: Result<(), Error>| {
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    };
    if let Some(path) = &args.trace {
        note(report::write_file(path, &profile.chrome_trace_json()));
    }
    if let Some(path) = &args.dot {
        let failed_key = error
            .filter(|e| e.kind == ErrorKind::TaskFailed)
            .and_then(|e| e.key.as_deref());
        let style = daskr::dot::DotStyle {
            profile: Some(profile),
            failed_key,
        };
        note(daskr::dot::to_dot(graph, keys, style).and_then(|dot| daskr::dot::write(path, &dot)));
    }
    let report = report::Report {
        stats,
        profile,
        build,
        graph_bytes: graph.heap_bytes(),
        error,
    };
    if args.stats {
        eprint!("{}", report.text());
    }
    if let Some(path) = &args.stats_json {
        note(report::write_file(path, &format!("{:#}\n", report.json())));
    }
    first_error.map_or(Ok(()), Err)
}

fn plugins(args: PluginsArgs) -> ExitCode {
    let plugin = match Plugin::open(&args.path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("daskr: {} ({})", e.message, e.kind.name());
            return ExitCode::from(1);
        }
    };
    let info = plugin.info();
    let mut out = std::io::stdout().lock();
    if args.json {
        let tasks: Vec<serde_json::Value> = info
            .tasks
            .iter()
            .map(|t| serde_json::json!({"symbol": t.symbol, "doc": t.doc}))
            .collect();
        let doc = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "abi_version": info.abi_version,
            "path": plugin.path().to_string_lossy(),
            "tasks": tasks,
        });
        let _ = writeln!(out, "{doc:#}");
    } else {
        let _ = writeln!(
            out,
            "{} {} (daskr ABI {})\n{}\n{} tasks:",
            info.name,
            info.version,
            info.abi_version,
            plugin.path().display(),
            info.tasks.len()
        );
        let width = info.tasks.iter().map(|t| t.symbol.len()).max().unwrap_or(0);
        for t in &info.tasks {
            let _ = writeln!(out, "  {:width$}  {}", t.symbol, t.doc);
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
