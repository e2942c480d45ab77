//! The `distributed` scheduler: a plan cut into partitions (`partition`), each shipped as one
//! Dask task to a Dask cluster, where the worker runs its tasks on daskr's own schedulers
//! (bindings/python: `daskr_dask.worker`, through libdaskr's `daskr_partition_run`). Only
//! partition boundaries cross the network, as encoded values that stay on the workers until a
//! dependent partition or the caller needs them; Dask moves them, places the work and recovers
//! from lost workers.
//!
//! daskr drives the cluster through Python's `distributed.Client`, in a driver process it
//! starts and keeps for reuse (`driver`); a get sends the driver one job (`job`) and reads back
//! partition completions (for callbacks and progress) and then the requested results or an
//! error.

mod driver;
pub(crate) mod job;

use std::time::{Duration, Instant};

use crate::encode;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::options::Options;
use crate::plan::Plan;
use crate::profile::{PhaseSpan, Profile};
use crate::run::{KeyRef, Stats};
use crate::sched::partition::Partitions;
use crate::sched::wire::{self, Reader};
use crate::value::Value;

/// The address of the Dask scheduler: the option, else `DASKR_ADDRESS`.
fn address<'a>(options: &'a Options<'_>) -> Result<std::borrow::Cow<'a, str>> {
    let address = match options.address {
        Some(a) => std::borrow::Cow::Borrowed(a),
        None => match std::env::var("DASKR_ADDRESS") {
            Ok(a) if !a.is_empty() => std::borrow::Cow::Owned(a),
            _ => {
                return Err(Error::invalid_argument(
                    "the distributed scheduler needs the Dask scheduler's address \
                     (tcp://host:port): set the address option (daskr run --address) or the \
                     DASKR_ADDRESS environment variable",
                ))
            }
        },
    };
    if address.is_empty() || address.contains(char::is_whitespace) {
        return Err(Error::invalid_argument(format!(
            "'{address}' is not a Dask scheduler address (expected tcp://host:port)"
        )));
    }
    Ok(address)
}

pub(crate) fn get(
    graph: &Graph,
    plan: &Plan,
    keys: &Value,
    options: &Options<'_>,
    stats: &mut Stats,
) -> Result<Value> {
    let address = address(options)?;
    job::check_plugins_only(graph, plan)?;
    if plan.cache.is_some() && !plan.calls_anything(graph) {
        // Every task's result was found in the result cache: nothing runs, and the request
        // is put together here, without the cluster.
        let here = Options {
            scheduler: crate::options::Scheduler::Sync,
            ..*options
        };
        return crate::sched::local::get(graph, plan, keys, &here, stats, Instant::now());
    }
    if plan.len() == 0 {
        // An empty request needs no cluster.
        if let Some(cb) = options.callbacks {
            cb.start(0);
            cb.finish(false);
        }
        return Ok(plan.shape_result(keys, &mut |_| unreachable!("nothing was requested")));
    }
    let started = Instant::now();
    let mut driver = driver::checkout(&address)?;
    let parts = Partitions::cut(plan, driver.threads.max(1), job::MAX_PARTITION);
    let job = job::encode(graph, plan, &parts)?;
    stats.workers = driver.threads as u32;

    if let Some(cb) = options.callbacks {
        cb.start(plan.computed(graph));
    }
    if let Some(p) = options.progress {
        // Entries the cache spared, and those it found, are done from the start.
        let cache = plan.cache.as_deref();
        let (spared, found) = cache.map_or((0, 0), |c| (c.skipped, c.hits));
        p.begin(plan.len() as u64 + spared);
        p.add_done(spared + found);
    }
    let running = Instant::now();
    let outcome = run_job(&mut driver, graph, plan, &parts, &job, options, stats);
    stats.run_time = running.elapsed();
    if let Some(p) = options.progress {
        p.end();
    }
    let result = match outcome {
        Ok(values) => {
            driver::checkin(driver);
            let mut values = values.into_iter();
            Ok(plan.shape_result(keys, &mut |_| {
                values.next().expect("one result per requested key")
            }))
        }
        Err((e, reusable)) => {
            if reusable {
                driver::checkin(driver);
            }
            Err(e)
        }
    };
    if let Some(profiler) = options.profiler {
        let since = |t: Instant| t.duration_since(started);
        profiler.record(Profile {
            tasks: Vec::new(),
            phases: vec![
                PhaseSpan {
                    name: "connect+cut".into(),
                    start: Duration::ZERO,
                    end: since(running),
                },
                PhaseSpan {
                    name: "run".into(),
                    start: since(running),
                    end: since(running) + stats.run_time,
                },
            ],
            workers: stats.workers,
        });
    }
    if let Some(cb) = options.callbacks {
        cb.finish(result.is_err());
    }
    result
}

