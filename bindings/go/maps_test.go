package daskr_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	daskr "github.com/daskr/daskr/bindings/go"
)

func TestMapsOrderedAccessAndGoMaps(t *testing.T) {
	m, err := daskr.NewMap([]string{"b", "a", "a\x00c"}, []any{1, "x", nil})
	check(t, err)
	if m.Len() != 3 {
		t.Fatalf("Len %d", m.Len())
	}
	if name, v := m.At(1); name != "a" || v != "x" {
		t.Errorf("At(1) = %q, %v", name, v)
	}
	if v, ok := m.Get("a\x00c"); !ok || v != nil {
		t.Errorf("Get: %v %v", v, ok)
	}
	if _, ok := m.Get("c"); ok {
		t.Error("Get found a name that is not there")
	}
	_, err = daskr.NewMap([]string{"k", "k"}, []any{1, 2})
	if e := asError(t, err); e.Kind != daskr.InvalidArgument || !strings.Contains(e.Message, `"k" is given twice`) {
		t.Errorf("%+v", e)
	}
	// From a Go map: names sorted, so the same map every time.
	g := daskr.MapOf(map[string]int{"z": 1, "a": 2, "m": 3})
	if !reflect.DeepEqual(g.Names(), []string{"a", "m", "z"}) {
		t.Errorf("names %v", g.Names())
	}
	if !reflect.DeepEqual(g.GoMap(), map[string]any{"a": 2, "m": 3, "z": 1}) {
		t.Errorf("GoMap %v", g.GoMap())
	}
}

func TestMapsAsArgumentsResultsAndComputations(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	record := newFunc(t, "record", func(_ context.Context, c *daskr.Call) (any, error) {
		name, err := c.String(0)
		if err != nil {
			return nil, err
		}
		xs, err := c.Floats(1)
		if err != nil {
			return nil, err
		}
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return daskr.NewMap([]string{"file", "readings", "mean"}, []any{name, xs, sum / float64(len(xs))})
	})
	mean := newFunc(t, "mean", func(_ context.Context, c *daskr.Call) (any, error) {
		m, err := c.Map(0)
		if err != nil {
			return nil, err
		}
		v, ok := m.Get("mean")
		if !ok {
			return nil, &daskr.Error{Kind: daskr.TaskFailed, Message: "no mean"}
		}
		return v, nil
	})
	must[daskr.TaskHandle](t)(g.AddValue("readings", []float64{1, 2, 6}))
	must[daskr.TaskHandle](t)(g.AddTask("rec", record, []any{"a.csv", daskr.Ref("readings")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("mean", mean, []any{daskr.Ref("rec")}, nil))
	summary, err := daskr.NewMap([]string{"mean", "next", "text", "rec"},
		[]any{daskr.Ref("mean"), daskr.Inline{Func: incFunc(t), Args: []any{41}}, "rec", daskr.Ref("rec")})
	check(t, err)
	must[daskr.TaskHandle](t)(g.Add("summary", summary))
	must[daskr.TaskHandle](t)(g.AddValue("literal", daskr.MapOf(map[string]any{"k": []any{1}})))
	for _, s := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		got := must[any](t)(g.GetWith(context.Background(), &daskr.Options{Scheduler: s}, "summary"))
		m, ok := got.(*daskr.Map)
		if !ok {
			t.Fatalf("%v: got %#v", s, got)
		}
		if !reflect.DeepEqual(m.Names(), []string{"mean", "next", "text", "rec"}) {
			t.Errorf("%v: names %v", s, m.Names())
		}
		if v, _ := m.Get("mean"); v != 3.0 {
			t.Errorf("%v: mean %v", s, v)
		}
		if v, _ := m.Get("next"); v != int64(42) {
			t.Errorf("%v: next %v", s, v)
		}
		if v, _ := m.Get("text"); v != "rec" {
			t.Errorf("%v: text %v", s, v)
		}
		rec, _ := m.Get("rec")
		if f, _ := rec.(*daskr.Map).Get("file"); f != "a.csv" {
			t.Errorf("%v: rec %v", s, rec)
		}
		lit := must[any](t)(g.GetWith(context.Background(), &daskr.Options{Scheduler: s}, "literal"))
		if !reflect.DeepEqual(lit.(*daskr.Map).GoMap(), map[string]any{"k": []any{int64(1)}}) {
			t.Errorf("%v: literal %#v", s, lit)
		}
	}
	// A map argument read as another kind is a type mismatch naming it.
	must[daskr.TaskHandle](t)(g.AddTask("wrong", incFunc(t), []any{daskr.Ref("rec")}, nil))
	_, err = g.Get(context.Background(), "wrong")
	if e := asError(t, err); e.Key != "wrong" || !strings.Contains(e.Message, "got map") {
		t.Errorf("%+v", e)
	}
}
