package daskr

/*
#include "daskr.h"
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// Object wraps a Go value so that it travels as an opaque pointer value even when it has a
// type daskr could convert (a string, a []int, ...). Values of types daskr cannot convert
// (structs, pointers, maps, funcs, channels) travel as objects without it.
type Object struct{ Value any }

// Pointer is a pointer value that was not made by this package (e.g. by a C task or a
// plugin). It keeps the value (and so the object behind Addr) alive until Close, or until
// it is garbage collected. Passing it back into a graph passes the same value on.
type Pointer struct {
	Tag  string
	Addr uintptr
	v    *C.daskr_value_t
}

// Close releases the reference (the object's destructor runs if it was the last).
func (p *Pointer) Close() {
	if p.v != nil {
		C.daskr_value_free(p.v)
		p.v = nil
		runtime.SetFinalizer(p, nil)
	}
}

func newPointer(v *C.daskr_value_t) *Pointer {
	p := &Pointer{Addr: uintptr(C.daskr_go_value_address(v)), v: C.daskr_value_clone(v)}
	if t := C.daskr_value_pointer_tag(v); t != nil {
		p.Tag = C.GoString(t)
	}
	runtime.SetFinalizer(p, (*Pointer).Close)
	return p
}

const goTagPrefix = C.DASKR_GO_TAG_PREFIX

// fromC converts a borrowed value to Go: nil, bool, int64, float64, string, []byte, []any,
// *Map, the Go value inside a Go object, or a *Pointer for any other pointer value.
func fromC(v *C.daskr_value_t) any {
	switch C.daskr_value_kind(v) {
	case C.DASKR_KIND_NULL:
		return nil
	case C.DASKR_KIND_BOOL:
		var b C.bool
		C.daskr_value_get_bool(v, &b)
		return bool(b)
	case C.DASKR_KIND_INT:
		var i C.int64_t
		C.daskr_value_get_int(v, &i)
		return int64(i)
	case C.DASKR_KIND_FLOAT:
		var x C.double
		C.daskr_value_get_float(v, &x)
		return float64(x)
	case C.DASKR_KIND_STRING:
		var s *C.char
		var n C.size_t
		C.daskr_value_get_string(v, &s, &n)
		return C.GoStringN(s, C.int(n))
	case C.DASKR_KIND_BYTES:
		var d *C.uint8_t
		var n C.size_t
		C.daskr_value_get_bytes(v, &d, &n)
		return C.GoBytes(unsafe.Pointer(d), C.int(n))
	case C.DASKR_KIND_LIST:
		n := int(C.daskr_value_list_len(v))
		out := make([]any, n)
		for i := range out {
			out[i] = fromC(C.daskr_value_list_at(v, C.size_t(i)))
		}
		return out
	case C.DASKR_KIND_MAP:
		return mapFromC(v)
	case C.DASKR_KIND_POINTER:
		if h := C.daskr_go_value_handle(v); h != 0 {
			return cgo.Handle(h).Value()
		}
		return newPointer(v)
	}
	return nil
}

// toC converts a Go value to an owned C value. See Graph.AddValue for the rules.
func toC(x any) (*C.daskr_value_t, error) {
	switch x := x.(type) {
	case nil:
		return C.daskr_value_null(), nil
	case bool:
		return C.daskr_value_bool(C.bool(x)), nil
	case int:
		return C.daskr_value_int(C.int64_t(x)), nil
	case int8:
		return C.daskr_value_int(C.int64_t(x)), nil
	case int16:
		return C.daskr_value_int(C.int64_t(x)), nil
	case int32:
		return C.daskr_value_int(C.int64_t(x)), nil
	case int64:
		return C.daskr_value_int(C.int64_t(x)), nil
	case uint8:
		return C.daskr_value_int(C.int64_t(x)), nil
	case uint16:
		return C.daskr_value_int(C.int64_t(x)), nil
	case uint32:
		return C.daskr_value_int(C.int64_t(x)), nil
	case uint:
		return uintToC(uint64(x))
	case uint64:
		return uintToC(x)
	case float32:
		return C.daskr_value_float(C.double(x)), nil
	case float64:
		return C.daskr_value_float(C.double(x)), nil
	case string:
		var out *C.daskr_value_t
		err := takeError(C.daskr_value_string((*C.char)(unsafe.Pointer(unsafe.StringData(x))), C.size_t(len(x)), &out))
		return out, err
	case []byte:
		var out *C.daskr_value_t
		err := takeError(C.daskr_value_bytes((*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(x))), C.size_t(len(x)), &out))
		return out, err
	case []any:
		return listToC(len(x), func(i int) any { return x[i] })
	case *Pointer:
		if x == nil || x.v == nil {
			return nil, newError(InvalidArgument, "a closed daskr.Pointer")
		}
		v := C.daskr_value_clone(x.v)
		runtime.KeepAlive(x)
		return v, nil
	case *Map:
		if x == nil {
			return C.daskr_value_null(), nil
		}
		return mapToC(x)
	case Map:
		return mapToC(&x)
	case Object:
		return objectToC(x.Value)
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return listToC(rv.Len(), func(i int) any { return rv.Index(i).Interface() })
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan:
		if rv.IsNil() {
			return C.daskr_value_null(), nil
		}
	}
	return objectToC(x)
}

func uintToC(u uint64) (*C.daskr_value_t, error) {
	if u > math.MaxInt64 {
		return nil, newError(InvalidArgument, "integer %d does not fit in int64", u)
	}
	return C.daskr_value_int(C.int64_t(u)), nil
}

func listToC(n int, item func(int) any) (*C.daskr_value_t, error) {
	items := make([]*C.daskr_value_t, n)
	for i := range items {
		v, err := toC(item(i))
		if err != nil {
			for _, done := range items[:i] {
				C.daskr_value_free(done)
			}
			return nil, err
		}
		items[i] = v
	}
	var p **C.daskr_value_t
	if n > 0 {
		p = &items[0]
	}
	var out *C.daskr_value_t
	// daskr_value_list takes every item, on failure too.
	err := takeError(C.daskr_value_list(p, C.size_t(n), &out))
	return out, err
}

// objectToC makes a pointer value holding x through a cgo.Handle, tagged with its Go type;
// the value's destructor deletes the handle.
func objectToC(x any) (*C.daskr_value_t, error) {
	h := newHandle(x)
	tag := cString(fmt.Sprintf("%s%T", goTagPrefix, x))
	defer free(tag)
	var out *C.daskr_value_t
	if err := takeError(C.daskr_go_value_object(C.uintptr_t(h), tag, &out)); err != nil {
		deleteHandle(h)
		return nil, err
	}
	return out, nil
}

func kindName(v *C.daskr_value_t) string {
	switch C.daskr_value_kind(v) {
	case C.DASKR_KIND_NULL:
		return "null"
	case C.DASKR_KIND_BOOL:
		return "bool"
	case C.DASKR_KIND_INT:
		return "int"
	case C.DASKR_KIND_FLOAT:
		return "float"
	case C.DASKR_KIND_STRING:
		return "string"
	case C.DASKR_KIND_BYTES:
		return "bytes"
	case C.DASKR_KIND_LIST:
		return "list"
	case C.DASKR_KIND_POINTER:
		return "pointer"
	case C.DASKR_KIND_MAP:
		return "map"
	}
	return "unknown"
}