/// Sends the job and follows it to the end: the requested outputs' values in request order,
/// or the error and whether the driver is still fit for reuse.
fn run_job(
    driver: &mut driver::Driver,
    graph: &Graph,
    plan: &Plan,
    parts: &Partitions,
    job: &[u8],
    options: &Options<'_>,
    stats: &mut Stats,
) -> std::result::Result<Vec<Value>, (Error, bool)> {
    // 'J': the retries (passed to Dask's own `retries=`: a failed partition runs again), then
    // the job.
    let mut frame = Vec::with_capacity(job.len() + 5);
    crate::sched::wire::put_varint(&mut frame, u64::from(options.retries));
    frame.extend_from_slice(job);
    driver.send(driver::JOB, &frame).map_err(|e| (e, false))?;
    let mut cancel_sent = false;
    loop {
        if !cancel_sent && options.cancel.is_some_and(|c| c.is_cancelled()) {
            driver.send(driver::CANCEL, &[]).map_err(|e| (e, false))?;
            cancel_sent = true;
        }
        let Some((tag, payload)) = driver
            .recv(Duration::from_millis(20))
            .map_err(|e| (e, false))?
        else {
            continue;
        };
        let mut r = Reader::new(&payload);
        let malformed = |e: Error| (e, false);
        match tag {
            driver::DONE => {
                let i = r.varint().map_err(malformed)? as usize;
                if i >= parts.len() {
                    return Err((
                        Error::invalid_argument(format!("the driver reported partition {i}")),
                        false,
                    ));
                }
                partition_done(graph, plan, parts, i, options, stats);
            }
            driver::RESULTS => {
                let n = r.count().map_err(malformed)?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = r.varint().map_err(malformed)?;
                    let bytes = r.take(len).map_err(malformed)?;
                    values.push(encode::decode(bytes).map_err(malformed)?);
                }
                if values.len() != plan.request_ids.len() {
                    return Err((
                        Error::invalid_argument(format!(
                            "the driver sent {} results for {} requested keys",
                            values.len(),
                            plan.request_ids.len()
                        )),
                        false,
                    ));
                }
                return Ok(values);
            }
            driver::ERROR => {
                return Err((wire::read_error(&mut r).map_err(malformed)?, true));
            }
            other => {
                return Err((
                    Error::invalid_argument(format!(
                        "the Dask driver sent an unknown frame {other:#04x}"
                    )),
                    false,
                ))
            }
        }
    }
}

/// Reports partition `i` as run: its entries to the callbacks (pretask and posttask for each
/// computed entry, in priority order, as worker 0) and the progress counter.
fn partition_done(
    graph: &Graph,
    plan: &Plan,
    parts: &Partitions,
    i: usize,
    options: &Options<'_>,
    stats: &mut Stats,
) {
    let range = parts.range(i);
    // Results found in the result cache did not run (progress counted them at the start).
    let ran = range.clone().filter(|&p| !plan.is_found(p)).count() as u64;
    stats.entries_run += ran;
    if let Some(p) = options.progress {
        p.add_done(ran);
    }
    if let Some(cb) = options.callbacks {
        for p in range {
            let id = plan.order[p as usize];
            if graph.is_literal(id) || plan.is_found(p) {
                continue;
            }
            let name = graph.key_c(id);
            let key = KeyRef::from_c(&name);
            cb.pretask(key, 0);
            cb.posttask(key, true, 0);
        }
    }
}
