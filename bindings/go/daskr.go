// Package daskr runs Dask-style task graphs natively, through libdaskr's C ABI.
//
// A graph maps keys to computations: literal values, references to other keys, lists, and
// tasks (a function plus positional and keyword arguments). Get computes the requested keys,
// running only the tasks they need, in parallel on daskr's native threads:
//
//	g := daskr.NewGraph()
//	defer g.Close()
//	inc := daskr.MustFunc("inc", func(ctx context.Context, c *daskr.Call) (any, error) {
//		x, err := c.Int(0)
//		return x + 1, err
//	})
//	defer inc.Close()
//	g.AddValue("x", 1)
//	g.AddTask("y", inc, []any{daskr.Ref("x")}, nil)
//	y, err := g.Get(ctx, "y") // int64(2)
//
// Go functions run as tasks through one exported trampoline and a runtime/cgo.Handle per
// function; a panic in a task becomes that task's error. Each task receives the context of
// the Get it runs for: it is done when that context is, so a long task can watch ctx.Done().
// Results come back as Go values: nil, bool, int64, float64, string, []byte, []any, or any Go
// value a task returned (kept alive by a cgo.Handle inside a pointer value while daskr holds
// it). Errors are *Error (use errors.As); an error a task returned stays reachable through it
// (errors.Is and errors.As see it), and a Get whose context ends returns an error wrapping
// ctx.Err().
//
// Building: cgo finds libdaskr with pkg-config (`#cgo pkg-config: daskr`). From an
// installed prefix (`make install PREFIX=...`), set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig
// if that is not a folder pkg-config searches already. From a checkout, `cargo build
// --release --lib` writes target/release/pkgconfig/daskr-uninstalled.pc (this build's
// include/ and library): set PKG_CONFIG_PATH=<checkout>/target/release/pkgconfig (make
// test-go does).
package daskr

/*
#cgo pkg-config: daskr
#include <stdlib.h>
#include "daskr.h"
#include "shim.h"
*/
import "C"

import (
	"runtime/cgo"
	"sync/atomic"
	"unsafe"
)

// Version is the library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.daskr_version()) }

// ABIVersion is the C ABI version the library implements.
func ABIVersion() uint32 { return uint32(C.daskr_abi_version()) }

// HeaderABIVersion is the C ABI version of the daskr.h this package was built with: a
// library whose ABIVersion differs is not the one the package was written for.
const HeaderABIVersion = uint32(C.DASKR_ABI_VERSION)

// ReleaseMemory gives the memory daskr keeps for reuse (up to 512 MiB of large blocks freed
// by big graphs and gets) back to the system, and returns how many bytes.
func ReleaseMemory() uint64 { return uint64(C.daskr_memory_release()) }

// ShutdownWorkers ends the idle worker processes the processes scheduler keeps between gets
// (the next get starts new ones).
func ShutdownWorkers() { C.daskr_workers_shutdown() }

// liveHandles counts the cgo handles this package holds: one per Func still referenced by
// daskr, one per Go value inside a pointer value daskr still holds, one per running Get with
// callbacks. Tests read it (export_test.go) to check that nothing leaks.
var liveHandles atomic.Int64

func newHandle(v any) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	h.Delete()
	liveHandles.Add(-1)
}

//export daskrGoDeleteHandle
func daskrGoDeleteHandle(h C.uintptr_t) {
	// Called by daskr (a function's user data or a pointer value's destructor). A panic must
	// not reach C: an invalid handle would be a bug, and is reported without crashing.
	defer func() { _ = recover() }()
	deleteHandle(cgo.Handle(h))
}

// cString is a C copy of s; free it with C.free.
func cString(s string) *C.char { return C.CString(s) }

func free(p *C.char) { C.free(unsafe.Pointer(p)) }
