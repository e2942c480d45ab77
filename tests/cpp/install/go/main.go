// A Go program built against an installed daskr: 'y' = inc('x') with a Go function, then the
// same with the example plugin's inc under the processes scheduler, whose workers are the
// installed daskr command (<prefix>/bin/daskr, found from <prefix>/lib/libdaskr.so).
//
//	consumer_go PLUGIN
package main

import (
	"context"
	"fmt"
	"os"

	daskr "github.com/daskr/daskr/bindings/go"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "Go consumer:", err)
		os.Exit(1)
	}
}

func run(pluginPath string) error {
	ctx := context.Background()
	inc, err := daskr.NewFunc("inc", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return x + 1, err
	})
	if err != nil {
		return err
	}
	defer inc.Close()
	g := daskr.NewGraph()
	defer g.Close()
	if _, err := g.AddValue("x", 41); err != nil {
		return err
	}
	if _, err := g.AddTask("y", inc, []any{daskr.Ref("x")}, nil); err != nil {
		return err
	}
	y, err := g.Get(ctx, "y")
	if err != nil {
		return err
	}
	if y != int64(42) {
		return fmt.Errorf("y = %v, want 42", y)
	}

	plugin, err := daskr.OpenPlugin(pluginPath)
	if err != nil {
		return err
	}
	defer plugin.Close()
	pinc, err := plugin.Func("inc")
	if err != nil {
		return err
	}
	defer pinc.Close()
	p := daskr.NewGraph()
	defer p.Close()
	if _, err := p.AddValue("x", 41); err != nil {
		return err
	}
	if _, err := p.AddTask("y", pinc, []any{daskr.Ref("x")}, nil); err != nil {
		return err
	}
	var stats daskr.Stats
	py, err := p.GetWith(ctx, &daskr.Options{Scheduler: daskr.Processes, Workers: 1, Stats: &stats}, "y")
	if err != nil {
		return err
	}
	if py != int64(42) || stats.Workers != 1 {
		return fmt.Errorf("processes: y = %v (want 42), stats %+v", py, stats)
	}
	daskr.ShutdownWorkers()
	fmt.Printf("Go consumer: y = %v, and %v from a daskr worker (daskr %s)\n", y, py, daskr.Version())
	return nil
}
