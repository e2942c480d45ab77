// The seed's pipeline, in Go (the same graph, data and output as examples/pipeline.c):
//
//	load-i  = load("myfile.<x>.data")      (three files)
//	clean-i = clean(load-i)
//	analyze = analyze([clean-1, clean-2, clean-3], method="mean")
//	store   = store(analyze, to="results")
//
// Run it from the repository root with `make pipeline-go`, or here with `go run .` after
// `cargo build --release --lib`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	daskr "github.com/daskr/daskr/bindings/go"
)

// load makes a file's readings: a small deterministic generator seeded by the file name
// stands in for reading it (some readings are negative: sensor glitches).
func load(_ context.Context, c *daskr.Call) (any, error) {
	path, err := c.String(0)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	seed := uint64(1469598103934665603)
	for i := 0; i < len(path); i++ {
		seed = (seed ^ uint64(path[i])) * 1099511628211
	}
	readings := make([]float64, 8)
	for i := range readings {
		seed = seed*6364136223846793005 + 1442695040888963407
		readings[i] = float64((seed>>33)%2000)/10.0 - 20.0 // -20.0 .. 179.9
	}
	return readings, nil
}

// clean drops the glitches.
func clean(_ context.Context, c *daskr.Call) (any, error) {
	raw, err := c.Floats(0)
	if err != nil {
		return nil, fmt.Errorf("clean: %w", err)
	}
	good := []float64{}
	for _, x := range raw {
		if x >= 0 {
			good = append(good, x)
		}
	}
	return good, nil
}

// analyze summarises all files with the statistic its keyword argument names.
func analyze(_ context.Context, c *daskr.Call) (any, error) {
	files, err := c.List(0)
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	method, err := c.KwargString("method", "mean")
	if err != nil {
		return nil, err
	}
	if method != "mean" && method != "max" {
		return nil, errors.New(`analyze: method must be "mean" or "max"`)
	}
	var total, max float64
	count := 0
	for _, f := range files {
		readings, _ := f.([]any)
		for _, r := range readings {
			x, ok := r.(float64)
			if !ok {
				continue
			}
			total += x
			if count == 0 || x > max {
				max = x
			}
			count++
		}
	}
	if count == 0 {
		return nil, errors.New("analyze: no readings left after cleaning")
	}
	stat := max
	if method == "mean" {
		stat = total / float64(count)
	}
	return fmt.Sprintf("%d readings from %d files, %s %.2f", count, len(files), method, stat), nil
}

// run builds and computes the pipeline, writing what it prints to w.
func run(w io.Writer) error {
	// store prints the summary and returns the number of bytes it wrote.
	store := func(_ context.Context, c *daskr.Call) (any, error) {
		summary, err := c.String(0)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		to, err := c.KwargString("to", "stdout")
		if err != nil {
			return nil, err
		}
		n, err := fmt.Fprintf(w, "[store -> %s] %s\n", to, summary)
		return n, err
	}
	funcs := map[string]*daskr.Func{}
	for name, fn := range map[string]daskr.TaskFunc{"load": load, "clean": clean, "analyze": analyze, "store": store} {
		f, err := daskr.NewFunc(name, fn)
		if err != nil {
			return err
		}
		defer f.Close()
		funcs[name] = f
	}

	g := daskr.NewGraph()
	defer g.Close()
	files := []string{"myfile.a.data", "myfile.b.data", "myfile.c.data"}
	cleaned := []any{}
	for i, file := range files {
		loadKey, cleanKey := fmt.Sprint("load-", i+1), fmt.Sprint("clean-", i+1)
		if _, err := g.AddTask(loadKey, funcs["load"], []any{file}, nil); err != nil {
			return err
		}
		if _, err := g.AddTask(cleanKey, funcs["clean"], []any{daskr.Ref(loadKey)}, nil); err != nil {
			return err
		}
		cleaned = append(cleaned, daskr.Ref(cleanKey))
	}
	if _, err := g.AddTask("analyze", funcs["analyze"], []any{cleaned}, daskr.Kwargs{"method": "mean"}); err != nil {
		return err
	}
	if _, err := g.AddTask("store", funcs["store"], []any{daskr.Ref("analyze")}, daskr.Kwargs{"to": "results"}); err != nil {
		return err
	}

	var stats daskr.Stats
	written, err := g.GetWith(context.Background(), &daskr.Options{Stats: &stats}, "store")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "store wrote %d bytes; %d tasks ran on %d threads, at most %d results held at once\n",
		written, stats.EntriesRun, stats.Workers, stats.PeakHeld)
	return err
}

func main() {
	if err := run(os.Stdout); err != nil {
		var e *daskr.Error
		if errors.As(err, &e) {
			key := e.Key
			if key == "" {
				key = "-"
			}
			fmt.Fprintf(os.Stderr, "daskr error (%s, key %s): %s\n", e.Kind, key, e.Message)
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
