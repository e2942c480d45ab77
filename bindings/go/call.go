package daskr

/*
#include <stdlib.h>
#include "daskr.h"
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// TaskFunc is a Go function run as a task. It reads its arguments from the Call and returns
// its result (see Graph.AddValue for how Go values convert) or an error, which fails the
// task: the Get's error (a *Error of kind TaskFailed naming the task's key) wraps it, so
// errors.Is and errors.As reach it. It may run on any of daskr's threads, concurrently with
// itself. A panic fails the task too (the message says "panic: ...").
//
// ctx is the context of the Get the task runs for. It is done when that Get's context is,
// when another task of the Get has failed (the Get fails anyway), or once the Get has
// returned: a long task should watch ctx.Done() and return ctx.Err().
type TaskFunc func(ctx context.Context, c *Call) (any, error)

// Func is a named task function. Graphs keep their own reference: Close the Func when you
// have added its tasks; the Go function is released when the last graph using it is closed.
type Func struct {
	f    *C.daskr_func_t
	name string
}

// NewFunc makes a task function named name (used in error messages and traces).
func NewFunc(name string, fn TaskFunc) (*Func, error) {
	if fn == nil {
		return nil, newError(InvalidArgument, "NewFunc(%q): fn is nil", name)
	}
	cname := cString(name)
	defer free(cname)
	h := newHandle(fn)
	var out *C.daskr_func_t
	// On failure daskr frees the user data (deletes the handle) right away.
	if err := takeError(C.daskr_go_func_new(cname, C.uintptr_t(h), &out)); err != nil {
		return nil, err
	}
	f := &Func{f: out, name: name}
	runtime.SetFinalizer(f, (*Func).Close) // a forgotten Close still releases the function
	return f, nil
}

// NewVersionedFunc makes a task function whose results a Cache may keep: fn must be pure
// (its result depends on its arguments alone), and version must change whenever fn's code
// changes what it returns. Functions made by NewFunc are never cached.
func NewVersionedFunc(name, version string, fn TaskFunc) (*Func, error) {
	if fn == nil {
		return nil, newError(InvalidArgument, "NewVersionedFunc(%q): fn is nil", name)
	}
	cname, cversion := cString(name), cString(version)
	defer free(cname)
	defer free(cversion)
	h := newHandle(fn)
	var out *C.daskr_func_t
	// On failure daskr frees the user data (deletes the handle) right away.
	if err := takeError(C.daskr_go_func_new_versioned(cname, C.uintptr_t(h), cversion, &out)); err != nil {
		return nil, err
	}
	f := &Func{f: out, name: name}
	runtime.SetFinalizer(f, (*Func).Close)
	return f, nil
}

// MustFunc is NewFunc that panics on error (a name that is not valid UTF-8 or holds NUL).
func MustFunc(name string, fn TaskFunc) *Func {
	f, err := NewFunc(name, fn)
	if err != nil {
		panic(err)
	}
	return f
}

// Name is the function's name.
func (f *Func) Name() string { return f.name }

// Close releases this reference to the function. Safe to call twice.
func (f *Func) Close() {
	if f != nil && f.f != nil {
		C.daskr_func_free(f.f)
		f.f = nil
		runtime.SetFinalizer(f, nil)
	}
}

//export daskrGoCall
func daskrGoCall(call *C.daskr_call_t, h C.uintptr_t, cancel C.uintptr_t) {
	c := &Call{c: call}
	get := runningGet(uintptr(cancel))
	defer func() {
		if r := recover(); r != nil {
			c.fail(fmt.Sprintf("panic: %v", r))
		}
		c.c = nil // the call is only valid during the task
	}()
	fn := cgo.Handle(h).Value().(TaskFunc)
	ctx := context.Background()
	if get != nil {
		ctx = get.ctx
	}
	result, err := fn(ctx, c)
	if err != nil {
		if get != nil {
			get.failed(C.GoString(C.daskr_call_key(call)), err)
		}
		c.fail(err.Error())
		return
	}
	// Numbers return in one cgo call (not two: making the value, then returning it).
	switch x := result.(type) {
	case int64:
		C.daskr_call_return_int(call, C.int64_t(x))
		return
	case int:
		C.daskr_call_return_int(call, C.int64_t(x))
		return
	case float64:
		C.daskr_call_return_float(call, C.double(x))
		return
	}
	v, err := toC(result)
	if err != nil {
		c.fail(fmt.Sprintf("result: %v", err))
		return
	}
	C.daskr_call_return(call, v)
}

// Call is what a running task sees: its key and its arguments. Valid only during the task.
// The typed accessors return a *Error (TypeMismatch or InvalidArgument) when the argument
// is missing or has another type.
type Call struct {
	c *C.daskr_call_t
}

func (c *Call) fail(msg string) {
	cmsg := cString(msg)
	defer free(cmsg)
	C.daskr_call_fail(c.c, cmsg)
}

func (c *Call) live() {
	if c.c == nil {
		panic("daskr: a Call used after its task returned")
	}
}

// Key is the key of the entry this task computes.
func (c *Call) Key() string {
	c.live()
	return C.GoString(C.daskr_call_key(c.c))
}

// NArgs is the number of positional arguments.
func (c *Call) NArgs() int {
	c.live()
	return int(C.daskr_call_nargs(c.c))
}

func (c *Call) arg(i int) (*C.daskr_value_t, error) {
	c.live()
	if i < 0 || i >= c.NArgs() {
		return nil, newError(InvalidArgument, "missing argument %d (the task has %d)", i, c.NArgs())
	}
	return C.daskr_call_arg(c.c, C.size_t(i)), nil
}

// Arg is the i-th positional argument as a Go value (nil, bool, int64, float64, string,
// []byte, []any, *Map, a Go object, or a *Pointer).
func (c *Call) Arg(i int) (any, error) {
	v, err := c.arg(i)
	if err != nil {
		return nil, err
	}
	return fromC(v), nil
}

func argAs[T any](c *Call, i int, read func(*C.daskr_value_t) (T, bool), want string) (T, error) {
	var zero T
	v, err := c.arg(i)
	if err != nil {
		return zero, err
	}
	x, ok := read(v)
	if !ok {
		return zero, newError(TypeMismatch, "argument %d: expected %s, got %s", i, want, kindName(v))
	}
	return x, nil
}

func readInt(v *C.daskr_value_t) (int64, bool) {
	var i C.int64_t
	ok := C.daskr_value_get_int(v, &i)
	return int64(i), bool(ok)
}

// readFloat accepts ints too.
func readFloat(v *C.daskr_value_t) (float64, bool) {
	var x C.double
	if C.daskr_value_get_float(v, &x) {
		return float64(x), true
	}
	i, ok := readInt(v)
	return float64(i), ok
}

func readBool(v *C.daskr_value_t) (bool, bool) {
	var b C.bool
	ok := C.daskr_value_get_bool(v, &b)
	return bool(b), bool(ok)
}

func readString(v *C.daskr_value_t) (string, bool) {
	var s *C.char
	var n C.size_t
	if !C.daskr_value_get_string(v, &s, &n) {
		return "", false
	}
	return C.GoStringN(s, C.int(n)), true
}

func readBytes(v *C.daskr_value_t) ([]byte, bool) {
	var d *C.uint8_t
	var n C.size_t
	if !C.daskr_value_get_bytes(v, &d, &n) {
		return nil, false
	}
	return C.GoBytes(unsafe.Pointer(d), C.int(n)), true
}

func readList(v *C.daskr_value_t) ([]any, bool) {
	if C.daskr_value_kind(v) != C.DASKR_KIND_LIST {
		return nil, false
	}
	return fromC(v).([]any), true
}

func readListOf[T any](read func(*C.daskr_value_t) (T, bool)) func(*C.daskr_value_t) ([]T, bool) {
	return func(v *C.daskr_value_t) ([]T, bool) {
		if C.daskr_value_kind(v) != C.DASKR_KIND_LIST {
			return nil, false
		}
		n := int(C.daskr_value_list_len(v))
		out := make([]T, n)
		for i := range out {
			x, ok := read(C.daskr_value_list_at(v, C.size_t(i)))
			if !ok {
				return nil, false
			}
			out[i] = x
		}
		return out, true
	}
}

func readObject(v *C.daskr_value_t) (any, bool) {
	h := C.daskr_go_value_handle(v)
	if h == 0 {
		return nil, false
	}
	return cgo.Handle(h).Value(), true
}

// Int is the i-th argument as an int64.
func (c *Call) Int(i int) (int64, error) {
	c.live()
	// One cgo call for the usual case (an int is there): not three.
	var x C.int64_t
	var v *C.daskr_value_t
	if i >= 0 {
		switch C.daskr_go_call_int(c.c, C.size_t(i), &x, &v) {
		case 0:
			return int64(x), nil
		case 2:
			return 0, newError(TypeMismatch, "argument %d: expected int, got %s", i, kindName(v))
		}
	}
	return 0, newError(InvalidArgument, "missing argument %d (the task has %d)", i, c.NArgs())
}

// Float is the i-th argument as a float64 (an int converts).
func (c *Call) Float(i int) (float64, error) { return argAs(c, i, readFloat, "float") }

// Bool is the i-th argument as a bool.
func (c *Call) Bool(i int) (bool, error) { return argAs(c, i, readBool, "bool") }

// String is the i-th argument as a string.
func (c *Call) String(i int) (string, error) { return argAs(c, i, readString, "string") }

// Bytes is the i-th argument as bytes (a copy).
func (c *Call) Bytes(i int) ([]byte, error) { return argAs(c, i, readBytes, "bytes") }

// Len is the number of items of the i-th argument, a list, without converting them.
func (c *Call) Len(i int) (int, error) {
	v, err := c.arg(i)
	if err != nil {
		return 0, err
	}
	if C.daskr_value_kind(v) != C.DASKR_KIND_LIST {
		return 0, newError(TypeMismatch, "argument %d of task '%s': expected a list", i, c.Key())
	}
	return int(C.daskr_value_list_len(v)), nil
}

// List is the i-th argument, a list, as a []any (items converted as by Arg).
func (c *Call) List(i int) ([]any, error) { return argAs(c, i, readList, "list") }

// Ints is the i-th argument, a list of ints, as a []int64.
func (c *Call) Ints(i int) ([]int64, error) { return argAs(c, i, readListOf(readInt), "list of ints") }

// Floats is the i-th argument, a list of numbers, as a []float64.
func (c *Call) Floats(i int) ([]float64, error) {
	return argAs(c, i, readListOf(readFloat), "list of floats")
}

// Strings is the i-th argument, a list of strings, as a []string.
func (c *Call) Strings(i int) ([]string, error) {
	return argAs(c, i, readListOf(readString), "list of strings")
}

// Object is the Go value inside the i-th argument, which must be a pointer value made by
// this package (a Go object returned by a task or added to a graph).
func (c *Call) Object(i int) (any, error) { return argAs(c, i, readObject, "a Go object") }

// NKwargs is the number of keyword arguments.
func (c *Call) NKwargs() int {
	c.live()
	return int(C.daskr_call_nkwargs(c.c))
}

func (c *Call) kwarg(name string) *C.daskr_value_t {
	c.live()
	cname := cString(name)
	defer free(cname)
	return C.daskr_call_kwarg(c.c, cname)
}

// Kwarg is the keyword argument name as a Go value (as Arg), and whether it was given.
func (c *Call) Kwarg(name string) (any, bool) {
	v := c.kwarg(name)
	if v == nil {
		return nil, false
	}
	return fromC(v), true
}

// Kwargs is every keyword argument, converted as by Arg.
func (c *Call) Kwargs() map[string]any {
	c.live()
	n := int(C.daskr_call_nkwargs(c.c))
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		out[C.GoString(C.daskr_call_kwarg_name(c.c, C.size_t(i)))] = fromC(C.daskr_call_kwarg_at(c.c, C.size_t(i)))
	}
	return out
}

func kwargAs[T any](c *Call, name string, def T, read func(*C.daskr_value_t) (T, bool), want string) (T, error) {
	v := c.kwarg(name)
	if v == nil {
		return def, nil
	}
	x, ok := read(v)
	if !ok {
		var zero T
		return zero, newError(TypeMismatch, "keyword argument %q: expected %s, got %s", name, want, kindName(v))
	}
	return x, nil
}

// KwargInt is the keyword argument name as an int64, or def if it was not given.
func (c *Call) KwargInt(name string, def int64) (int64, error) {
	return kwargAs(c, name, def, readInt, "int")
}

// KwargFloat is the keyword argument name as a float64, or def if it was not given.
func (c *Call) KwargFloat(name string, def float64) (float64, error) {
	return kwargAs(c, name, def, readFloat, "float")
}

// KwargBool is the keyword argument name as a bool, or def if it was not given.
func (c *Call) KwargBool(name string, def bool) (bool, error) {
	return kwargAs(c, name, def, readBool, "bool")
}

// KwargString is the keyword argument name as a string, or def if it was not given.
func (c *Call) KwargString(name string, def string) (string, error) {
	return kwargAs(c, name, def, readString, "string")
}
