package daskr_test

// The README's flows as Examples: `go test` runs each and checks its output. The plugin ones
// need the example plugin built (make plugins: target/plugins/libexample.so).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	daskr "github.com/daskr/daskr/bindings/go"
)

// examplePlugin is the example plugin as the repository builds it.
var examplePlugin = filepath.Join("..", "..", "target", "plugins", "libexample.so")

// Build a graph of Go tasks and compute one key: only the tasks it needs run.
func Example() {
	inc := daskr.MustFunc("inc", func(ctx context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return x + 1, err
	})
	defer inc.Close()
	add := daskr.MustFunc("add", func(ctx context.Context, c *daskr.Call) (any, error) {
		a, err := c.Int(0)
		if err != nil {
			return nil, err
		}
		b, err := c.Int(1)
		return a + b, err
	})
	defer add.Close()

	g := daskr.NewGraph()
	defer g.Close()
	g.AddValue("x", 1)
	g.AddTask("y", inc, []any{daskr.Ref("x")}, nil)
	g.AddTask("z", add, []any{daskr.Ref("y"), 10}, nil)

	z, err := g.Get(context.Background(), "z")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("z =", z)
	// Output: z = 12
}

// A graph of plugin tasks: C functions in a shared library loaded at run time. Plugin tasks
// also run under the Processes scheduler (in `daskr worker` processes).
func ExampleOpenPlugin() {
	plugin, err := daskr.OpenPlugin(examplePlugin)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer plugin.Close()
	inc, err := plugin.Func("inc")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer inc.Close()
	fmt.Println(inc.Name())

	g := daskr.NewGraph()
	defer g.Close()
	g.AddValue("x", 41)
	g.AddTask("y", inc, []any{daskr.Ref("x")}, nil)
	y, err := g.Get(context.Background(), "y")
	fmt.Println(y, err)
	// Output:
	// example:inc
	// 42 <nil>
}

// Run a graph file (docs/graph-format.md), as `daskr run FILE` does: its default keys.
func ExampleReadGraphFile() {
	dir, err := os.MkdirTemp("", "daskr-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	plugin, _ := filepath.Abs(examplePlugin)
	file := filepath.Join(dir, "graph.json")
	text := fmt.Sprintf(`{
  "plugins": {"ex": %q},
  "graph": {
    "x": 1,
    "y": {"fn": "ex:inc", "args": ["x"]},
    "z": {"fn": "ex:add", "args": ["y", 10]}
  },
  "keys": ["z", "y"]
}`, plugin)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	g, keys, err := daskr.ReadGraphFile(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	fmt.Println("keys:", keys)
	results, err := g.Get(context.Background(), keys)
	fmt.Println(results, err)
	// Output:
	// keys: [z y]
	// [12 2] <nil>
}

// Cancellation: each task receives its Get's context. When the context ends (here a
// deadline), running tasks see ctx.Done(), no new task starts, and the Get returns an error
// wrapping ctx.Err().
func ExampleGraph_Get_cancel() {
	wait := daskr.MustFunc("wait", func(ctx context.Context, c *daskr.Call) (any, error) {
		<-ctx.Done() // a long task watches its context
		return nil, ctx.Err()
	})
	defer wait.Close()
	g := daskr.NewGraph()
	defer g.Close()
	g.AddTask("w", wait, nil, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := g.Get(ctx, "w")
	var e *daskr.Error
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.As(err, &e) && e.Kind == daskr.Cancelled)
	// Output: true true
}

// A Go task's error stays itself inside the Get's error, which names the task.
func ExampleError() {
	errNoData := errors.New("no data")
	load := daskr.MustFunc("load", func(ctx context.Context, c *daskr.Call) (any, error) {
		return nil, fmt.Errorf("load: %w", errNoData)
	})
	defer load.Close()
	g := daskr.NewGraph()
	defer g.Close()
	g.AddTask("data", load, nil, nil)

	_, err := g.Get(context.Background(), "data")
	var e *daskr.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.Key, errors.Is(err, errNoData))
	}
	// Output: task_failed data true
}
