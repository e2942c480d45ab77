package daskr

/*
#include <stdlib.h>
#include "daskr.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Graph files (docs/graph-format.md): a graph as JSON, its task functions named as plugin
// symbols ("ex:inc" with "plugins": {"ex": "path/to/libexample.so"}), with the keys to compute
// by default. The daskr command runs them (`daskr run FILE`); these read and write them.

// ReadGraphFile reads the graph file at path (relative plugin paths are relative to its
// folder). keys is the file's default request ("keys"), ready to pass to Get, or nil if it
// has none. Close the graph when done.
func ReadGraphFile(path string) (g *Graph, keys any, err error) {
	cpath := cString(path)
	defer free(cpath)
	var out *C.daskr_graph_t
	var ckeys *C.daskr_value_t
	if err := takeError(C.daskr_graph_from_file(cpath, &out, &ckeys)); err != nil {
		return nil, nil, err
	}
	return wrapGraph(out), takeKeys(ckeys), nil
}

// GraphFromJSON builds a graph from graph-file JSON; relative plugin paths are relative to
// baseDir ("" for the current directory). keys as for ReadGraphFile.
func GraphFromJSON(json []byte, baseDir string) (g *Graph, keys any, err error) {
	var cbase *C.char
	if baseDir != "" {
		cbase = cString(baseDir)
		defer free(cbase)
	}
	var data *C.char
	if len(json) > 0 {
		data = (*C.char)(C.CBytes(json))
		defer C.free(unsafe.Pointer(data))
	}
	var out *C.daskr_graph_t
	var ckeys *C.daskr_value_t
	if err := takeError(C.daskr_graph_from_json(data, C.size_t(len(json)), cbase, &out, &ckeys)); err != nil {
		return nil, nil, err
	}
	return wrapGraph(out), takeKeys(ckeys), nil
}

func wrapGraph(c *C.daskr_graph_t) *Graph {
	g := &Graph{g: c}
	runtime.SetFinalizer(g, (*Graph).Close)
	return g
}

func takeKeys(v *C.daskr_value_t) any {
	if v == nil {
		return nil
	}
	defer C.daskr_value_free(v)
	return fromC(v)
}

// JSON writes the graph as graph-file JSON, with keys (nil for none) as its default request.
// Plugin paths inside baseDir are written relative to it ("" for all absolute). Every task
// must use a plugin function (a Go function has no name another program could load): an
// InvalidGraph error names the first key that does not.
func (g *Graph) JSON(keys any, baseDir string) ([]byte, error) {
	var out []byte
	err := g.with(func(cg *C.daskr_graph_t) error {
		var ckeys *C.daskr_value_t
		if keys != nil {
			k, err := keysValue([]any{keys})
			if err != nil {
				return err
			}
			defer C.daskr_value_free(k)
			ckeys = k
		}
		var cbase *C.char
		if baseDir != "" {
			cbase = cString(baseDir)
			defer free(cbase)
		}
		var text *C.daskr_value_t
		if err := takeError(C.daskr_graph_to_json(cg, ckeys, cbase, &text)); err != nil {
			return err
		}
		defer C.daskr_value_free(text)
		var s *C.char
		var n C.size_t
		C.daskr_value_get_string(text, &s, &n)
		out = C.GoBytes(unsafe.Pointer(s), C.int(n))
		return nil
	})
	return out, err
}

// WriteDOT draws the part of the graph keys need to path: Graphviz DOT, or SVG when path
// ends in ".svg" (rendered by Graphviz's dot command). With a profile, entries are coloured by
// how long they ran in its last Get; failedKey (if not "") is drawn in red.
func (g *Graph) WriteDOT(path string, keys any, profile *Profile, failedKey string) error {
	return g.with(func(cg *C.daskr_graph_t) error {
		k, err := keysValue([]any{keys})
		if err != nil {
			return err
		}
		defer C.daskr_value_free(k)
		cpath := cString(path)
		defer free(cpath)
		var cfailed *C.char
		if failedKey != "" {
			cfailed = cString(failedKey)
			defer free(cfailed)
		}
		err = takeError(C.daskr_graph_write_dot(cg, k, profile.raw(), cfailed, cpath))
		runtime.KeepAlive(profile)
		return err
	})
}
