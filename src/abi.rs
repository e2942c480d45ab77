//! The C declarations the engine itself needs: the ABI version plugins are checked against,
//! what a plugin declares, the call context a task function receives, the raw computation
//! (`comp` owns its encoding) and the graph file's depth limit. `ffi` re-exports them where the C API presents them; the engine never imports
//! `ffi` (tests/layers.rs holds it to that), so the C layer can depend on the engine and not
//! the other way round.

#![allow(non_camel_case_types)]

use std::ffi::c_char;

/// The version of the C ABI this library implements, and the library's SONAME number
/// (`libdaskr.so.<this>`). Plugins record the version they were built for; a mismatch is
/// refused. 2: task handles (`daskr_task_t`) are 64 bits, carrying their graph.
pub const DASKR_ABI_VERSION: u32 = 2;

/// The major version of the library this header belongs to (for `#if`; `daskr_version()`
/// gives the version of the library a program runs with).
pub const DASKR_VERSION_MAJOR: u32 = 0;
/// The minor version of the library this header belongs to.
pub const DASKR_VERSION_MINOR: u32 = 1;
/// The patch version of the library this header belongs to.
pub const DASKR_VERSION_PATCH: u32 = 0;

// cbindgen copies literals only, so the numbers above are written out; these fail the build
// when Cargo.toml's version moves without them.
const _: () = assert!(DASKR_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(DASKR_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(DASKR_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")));

const fn parse_u32(digits: &str) -> u32 {
    let b = digits.as_bytes();
    let mut n = 0u32;
    let mut i = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// How deeply a graph file may nest, in JSON levels (arrays and objects), the document's own
/// object and the `graph` object included (serde_json's recursion limit): a computation nests
/// at most 125 levels (an inline task takes two, its object and its `args` array). Deeper
/// input is an `invalid_graph` error naming the key.
pub const DASKR_GRAPH_FILE_MAX_DEPTH: u32 = 127;

/// What a running task sees: its arguments, its key, and where its result goes.
///
/// The task ABI: a task function is `void fn(daskr_call_t *call, void *user_data)`. It reads
/// its positional arguments (`daskr_call_arg`), keyword arguments (`daskr_call_kwarg`) and
/// its key (`daskr_call_key`) — all borrowed, valid until the function returns — and then
/// either sets its result (`daskr_call_return*`; the result is owned by daskr from then on)
/// or fails (`daskr_call_fail`). A task that sets nothing returns null. `call` itself is valid
/// only during the call and only on the calling thread. Task functions may run concurrently
/// on several threads and must not unwind (no C++ exception or longjmp) out of the call.
pub struct daskr_call_t {
    _private: [u8; 0],
}

/// One task a plugin declares: its exported symbol and a one-line description (may be NULL).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct daskr_plugin_task_t {
    pub symbol: *const c_char,
    pub doc: *const c_char,
}

/// What a plugin declares about itself. A plugin is a shared library that exports
///
/// ```c
/// const daskr_plugin_info_t *daskr_plugin_info(void);
/// ```
///
/// returning a pointer to static data (read once, when the plugin is opened). `abi_version`
/// must be `DASKR_ABI_VERSION` as in the daskr.h the plugin was built with: a plugin built for
/// another version is refused (the error names both versions). `abi_version` comes first so
/// that it can be read whatever the rest of the layout is.
///
/// Each declared task is a function `void symbol(daskr_call_t *call, void *user_data)`
/// (`user_data` is NULL) that the library exports. Only declared tasks can be used: a symbol
/// that is exported but not declared is refused, and a declared task that is not exported
/// makes the plugin fail to open. Task functions call `daskr_call_*` / `daskr_value_*` without
/// linking libdaskr (`cc -shared -fPIC`): the program that loads the plugin provides them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct daskr_plugin_info_t {
    /// `DASKR_ABI_VERSION` as the plugin was built.
    pub abi_version: u32,
    /// The plugin's name (non-empty UTF-8): the default prefix of its functions' names.
    pub name: *const c_char,
    /// The plugin's own version, free-form (e.g. "1.0.0").
    pub version: *const c_char,
    /// `ntasks` declared tasks.
    pub tasks: *const daskr_plugin_task_t,
    pub ntasks: usize,
}

/// The type of a plugin's entry point, `daskr_plugin_info`.
pub type PluginInfoFn = unsafe extern "C" fn() -> *const daskr_plugin_info_t;

/// The type of a plugin's optional second entry point,
///
/// ```c
/// const char *const *daskr_plugin_impure(void);
/// ```
///
/// returning a NULL-terminated array of declared task symbols whose results depend on more
/// than their arguments (the clock, a file's contents, randomness): the result cache never
/// keeps them. A plugin without it declares every task pure. Each symbol must be declared.
pub type PluginImpureFn = unsafe extern "C" fn() -> *const *const c_char;

/// A computation being built: a literal, a reference, a list or an inline task. Owned by the
/// caller until passed to a function that takes it (or freed with `daskr_comp_free`); not
/// meant to be shared between threads before that.
// Never made: a `daskr_comp_t *` is a handle tagged in its low bit, or the address of a
// boxed computation node (`Comp::into_raw`).
pub struct daskr_comp_t {
    _opaque: [u8; 0],
}
