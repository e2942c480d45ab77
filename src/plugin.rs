//! Plugins: shared libraries of task functions, opened by path at run time.
//!
//! A plugin exports one entry point, `const daskr_plugin_info_t *daskr_plugin_info(void)`,
//! declaring its name, version, the C ABI version it was built for and its tasks (symbol and a
//! one-line description). Its task functions have the usual signature
//! `void fn(daskr_call_t *, void *)` and call the `daskr_call_*` / `daskr_value_*` functions,
//! which they leave undefined: the host process (a program linked with libdaskr, or the
//! `daskr` command) provides them.
//!
//! Decisions:
//! - Only *declared* tasks can be used. A symbol that the plugin exports but does not declare
//!   is refused: `dlsym` also finds symbols of the plugin's dependencies (`ex:printf` would
//!   find libc's `printf`), and calling one of those with the task signature is a crash no
//!   check could catch afterwards.
//! - Every declared task must be exported; this is checked when the plugin is opened.
//! - Libraries are opened with `RTLD_NOW`, so a plugin whose `daskr_*` calls cannot be
//!   resolved in this process is refused when opened rather than aborting the process at its
//!   first call.
//! - A plugin is never unloaded (no `dlclose`): values a plugin made (pointer values whose
//!   destructor lives in the plugin) and threads it started can outlive every graph, and
//!   unmapping code that may still run is a crash. A `Plugin` handle and every function taken
//!   from it share the loaded library, so closing the handle early is always safe; opening the
//!   same path again is cheap (the loader counts references).

use std::ffi::{c_char, CStr};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::abi::{daskr_plugin_info_t, PluginImpureFn, PluginInfoFn, DASKR_ABI_VERSION};
use crate::error::{Error, ErrorKind, Result};
use crate::func::{Func, Origin, TaskFn};

/// The symbol every plugin exports.
pub const ENTRY_POINT: &str = "daskr_plugin_info";

/// A task a plugin declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub symbol: String,
    /// One line saying what the task does.
    pub doc: String,
    /// Whether the plugin declared the task impure (`daskr_plugin_impure`): its results are
    /// never cached.
    pub impure: bool,
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The C ABI version the plugin was built for (equal to this library's).
    pub abi_version: u32,
    pub tasks: Vec<TaskInfo>,
}

struct Loaded {
    /// Never dropped: see the module's note on unloading.
    library: std::mem::ManuallyDrop<libloading::Library>,
    path: Arc<Path>,
    name: Arc<str>,
    info: PluginInfo,
    fns: Vec<TaskFn>,
}

/// An open plugin. Cheap to clone; functions taken from it keep it loaded on their own.
#[derive(Clone)]
pub struct Plugin(Arc<Loaded>);

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plugin({} {})", self.0.name, self.0.path.display())
    }
}

fn plugin_error(path: &Path, message: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::Plugin,
        format!("plugin '{}': {message}", path.display()),
    )
}

#[cfg(unix)]
fn load(path: &Path) -> std::result::Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading runs the library's initialisers; a plugin is trusted code by definition.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
}

#[cfg(not(unix))]
fn load(path: &Path) -> std::result::Result<libloading::Library, libloading::Error> {
    // SAFETY: as above.
    unsafe { libloading::Library::new(path) }
}

