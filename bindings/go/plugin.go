package daskr

/*
#include <stdlib.h>
#include "daskr.h"
*/
import "C"

import "runtime"

// PluginLib is a plugin: a shared library of task functions, loaded by path at run time (see
// docs/command.md, "Writing a plugin"). Its tasks are the ones a Processes get can run from a Go
// program: worker processes load the library by path themselves, while Go functions exist
// only in this process, which cannot be forked.
type PluginLib struct {
	p    *C.daskr_plugin_t
	path string
}

// OpenPlugin loads the plugin library at path (relative to the current directory), checking
// its ABI version and what it declares. Close it when done: functions taken from it stay
// valid (the library is never unloaded).
func OpenPlugin(path string) (*PluginLib, error) {
	cpath := cString(path)
	defer free(cpath)
	var out *C.daskr_plugin_t
	if err := takeError(C.daskr_plugin_open(cpath, &out)); err != nil {
		return nil, err
	}
	p := &PluginLib{p: out, path: C.GoString(C.daskr_plugin_path(out))}
	runtime.SetFinalizer(p, (*PluginLib).Close)
	return p, nil
}

// Path is the library's absolute path.
func (p *PluginLib) Path() string { return p.path }

// Func is the declared task symbol as a task function, named "<plugin>:<symbol>". Close it
// once its tasks are added (graphs keep their own reference).
func (p *PluginLib) Func(symbol string) (*Func, error) {
	if p == nil || p.p == nil {
		return nil, newError(InvalidArgument, "PluginLib.Func(%q): the plugin is closed", symbol)
	}
	csym := cString(symbol)
	defer free(csym)
	var out *C.daskr_func_t
	err := takeError(C.daskr_plugin_func(p.p, csym, &out))
	runtime.KeepAlive(p)
	if err != nil {
		return nil, err
	}
	info := C.daskr_plugin_get_info(p.p)
	f := &Func{f: out, name: C.GoString(info.name) + ":" + symbol}
	runtime.SetFinalizer(f, (*Func).Close)
	return f, nil
}

// Close releases the handle. Safe to call twice.
func (p *PluginLib) Close() {
	if p != nil && p.p != nil {
		C.daskr_plugin_free(p.p)
		p.p = nil
		runtime.SetFinalizer(p, nil)
	}
}
