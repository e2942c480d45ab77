//! Plugins over the C ABI: what a plugin declares (`daskr_plugin_info_t`), and opening one to
//! take task functions from it.

use std::ffi::{c_char, CString};

use super::graph::daskr_func_t;
use super::{arg_str, guard, put, status, OnPanic};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::plugin::Plugin;

pub use crate::abi::{daskr_plugin_info_t, daskr_plugin_task_t};

/// An open plugin. Immutable: may be used from any thread. Functions taken from it (and the
/// graphs using them) keep the library loaded, so the handle may be freed at any time. daskr
/// never unloads a plugin library (pointer values it made may outlive every graph).
pub struct daskr_plugin_t {
    plugin: Plugin,
    path: CString,
    _strings: Vec<CString>,
    _tasks: Vec<daskr_plugin_task_t>,
    info: daskr_plugin_info_t,
}

impl OnPanic for *mut daskr_plugin_t {
    fn on_panic(_: String) -> Self {
        std::ptr::null_mut()
    }
}

impl OnPanic for *const daskr_plugin_info_t {
    fn on_panic(_: String) -> Self {
        std::ptr::null()
    }
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).expect("NULs were replaced")
}

fn handle(plugin: Plugin) -> daskr_plugin_t {
    let declared = plugin.info();
    let mut strings = vec![c_string(&declared.name), c_string(&declared.version)];
    for t in &declared.tasks {
        strings.push(c_string(&t.symbol));
        strings.push(c_string(&t.doc));
    }
    // The CStrings' buffers do not move when the Vec holding them does.
    let tasks: Vec<daskr_plugin_task_t> = strings[2..]
        .chunks(2)
        .map(|pair| daskr_plugin_task_t {
            symbol: pair[0].as_ptr(),
            doc: pair[1].as_ptr(),
        })
        .collect();
    let info = daskr_plugin_info_t {
        abi_version: declared.abi_version,
        name: strings[0].as_ptr(),
        version: strings[1].as_ptr(),
        tasks: tasks.as_ptr(),
        ntasks: tasks.len(),
    };
    daskr_plugin_t {
        path: c_string(&plugin.path().to_string_lossy()),
        plugin,
        _strings: strings,
        _tasks: tasks,
        info,
    }
}

/// Opens the plugin library at `path` (a relative path is relative to the current directory;
/// no library search path is used), checks its ABI version and declaration, and resolves its
/// tasks. On success `*out` is owned by the caller: free it with `daskr_plugin_free`. Fails
/// with `DASKR_ERROR_PLUGIN`, naming the path, when the file is missing, is not a shared
/// library, cannot resolve the `daskr_*` functions in this process, does not export
/// `daskr_plugin_info`, was built for another ABI version, or declares a task it does not
/// export.
#[no_mangle]
pub unsafe extern "C" fn daskr_plugin_open(
    path: *const c_char,
    out: *mut *mut daskr_plugin_t,
) -> *mut daskr_error_t {
    status(|| {
        let path = arg_str(path, "path")?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let plugin = Plugin::open(path)?;
        put(out, Box::into_raw(Box::new(handle(plugin))), "out")
    })
}

/// Closes the caller's handle. Functions taken from the plugin stay valid. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_plugin_free(plugin: *mut daskr_plugin_t) {
    guard(|| {
        if !plugin.is_null() {
            drop(Box::from_raw(plugin));
        }
    })
}

/// The declared task `symbol` as a task function for `daskr_graph_add_task` /
/// `daskr_comp_task`, named `<plugin name>:<symbol>` in errors and traces. On success `*out`
/// is owned by the caller: free it with `daskr_func_free` (graphs keep their own reference).
/// Fails with `DASKR_ERROR_PLUGIN`, naming the plugin's path and the symbol, if the plugin does
/// not declare `symbol`.
#[no_mangle]
pub unsafe extern "C" fn daskr_plugin_func(
    plugin: *const daskr_plugin_t,
    symbol: *const c_char,
    out: *mut *mut daskr_func_t,
) -> *mut daskr_error_t {
    status(|| {
        let plugin = plugin
            .as_ref()
            .ok_or_else(|| Error::invalid_argument("plugin is NULL"))?;
        let symbol = arg_str(symbol, "symbol")?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        let func = plugin.plugin.func(symbol)?;
        put(out, Box::into_raw(Box::new(daskr_func_t(func))), "out")
    })
}

/// What the plugin declares (a copy owned by the handle, with `abi_version` equal to
/// `DASKR_ABI_VERSION`; descriptions the plugin left NULL read as ""). Borrowed from `plugin`:
/// valid until it is freed. NULL if `plugin` is NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_plugin_get_info(
    plugin: *const daskr_plugin_t,
) -> *const daskr_plugin_info_t {
    guard(|| match plugin.as_ref() {
        Some(p) => &p.info as *const daskr_plugin_info_t,
        None => std::ptr::null(),
    })
}

/// The plugin library's absolute path. Borrowed from `plugin`: valid until it is freed. NULL
/// if `plugin` is NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_plugin_path(plugin: *const daskr_plugin_t) -> *const c_char {
    guard(|| match plugin.as_ref() {
        Some(p) => p.path.as_ptr(),
        None => std::ptr::null(),
    })
}
