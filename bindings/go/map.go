package daskr

/*
#include <stdlib.h>
#include "daskr.h"
*/
import "C"

import (
	"sort"
	"unsafe"
)

// Map is a daskr map value (Dask's dict): names in order, each with its value (nil, bool,
// int64, float64, string, []byte, []any, *Map, a Go object, a *Pointer; anything AddValue
// converts when the Map is built in Go). Names are distinct. A task argument or result that
// is a map arrives as a *Map; pass a *Map (or a Map) to make one.
//
// A Go map (map[string]int, ...) still travels as an opaque Go object, as before; convert it
// with MapOf to send a daskr map.
type Map struct {
	names  []string
	values []any
	index  map[string]int
}

// NewMap is the map of names[i] to values[i], in this order. A name given twice is an
// InvalidArgument error naming it; so are slices of different lengths.
func NewMap(names []string, values []any) (*Map, error) {
	if len(names) != len(values) {
		return nil, newError(InvalidArgument, "a map of %d names given %d values", len(names), len(values))
	}
	m := &Map{names: names, values: values, index: make(map[string]int, len(names))}
	for i, name := range names {
		if _, dup := m.index[name]; dup {
			return nil, newError(InvalidArgument, "map name %q is given twice", name)
		}
		m.index[name] = i
	}
	return m, nil
}

// MapOf is the map of a Go map's entries, ordered by name (sorted byte-wise: a Go map has no
// order of its own, and a daskr map keeps one, so this makes the result the same every time).
func MapOf[V any](m map[string]V) *Map {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	values := make([]any, len(names))
	for i, name := range names {
		values[i] = m[name]
	}
	out, _ := NewMap(names, values) // a Go map's names are distinct
	return out
}

// Len is the number of entries.
func (m *Map) Len() int { return len(m.names) }

// At is entry i (0 <= i < Len), in the map's order.
func (m *Map) At(i int) (name string, value any) { return m.names[i], m.values[i] }

// Get is the value named name, and whether there is one.
func (m *Map) Get(name string) (any, bool) {
	i, ok := m.index[name]
	if !ok {
		return nil, false
	}
	return m.values[i], true
}

// Names are the names, in order (a copy).
func (m *Map) Names() []string { return append([]string(nil), m.names...) }

// GoMap is the entries as a Go map (which forgets their order).
func (m *Map) GoMap() map[string]any {
	out := make(map[string]any, len(m.names))
	for i, name := range m.names {
		out[name] = m.values[i]
	}
	return out
}

// mapFromC converts a borrowed map value to a *Map.
func mapFromC(v *C.daskr_value_t) *Map {
	n := int(C.daskr_value_map_len(v))
	names := make([]string, n)
	values := make([]any, n)
	for i := range names {
		var len C.size_t
		s := C.daskr_value_map_name(v, C.size_t(i), &len)
		names[i] = C.GoStringN(s, C.int(len))
		values[i] = fromC(C.daskr_value_map_value(v, C.size_t(i)))
	}
	m, _ := NewMap(names, values) // daskr's maps have distinct names
	return m
}

// mapToC converts m to an owned C map value.
func mapToC(m *Map) (*C.daskr_value_t, error) {
	n := len(m.names)
	values := make([]*C.daskr_value_t, n)
	for i := range values {
		v, err := toC(m.values[i])
		if err != nil {
			for _, done := range values[:i] {
				C.daskr_value_free(done)
			}
			return nil, err
		}
		values[i] = v
	}
	// The names are copied to C memory and passed with their lengths (a name may hold NULs).
	names := make([]*C.char, n)
	lens := make([]C.size_t, n)
	for i, name := range m.names {
		names[i] = (*C.char)(C.CBytes([]byte(name)))
		lens[i] = C.size_t(len(name))
	}
	defer func() {
		for _, p := range names {
			C.free(unsafe.Pointer(p))
		}
	}()
	var np **C.char
	var lp *C.size_t
	var vp **C.daskr_value_t
	if n > 0 {
		np, lp, vp = &names[0], &lens[0], &values[0]
	}
	var out *C.daskr_value_t
	// daskr_value_map takes every value, on failure too.
	err := takeError(C.daskr_value_map(np, lp, vp, C.size_t(n), &out))
	return out, err
}

func readMap(v *C.daskr_value_t) (*Map, bool) {
	if C.daskr_value_kind(v) != C.DASKR_KIND_MAP {
		return nil, false
	}
	return mapFromC(v), true
}

// Map is the i-th argument as a *Map.
func (c *Call) Map(i int) (*Map, error) { return argAs(c, i, readMap, "map") }
