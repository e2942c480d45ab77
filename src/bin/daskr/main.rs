//! The `daskr` command: runs, checks and draws graph files (docs/graph-format.md), and lists
//! what plugins declare.
//!
//! Exit status: 0 on success; 1 when the graph could not be read or run (stdout holds
//! `{"error": {...}}`, stderr a sentence); 2 when the command line is wrong (usage on stderr).
//!
//! Plugins loaded by this command take the `daskr_*` functions from it: build.rs links it with
//! `--export-dynamic`, and `C_ABI` below keeps every C ABI function in the binary.

mod cache_cmd;
mod report;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use daskr::graphfile::{self, error_to_json, value_to_json};
use daskr::{
    Error, ErrorKind, GraphFile, Options, Plugin, Profiler, Progress, Scheduler, Value, SCHEDULERS,
};

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
        as JSON. docs/graph-format.md describes the format (docs/graph-format.schema.json is its \
        JSON Schema).\n\n\
        Examples:\n  \
        daskr run examples/pipeline.json\n  \
        daskr run examples/pipeline.json --keys analyze --scheduler sync\n  \
        generate-graph | daskr run -\n  \
        daskr check examples/pipeline.json\n  \
        daskr dot examples/pipeline.json -o pipeline.svg\n  \
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
    /// Check a graph file without running it: read, load its plugins, plan the keys
    #[command(long_about = "Check a graph file without running it.\n\n\
        Reads the file, loads its plugins (every function must be one they declare) and plans \
        the keys (--keys, else the file's \"keys\", else every key of the graph), as `daskr \
        run` would before running anything: a malformed entry, an unknown plugin, function or \
        key, a missing dependency or a cycle is found without running a task.\n\n\
        Exit status: 0 if the graph would run (a one-line summary on stdout); 1 if not (stdout \
        holds the JSON error `daskr run` would print, stderr the same in words); 2 for a wrong \
        command line.")]
    Check(CheckArgs),
    /// Draw a graph file without running it: Graphviz DOT on stdout, or into a file
    #[command(long_about = "Draw a graph file without running it.\n\n\
        Writes the graph, culled to the keys (--keys, else the file's \"keys\", else every key \
        of the graph), as Graphviz DOT: on stdout, or into --output (SVG if its name ends in \
        .svg, which needs Graphviz's `dot`). Tasks are boxes, literals ellipses, and edges run \
        from an entry to what it needs.\n\n\
        Exit status: 0 on success; 1 if the graph could not be read or planned (the JSON error \
        on stdout, as `daskr run` prints it); 2 for a wrong command line.")]
    Dot(DotArgs),
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

/// The graph file and the keys asked for (`run`, `check`, `dot`).
#[derive(Args)]
struct GraphArgs {
    /// The graph file (JSON), or - to read it from stdin. Relative plugin paths in it are
    /// relative to its folder (to the current folder for stdin)
    #[arg(value_name = "GRAPH.json")]
    graph: PathBuf,
    /// A key to compute; give --keys several times for a list of results [default: the
    /// file's "keys"]
    #[arg(long = "keys", value_name = "KEY", action = clap::ArgAction::Append)]
    keys: Vec<String>,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    graph: GraphArgs,
}

#[derive(Args)]
struct DotArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// Write the picture here (SVG if the name ends in .svg) [default: DOT on stdout]
    #[arg(short, long, value_name = "FILE.dot|FILE.svg")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    graph: GraphArgs,
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
    /// Run a task that fails up to N more times before the run fails (as Dask's retries=);
    /// under processes also a task whose worker died, on a fresh worker; under distributed
    /// Dask reruns the failed task's partition
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
        Command::Check(args) => check(args),
        Command::Dot(args) => dot(args),
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

/// Reads the graph file at `path`, or from stdin for `-` (plugin paths then relative to the
/// current folder). A file that cannot be read is an `io` error naming it.
fn read_graph(path: &Path) -> Result<GraphFile, Error> {
    if path.as_os_str() != "-" {
        return graphfile::read(path);
    }
    let mut text = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut text)
        .map_err(|e| Error::io("cannot read the graph from", Path::new("stdin"), &e))?;
    graphfile::parse(&text, Path::new("."))
}

/// The keys asked for: --keys, else the file's "keys", else (if `every` is set) every key of
/// the graph, else an error saying to name some.
fn requested(args: &GraphArgs, file: &GraphFile, every: bool) -> Result<Value, Error> {
    Ok(match args.keys.len() {
        0 => match &file.keys {
            Some(k) => k.clone(),
            None if every => Value::list(file.graph.defined_keys().map(Value::str).collect())
                .expect("a flat list of keys nests one level"),
            None => {
                return Err(Error::new(
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
    })
}

/// Exits with a usage error (status 2) if `args` set an option its scheduler would ignore:
/// the engine's reason for `--retries` and `--timeout`, the registry's readers for the others.
fn refuse_ignored_options(args: &RunArgs) {
    let scheduler = args.scheduler;
    let asked = Options {
        scheduler,
        retries: args.retries,
        task_timeout: args.timeout.map(|_| Duration::ZERO),
        ..Options::default()
    };
    let mut why = asked
        .unsupported(["--retries", "--timeout"])
        .map(|e| e.message);
    let set = [
        ("workers", args.workers.is_some()),
        ("address", args.address.is_some()),
    ];
    for (arg, option) in SCHEDULER_ARGS {
        let is_set = set.iter().any(|&(a, s)| a == arg && s);
        if why.is_none() && is_set && !scheduler.reads(option) {
            let readers: Vec<&str> = SCHEDULERS
                .iter()
                .filter(|s| s.options.contains(&option))
                .map(|s| s.name)
                .collect();
            let only = match readers.as_slice() {
                [one] => format!("only the {one} scheduler reads it"),
                many => format!("only the {} schedulers read it", many.join(" and ")),
            };
            why = Some(format!(
                "--{arg} is set, but the {} scheduler does not read it ({only}); leave --{arg} \
                 unset",
                scheduler.name(),
            ));
        }
    }
    if let Some(message) = why {
        // clap's own usage error: "error: ...", the usage line, status 2.
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
}

fn run(args: RunArgs) -> ExitCode {
    // An option the scheduler would ignore is a wrong command line (exit 2), like any other.
    refuse_ignored_options(&args);
    let scheduler = args.scheduler;
    let started = Instant::now();
    let file = match read_graph(&args.graph.graph) {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    let build = started.elapsed();
    let keys = match requested(&args.graph, &file, false) {
        Ok(k) => k,
        Err(e) => return failed(&e),
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

/// `daskr check`: read and plan, run nothing.
fn check(args: CheckArgs) -> ExitCode {
    let checked = read_graph(&args.graph.graph).and_then(|file| {
        let keys = requested(&args.graph, &file, true)?;
        let checked = file.graph.check(&keys)?;
        Ok((checked, file.graph.len()))
    });
    match checked {
        Ok((c, total)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}: ok: {} entries to run ({} computed) of {} in the graph",
                args.graph.graph.display(),
                c.entries,
                c.computed,
                total
            );
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

/// `daskr dot`: the picture of the culled graph, without running it.
fn dot(args: DotArgs) -> ExitCode {
    let drawn = read_graph(&args.graph.graph).and_then(|file| {
        let keys = requested(&args.graph, &file, true)?;
        let text = daskr::dot::to_dot(&file.graph, &keys, daskr::dot::DotStyle::default())?;
        match &args.output {
            Some(path) => daskr::dot::write(path, &text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                Ok(())
            }
        }
    });
    match drawn {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
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