/// A C string from the plugin's declaration, checked; `what` names it in errors.
unsafe fn declared_str(path: &Path, p: *const c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Err(plugin_error(path, format!("its declared {what} is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map(str::to_string)
        .map_err(|_| plugin_error(path, format!("its declared {what} is not valid UTF-8")))
}

impl Plugin {
    /// Opens the plugin at `path` (relative paths are relative to the current directory; no
    /// library search path is consulted), checks its declaration and resolves its tasks.
    pub fn open(path: impl AsRef<Path>) -> Result<Plugin> {
        let given = path.as_ref();
        let path: PathBuf = match std::fs::canonicalize(given) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(plugin_error(given, "no such file"))
            }
            Err(e) => return Err(plugin_error(given, format!("cannot open it: {e}"))),
        };
        if !path.is_file() {
            return Err(plugin_error(given, "not a file"));
        }
        let library = load(&path).map_err(|e| {
            let text = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.to_string());
            let hint = if text.contains("undefined symbol: daskr_") {
                " (a plugin takes the daskr_* functions from the program that loads it: link \
                 that program with libdaskr, or use the daskr command)"
            } else {
                ""
            };
            plugin_error(
                &path,
                format!("cannot load it as a shared library: {text}{hint}"),
            )
        })?;
        // SAFETY: the entry point's signature is fixed by the header.
        let entry: PluginInfoFn =
            match unsafe { library.get::<PluginInfoFn>(b"daskr_plugin_info\0") } {
                Ok(sym) => *sym,
                Err(_) => {
                    return Err(plugin_error(
                        &path,
                        format!("not a daskr plugin: it does not export {ENTRY_POINT}"),
                    ))
                }
            };
        // SAFETY: a plugin's declaration is static data it owns for as long as it is loaded,
        // and daskr never unloads it. Only `abi_version` (the first field) is read before the
        // version is known to match, so a plugin with another layout is still refused cleanly.
        let (info, fns) = unsafe {
            let declared = entry();
            if declared.is_null() {
                return Err(plugin_error(
                    &path,
                    format!("{ENTRY_POINT}() returned NULL"),
                ));
            }
            let abi_version = (*declared).abi_version;
            if abi_version != DASKR_ABI_VERSION {
                return Err(plugin_error(
                    &path,
                    format!(
                        "it was built for daskr ABI version {abi_version}, but this daskr \
                         implements ABI version {DASKR_ABI_VERSION}: rebuild it against this \
                         daskr.h"
                    ),
                ));
            }
            read_declaration(&path, &*declared, &library)?
        };
        Ok(Plugin(Arc::new(Loaded {
            library: std::mem::ManuallyDrop::new(library),
            path: path.into(),
            name: info.name.as_str().into(),
            info,
            fns,
        })))
    }

    /// What the plugin declares.
    pub fn info(&self) -> &PluginInfo {
        &self.0.info
    }

    /// The library's absolute path.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The declared task `symbol` as a function named `<plugin name>:<symbol>`.
    pub fn func(&self, symbol: &str) -> Result<Func> {
        self.make_func(symbol, None)
    }

    /// The declared task `symbol` as a function named `<alias>:<symbol>` (the name a graph
    /// file gives it).
    pub fn func_as(&self, symbol: &str, alias: &str) -> Result<Func> {
        self.make_func(symbol, Some(alias))
    }

    fn make_func(&self, symbol: &str, alias: Option<&str>) -> Result<Func> {
        let loaded = &self.0;
        let Some(i) = loaded.info.tasks.iter().position(|t| t.symbol == symbol) else {
            return Err(self.undeclared(symbol));
        };
        let name = format!("{}:{symbol}", alias.unwrap_or(&loaded.name));
        let origin = Origin {
            path: loaded.path.clone(),
            plugin: loaded.name.clone(),
            symbol: symbol.into(),
            alias: alias.map(Into::into),
            library: self.0.clone(),
        };
        let task = &loaded.info.tasks[i];
        let version = (!task.impure).then_some(loaded.info.version.as_str());
        Ok(Func::from_plugin(&name, loaded.fns[i], origin, version))
    }

    fn undeclared(&self, symbol: &str) -> Error {
        let loaded = &self.0;
        let declared: Vec<&str> = loaded
            .info
            .tasks
            .iter()
            .map(|t| t.symbol.as_str())
            .collect();
        let exported = !symbol.contains('\0')
            && unsafe {
                let mut c = symbol.as_bytes().to_vec();
                c.push(0);
                loaded.library.get::<*const ()>(&c).is_ok()
            };
        let why = if exported {
            format!(
                "'{symbol}' is exported but not declared in {ENTRY_POINT}, and only declared \
                 tasks can be used"
            )
        } else {
            format!("no task '{symbol}'")
        };
        plugin_error(
            &loaded.path,
            format!(
                "{why} (plugin '{}' declares: {})",
                loaded.name,
                if declared.is_empty() {
                    "nothing".to_string()
                } else {
                    declared.join(", ")
                }
            ),
        )
    }
}

