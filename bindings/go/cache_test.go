package daskr_test

import (
	"context"
	"sync/atomic"
	"testing"

	daskr "github.com/daskr/daskr/bindings/go"
)

func TestCacheRerunRunsOnlyWhatChanged(t *testing.T) {
	noLeaks(t)
	cache, err := daskr.OpenCache(t.TempDir())
	check(t, err)
	defer cache.Close()
	var calls atomic.Int64
	double, err := daskr.NewVersionedFunc("double", "1", func(_ context.Context, c *daskr.Call) (any, error) {
		calls.Add(1)
		x, err := c.Int(0)
		return 2 * x, err
	})
	check(t, err)
	defer double.Close()
	build := func(input int) *daskr.Graph {
		g := newGraph(t)
		a := must[daskr.TaskHandle](t)(g.AddTask("a", double, []any{input}, nil))
		b := must[daskr.TaskHandle](t)(g.AddTask("b", double, []any{10}, nil))
		must[daskr.TaskHandle](t)(g.AddTask("c", double, []any{a}, nil))
		must[daskr.TaskHandle](t)(g.AddTask("d", double, []any{b}, nil))
		return g
	}
	var stats daskr.Stats
	opts := &daskr.Options{Cache: cache, Stats: &stats}
	get := func(g *daskr.Graph) any {
		return must[any](t)(g.GetWith(context.Background(), opts, []any{"c", "d"}))
	}
	if r := get(build(1)); calls.Load() != 4 || r.([]any)[0] != int64(4) {
		t.Fatalf("first run: %v, %d calls", r, calls.Load())
	}
	if stats.CacheMisses != 4 || stats.CacheBytesWritten == 0 {
		t.Fatalf("first run stats %+v", stats)
	}
	// Unchanged: nothing runs.
	get(build(1))
	if calls.Load() != 4 || stats.EntriesRun != 0 || stats.CacheHits != 2 || stats.CacheSkipped != 2 {
		t.Fatalf("unchanged rerun: %d calls, stats %+v", calls.Load(), stats)
	}
	// a's input changed: a and c run; d is read, b not needed.
	if r := get(build(3)); r.([]any)[0] != int64(12) || r.([]any)[1] != int64(40) {
		t.Fatalf("changed rerun: %v", r)
	}
	if calls.Load() != 6 || stats.EntriesRun != 2 || stats.CacheHits != 1 {
		t.Fatalf("changed rerun: %d calls, stats %+v", calls.Load(), stats)
	}
	if n, _ := cache.Usage(); n != 6 {
		t.Fatalf("%d entries", n)
	}
	check(t, cache.Clear())
	if n, b := cache.Usage(); n != 0 || b != 0 {
		t.Fatalf("after Clear: %d entries, %d bytes", n, b)
	}
}
