//! Graph files over the C ABI: JSON text or a file in, a graph out; a graph back to JSON.

use std::ffi::c_char;
use std::path::Path;

use super::graph::{daskr_graph_t, live};
use super::value::{borrow, boxed, daskr_value_t};
use super::{arg_str, put, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::graphfile::{self, GraphFile};
use crate::value::Value;

pub use crate::abi::DASKR_GRAPH_FILE_MAX_DEPTH;

unsafe fn hand_over(
    file: GraphFile,
    out: *mut *mut daskr_graph_t,
    out_keys: *mut *mut daskr_value_t,
) -> Result<(), Error> {
    if !out_keys.is_null() {
        out_keys.write(file.keys.map_or(std::ptr::null_mut(), boxed));
    }
    put(out, daskr_graph_t::from_graph(file.graph), "out")
}

/// Builds a graph from the graph-file JSON in `json` (`len` bytes of UTF-8; see
/// docs/graph-format.md). Relative plugin paths are relative to `base_dir` (NULL: the current
/// directory). On success `*out` is a new graph owned by the caller (free it with
/// `daskr_graph_free`) and, if `out_keys` is not NULL, `*out_keys` is the file's default
/// `keys` (owned by the caller) or NULL if it has none. The plugins the graph uses stay loaded
/// with it. Fails with `DASKR_ERROR_INVALID_GRAPH` naming the key and the place in it
/// (`key 'z': args[1].kwargs.scale: ...`), or `DASKR_ERROR_PLUGIN` for a plugin that cannot be
/// loaded or an unknown alias or symbol. A graph file nests at most
/// `DASKR_GRAPH_FILE_MAX_DEPTH` JSON levels.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_from_json(
    json: *const c_char,
    len: usize,
    base_dir: *const c_char,
    out: *mut *mut daskr_graph_t,
    out_keys: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        if json.is_null() && len > 0 {
            return Err(Error::invalid_argument(
                "json is NULL but its length is not 0",
            ));
        }
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let text = if len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(json.cast::<u8>(), len)
        };
        let base = if base_dir.is_null() {
            "."
        } else {
            arg_str(base_dir, "base_dir")?
        };
        hand_over(graphfile::parse(text, Path::new(base))?, out, out_keys)
    })
}

/// `daskr_graph_from_json` on the file at `path`; relative plugin paths are relative to the
/// file's folder.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_from_file(
    path: *const c_char,
    out: *mut *mut daskr_graph_t,
    out_keys: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let path = arg_str(path, "path")?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        hand_over(graphfile::read(path)?, out, out_keys)
    })
}

/// Writes `graph` as graph-file JSON into `*out`, a new string value owned by the caller.
/// `keys` (borrowed; NULL for none) becomes the file's default `keys`. Plugin paths inside
/// `base_dir` are written relative to it (NULL: all absolute). Fails with
/// `DASKR_ERROR_INVALID_GRAPH` naming the key if an entry uses a function that does not come
/// from a plugin, holds a pointer value or a NaN/infinite float, or nests deeper than a graph
/// file may. Reading the text back gives the same graph.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_to_json(
    graph: *const daskr_graph_t,
    keys: *const daskr_value_t,
    base_dir: *const c_char,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let g = live(graph)?;
        let base = if base_dir.is_null() {
            None
        } else {
            Some(Path::new(arg_str(base_dir, "base_dir")?))
        };
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let text = graphfile::write(&g.read(), borrow(keys), base)?;
        put(out, boxed(Value::str(&text)), "out")
    })
}

/// A value as JSON text, the way the `daskr` command prints results (bytes as
/// `{"bytes": base64}`, a pointer as `{"pointer": tag}`, NaN and infinities as null): `*out`
/// is a new string value owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_to_json(
    value: *const daskr_value_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let v = borrow(value).ok_or_else(|| Error::invalid_argument("value is NULL"))?;
        let text = graphfile::value_to_json(v).to_string();
        put(out, boxed(Value::str(&text)), "out")
    })
}
