package daskr_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	daskr "github.com/daskr/daskr/bindings/go"
)

func TestGraphFilesAndDOT(t *testing.T) {
	noLeaks(t)
	plugin, err := filepath.Abs(examplePlugin)
	check(t, err)
	text := []byte(`{"plugins": {"ex": "` + plugin + `"},
		"graph": {"x": 1, "y": {"fn": "ex:inc", "args": ["x"]}}, "keys": "y"}`)
	g, keys, err := daskr.GraphFromJSON(text, "")
	check(t, err)
	defer g.Close()
	if keys != "y" || g.Len() != 2 {
		t.Fatalf("keys %v, %d entries", keys, g.Len())
	}
	// Written and read back: the same graph, the same result.
	out, err := g.JSON([]string{"y"}, "")
	check(t, err)
	g2, keys2, err := daskr.GraphFromJSON(out, "")
	check(t, err)
	defer g2.Close()
	if y := must[any](t)(g2.Get(context.Background(), keys2)); !equalList(y, []any{int64(2)}) {
		t.Fatalf("read back: %v (keys %v) from %s", y, keys2, out)
	}
	// No keys: none in the file, nil from the reader.
	out, err = g.JSON(nil, "")
	check(t, err)
	g3, keys3, err := daskr.GraphFromJSON(out, "")
	check(t, err)
	g3.Close()
	if keys3 != nil {
		t.Fatalf("keys %v", keys3)
	}

	dot := filepath.Join(t.TempDir(), "g.dot")
	check(t, g.WriteDOT(dot, "y", nil, "y"))
	drawn, err := os.ReadFile(dot)
	check(t, err)
	if !bytes.Contains(drawn, []byte("digraph")) || !bytes.Contains(drawn, []byte("inc")) {
		t.Fatalf("%s", drawn)
	}

	// Bad input: the error names what was wrong.
	_, _, err = daskr.GraphFromJSON([]byte(`{"graph": {"y": {"fn": "nope:inc"}}}`), "")
	if e := asError(t, err); e.Kind != daskr.InvalidGraph && e.Kind != daskr.Plugin {
		t.Fatalf("%+v", e)
	}
	_, _, err = daskr.ReadGraphFile(filepath.Join(t.TempDir(), "missing.json"))
	asError(t, err)
	_, _, err = daskr.GraphFromJSON(nil, "")
	asError(t, err)
	// A Go function has no name a graph file could hold.
	h := newGraph(t)
	must[daskr.TaskHandle](t)(h.AddTask("z", incFunc(t), []any{1}, nil))
	if _, err := h.JSON(nil, ""); asError(t, err).Key != "z" {
		t.Fatal(err)
	}
	if err := h.WriteDOT(dot, 42, nil, ""); asError(t, err).Kind != daskr.InvalidArgument {
		t.Fatal(err)
	}
}

func equalList(v any, want []any) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}