/// Marks the tasks the plugin lists in its optional `daskr_plugin_impure` (a NULL-terminated
/// array of declared symbols) as impure. An optional second entry point rather than a field
/// of the declaration, so plugins built before it keep their layout and load unchanged.
unsafe fn read_impure(
    path: &Path,
    library: &libloading::Library,
    tasks: &mut [TaskInfo],
) -> Result<()> {
    let Ok(entry) = library.get::<PluginImpureFn>(b"daskr_plugin_impure\0") else {
        return Ok(());
    };
    let mut list = entry();
    let mut n = 0;
    while !list.is_null() && !(*list).is_null() {
        let symbol = declared_str(path, *list, &format!("impure task {n}"))?;
        match tasks.iter_mut().find(|t| t.symbol == symbol) {
            Some(t) => t.impure = true,
            None => {
                return Err(plugin_error(
                    path,
                    format!("daskr_plugin_impure lists '{symbol}', which it does not declare"),
                ))
            }
        }
        list = list.add(1);
        n += 1;
        if n > tasks.len() {
            return Err(plugin_error(
                path,
                "daskr_plugin_impure lists more symbols than the plugin declares tasks (is it \
                 NULL-terminated?)",
            ));
        }
    }
    Ok(())
}

// SAFETY (for the caller): `declared` points at the plugin's declaration with a matching ABI.
unsafe fn read_declaration(
    path: &Path,
    declared: &daskr_plugin_info_t,
    library: &libloading::Library,
) -> Result<(PluginInfo, Vec<TaskFn>)> {
    let name = declared_str(path, declared.name, "name")?;
    if name.is_empty() {
        return Err(plugin_error(path, "its declared name is empty"));
    }
    let version = declared_str(path, declared.version, "version")?;
    let n = declared.ntasks;
    if n > 0 && declared.tasks.is_null() {
        return Err(plugin_error(
            path,
            format!("it declares {n} tasks but its task list is NULL"),
        ));
    }
    let mut tasks = Vec::with_capacity(n);
    let mut fns = Vec::with_capacity(n);
    for i in 0..n {
        let t = &*declared.tasks.add(i);
        let symbol = declared_str(path, t.symbol, &format!("task {i}'s symbol"))?;
        if symbol.is_empty() || symbol == ENTRY_POINT {
            return Err(plugin_error(
                path,
                format!("declared task {i} has an invalid symbol '{symbol}'"),
            ));
        }
        if tasks.iter().any(|t: &TaskInfo| t.symbol == symbol) {
            return Err(plugin_error(
                path,
                format!("it declares the task '{symbol}' twice"),
            ));
        }
        let doc = if t.doc.is_null() {
            String::new()
        } else {
            declared_str(path, t.doc, &format!("description of task '{symbol}'"))?
        };
        let mut c = symbol.as_bytes().to_vec();
        c.push(0);
        let f = match library.get::<TaskFn>(&c) {
            Ok(f) => *f,
            Err(_) => {
                return Err(plugin_error(
                    path,
                    format!("it declares the task '{symbol}' but exports no symbol '{symbol}'"),
                ))
            }
        };
        fns.push(f);
        tasks.push(TaskInfo {
            symbol,
            doc,
            impure: false,
        });
    }
    read_impure(path, library, &mut tasks)?;
    Ok((
        PluginInfo {
            name,
            version,
            abi_version: declared.abi_version,
            tasks,
        },
        fns,
    ))
}
