//! Running a partition message (docs/wire-format.md) in this process: how a Dask worker runs
//! its share of a daskr graph (bindings/python calls this through ctypes).

use super::graph::{daskr_graph_t, live};
use super::value::{borrow, boxed, daskr_value_t, raw_bytes};
use super::{put, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::options::default_workers;
use crate::value::Value;

/// Runs the partition message of `len` bytes at `message` — made by daskr's `distributed`
/// scheduler — on `num_workers` threads of this process (0: the available cores). Its inputs
/// are `n_inputs` encoded values (`daskr_value_encode`'s format), `inputs[i]` of
/// `input_lens[i]` bytes, in the order the message lists them. Plugins the message names are
/// loaded once per process, by path, or by file name from the folders in `DASKR_PLUGIN_PATH`.
/// On success `*out` (owned by the caller) is a bytes value: a varint count of outputs, then
/// each output as a varint length and an encoded value, in the message's output order. On
/// failure — a task failed (`DASKR_ERROR_TASK_FAILED`, naming its key), a plugin is missing,
/// the message or an input is malformed — `*out` is left alone.
#[no_mangle]
pub unsafe extern "C" fn daskr_partition_run(
    message: *const u8,
    len: usize,
    inputs: *const *const u8,
    input_lens: *const usize,
    n_inputs: usize,
    num_workers: u32,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let message = raw_bytes(message, len, "message")?;
        if n_inputs > 0 && (inputs.is_null() || input_lens.is_null()) {
            return Err(Error::invalid_argument(format!(
                "inputs or input_lens is NULL but n_inputs is {n_inputs}"
            )));
        }
        let mut blobs = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            blobs.push(raw_bytes(*inputs.add(i), *input_lens.add(i), "an input's")?);
        }
        let workers = match num_workers {
            0 => default_workers(),
            n => n as usize,
        };
        let bytes = crate::sched::wire::run_message(message, &blobs, workers)?;
        put(out, boxed(Value::bytes(&bytes)), "out")
    })
}

/// Encodes the job that runs `keys` (a string value naming one key, or a nested list of them)
/// of `graph` on a Dask cluster of `cluster_threads` worker threads in all (0 counts as 1):
/// the plan cut into partitions, each partition's message and inputs, and the requested
/// outputs in request order (docs/wire-format.md, "Jobs"). This is what the `distributed`
/// scheduler hands its Dask driver; the Python package `daskr_dask` (bindings/python) calls it
/// to run a graph on a Client of its own. On success `*out` (owned by the caller) is a bytes
/// value. Fails like a get's planning does (missing keys, cycles), and with
/// `DASKR_ERROR_INVALID_ARGUMENT` naming the key of a task whose function is not a plugin
/// symbol (it cannot leave this process).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_encode_job(
    graph: *const daskr_graph_t,
    keys: *const daskr_value_t,
    cluster_threads: u32,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let g = live(graph)?;
        let keys = borrow(keys).ok_or_else(|| Error::invalid_argument("keys is NULL"))?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let graph = g.read();
        let job = crate::sched::distributed::job::encode_for(&graph, keys, cluster_threads)?;
        put(out, boxed(Value::bytes(&job)), "out")
    })
}
