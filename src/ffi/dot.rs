//! Pictures of a graph (Graphviz DOT or SVG), coloured by a recorded profile.

use std::ffi::c_char;

use super::graph::{daskr_graph_t, hold};
use super::profile::daskr_profile_t;
use super::value::{borrow, daskr_value_t};
use super::{arg_str, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;

/// Draws the part of `graph` that `keys` (a key or a nested list of keys, borrowed) need
/// to `path`: Graphviz DOT, or SVG when `path` ends in ".svg" (rendered by Graphviz's `dot`;
/// a clear error if it is not installed). Tasks are boxes labelled with key and function,
/// edges run from an input to its consumer, requested keys have a double border. If
/// `profile` is not NULL, entries are coloured by how long they ran in its last get; if
/// `failed_key` is not NULL, that entry is drawn in red.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_write_dot(
    graph: *const daskr_graph_t,
    keys: *const daskr_value_t,
    profile: *const daskr_profile_t,
    failed_key: *const c_char,
    path: *const c_char,
) -> *mut daskr_error_t {
    status(|| {
        let held = hold(graph)?;
        let g = held.graph();
        let keys = borrow(keys).ok_or_else(|| Error::invalid_argument("keys is NULL"))?;
        let path = arg_str(path, "path")?;
        let failed_key = if failed_key.is_null() {
            None
        } else {
            Some(arg_str(failed_key, "failed_key")?)
        };
        let graph = g.read();
        let dot = match profile.as_ref() {
            Some(p) => p.profiler.with(|_, prof| {
                crate::dot::to_dot(
                    &graph,
                    keys,
                    crate::dot::DotStyle {
                        profile: Some(prof),
                        failed_key,
                    },
                )
            })?,
            None => crate::dot::to_dot(
                &graph,
                keys,
                crate::dot::DotStyle {
                    profile: None,
                    failed_key,
                },
            )?,
        };
        crate::dot::write(std::path::Path::new(path), &dot)
    })
}
