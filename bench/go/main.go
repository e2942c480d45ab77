// daskr through the Go package (bindings/go) on the benchmark shapes: the same graphs, keys
// and sizes as bench/daskr_c.c, built the way a Go user would -- Graph.AddTask with Go
// functions as tasks, TaskHandle arguments, Kwargs -- and run with Graph.GetWith. Command
// line and JSON rows as in bench/bench_common.h:
//
//	daskr_go [--json] [--rounds R] [--spin-iters K] [--calibrate] [N] [threads] [shape...]
//
// The sink reads its list argument's length with Call.Len, as the C runner does. Build: cd bench/go &&
// PKG_CONFIG_PATH=$PWD/../../target/release/pkgconfig go build -o ../../target/bench/daskr_go .
// (after `cargo build --release --lib`).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	daskr "github.com/daskr/daskr/bindings/go"
)

const group = 100 // pipeline: analyze runs over groups of this many files

var spinIters int64
var spinSink atomic.Uint64 // keeps the calibration's work observable (never read)

func noop(_ context.Context, c *daskr.Call) (any, error) {
	t := int64(1)
	for i, n := 0, c.NArgs(); i < n; i++ {
		if x, err := c.Int(i); err == nil {
			t += x & 1
		}
	}
	return t & 7, nil
}

func sink(_ context.Context, c *daskr.Call) (any, error) {
	n, err := c.Len(0)
	return int64(n & 7), err
}

func analyze(_ context.Context, c *daskr.Call) (any, error) {
	xs, err := c.Ints(0)
	if err != nil {
		return nil, err
	}
	method, _ := c.KwargString("method", "mean")
	t := int64(0)
	for _, x := range xs {
		t += x
	}
	return (t + int64(method[0])) & 7, nil
}

func store(_ context.Context, c *daskr.Call) (any, error) {
	x, _ := c.Int(0)
	to, _ := c.KwargString("to", "stdout")
	return (x + int64(to[0])) & 7, nil
}

func spinBody(iters int64, x uint64) uint64 {
	for i := int64(0); i < iters; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func spin(_ context.Context, c *daskr.Call) (any, error) {
	return int64(spinBody(spinIters, uint64(time.Now().UnixNano())) & 7), nil
}

// calibrate: spin iterations that take ~1 ms (wall clock on a locked thread, median of 7;
// compare.py passes the C runner's thread-CPU calibration with --spin-iters instead).
func calibrate() int64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const probe = 2000000
	per := make([]float64, 7)
	for t := range per {
		t0 := time.Now()
		spinSink.Add(spinBody(probe, uint64(t)))
		per[t] = time.Since(t0).Seconds() / probe
	}
	s := median(per)
	if s <= 0 {
		return probe
	}
	return int64(1e-3 / s)
}

func median(x []float64) float64 {
	y := append([]float64(nil), x...)
	sort.Float64s(y)
	n := len(y)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return y[n/2]
	}
	return 0.5 * (y[n/2-1] + y[n/2])
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func key(buf []byte, prefix string, i, j int64) string {
	buf = append(buf[:0], prefix...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, i, 10)
	if j >= 0 {
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, j, 10)
	}
	return string(buf)
}

func waveSide(n int64) int64 {
	s := int64(math.Sqrt(float64(n)))
	for (s+1)*(s+1) <= n {
		s++
	}
	for s*s > n {
		s--
	}
	if s < 1 {
		s = 1
	}
	return s
}

type funcs struct{ noop, sink, analyze, store, spin *daskr.Func }

func must(t daskr.TaskHandle, err error) daskr.TaskHandle {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	return t
}

// build returns the key to request and the number of tasks.
func build(g *daskr.Graph, f *funcs, shape string, n int64) (string, int64) {
	var kb [64]byte
	switch shape {
	case "chain":
		prev := must(g.AddTask(key(kb[:], "chain", 0, -1), f.noop, nil, nil))
		for i := int64(1); i < n; i++ {
			prev = must(g.AddTask(key(kb[:], "chain", i, -1), f.noop, []any{prev}, nil))
		}
		return key(kb[:], "chain", n-1, -1), n
	case "independent", "spin":
		fn := f.noop
		if shape == "spin" {
			fn = f.spin
		}
		refs := make([]any, n)
		for i := int64(0); i < n; i++ {
			refs[i] = must(g.AddTask(key(kb[:], "ind", i, -1), fn, nil, nil))
		}
		must(g.AddTask("sink", f.sink, []any{refs}, nil))
		return "sink", n + 1
	case "tree":
		level := make([]daskr.TaskHandle, n)
		for i := int64(0); i < n; i++ {
			level[i] = must(g.AddTask(key(kb[:], "leaf", i, -1), f.noop, nil, nil))
		}
		width, depth, total := n, int64(0), n
		for width > 1 {
			depth++
			w := int64(0)
			for i := int64(0); i+1 < width; i += 2 {
				level[w] = must(g.AddTask(key(kb[:], "sum", depth, i/2), f.noop, []any{level[i], level[i+1]}, nil))
				w++
			}
			if width&1 == 1 {
				level[w] = level[width-1]
				w++
			}
			total += width / 2
			width = w
		}
		k, _ := g.Key(level[0])
		return k, total
	case "wavefront":
		side := waveSide(n)
		row := make([]daskr.TaskHandle, side)
		for i := int64(0); i < side; i++ {
			for j := int64(0); j < side; j++ {
				args := make([]any, 0, 2)
				if j > 0 {
					args = append(args, row[j-1])
				}
				if i > 0 {
					args = append(args, row[j])
				}
				row[j] = must(g.AddTask(key(kb[:], "wave", i, j), f.noop, args, nil))
			}
		}
		return key(kb[:], "wave", side-1, side-1), side * side
	case "pipeline":
		files := n / 3
		if files < 1 {
			files = 1
		}
		groups := (files + group - 1) / group
		stores := make([]any, 0, groups)
		for grp := int64(0); grp < groups; grp++ {
			cleaned := make([]any, 0, group)
			for i := grp * group; i < files && i < (grp+1)*group; i++ {
				load := must(g.AddTask(key(kb[:], "load", i, -1), f.noop, []any{i}, nil))
				cleaned = append(cleaned, must(g.AddTask(key(kb[:], "clean", i, -1), f.noop, []any{load}, nil)))
			}
			an := must(g.AddTask(key(kb[:], "analyze", grp, -1), f.analyze, []any{cleaned}, daskr.Kwargs{"method": "mean"}))
			stores = append(stores, must(g.AddTask(key(kb[:], "store", grp, -1), f.store, []any{an}, daskr.Kwargs{"to": "results"})))
		}
		must(g.AddTask("pipeline", f.sink, []any{stores}, nil))
		return "pipeline", 2*files + 2*groups + 1
	}
	fmt.Fprintln(os.Stderr, "unknown shape", shape)
	os.Exit(2)
	return "", 0
}

func main() {
	asJSON, doCalibrate := false, false
	rounds := 5
	if s := os.Getenv("ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	spinArg := int64(-1)
	var pos []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--json":
			asJSON = true
		case a == "--calibrate":
			doCalibrate = true
		case a == "--rounds" && i+1 < len(args):
			i++
			rounds, _ = strconv.Atoi(args[i])
		case a == "--spin-iters" && i+1 < len(args):
			i++
			spinArg, _ = strconv.ParseInt(args[i], 10, 64)
		case strings.HasPrefix(a, "-"):
			fmt.Fprintln(os.Stderr, "usage: daskr_go [--json] [--rounds R] [--spin-iters K] [--calibrate] [N] [threads] [shape...]")
			os.Exit(2)
		default:
			pos = append(pos, a)
		}
	}
	if doCalibrate {
		fmt.Println(calibrate())
		return
	}
	if rounds < 1 {
		rounds = 1
	}
	n, threads := int64(1000000), 0
	if len(pos) > 0 {
		n, _ = strconv.ParseInt(pos[0], 10, 64)
	}
	if len(pos) > 1 {
		threads, _ = strconv.Atoi(pos[1])
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	shapes := []string{"independent", "chain", "tree", "wavefront", "pipeline"}
	if len(pos) > 2 {
		shapes = pos[2:]
	}
	f := &funcs{
		noop: daskr.MustFunc("noop", noop), sink: daskr.MustFunc("sink", sink),
		analyze: daskr.MustFunc("analyze", analyze), store: daskr.MustFunc("store", store),
		spin: daskr.MustFunc("spin", spin),
	}
	ctx := context.Background()
	for _, shape := range shapes {
		if shape == "spin" && spinIters == 0 {
			spinIters = spinArg
			if spinIters < 0 {
				spinIters = calibrate()
			}
		}
		var build_, run_, total_, free_ []float64
		var rss0, rss1 int64
		var tasks int64
		peak := uint64(0)
		// Timed rounds without stats; one more, untimed, measures peak_held (as daskr_c.c).
		for r := 0; r <= rounds; r++ {
			measure := r == rounds
			before := rss()
			t0 := time.Now()
			g := daskr.NewGraph()
			k, nt := build(g, f, shape, n)
			tasks = nt
			t1 := time.Now()
			var st daskr.Stats
			opts := &daskr.Options{Workers: threads}
			if measure {
				opts.Stats = &st
			}
			if _, err := g.GetWith(ctx, opts, k); err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				os.Exit(1)
			}
			t2 := time.Now()
			after := rss()
			t3 := time.Now()
			g.Close()
			t4 := time.Now()
			if r == 0 {
				rss0, rss1 = before, after
			}
			if !measure {
				build_ = append(build_, t1.Sub(t0).Seconds())
				run_ = append(run_, t2.Sub(t1).Seconds())
				total_ = append(total_, t2.Sub(t0).Seconds())
				free_ = append(free_, t4.Sub(t3).Seconds())
				continue
			}
			peak = st.PeakHeld
			if int64(st.EntriesRun) != tasks {
				fmt.Fprintf(os.Stderr, "%s: %d entries ran, expected %d\n", shape, st.EntriesRun, tasks)
				os.Exit(1)
			}
		}
		row := map[string]any{
			"system": "daskr-go", "shape": shape, "threads": threads, "tasks": tasks,
			"build_s": median(build_), "run_s": median(run_),
			"ns_per_task": median(total_) * 1e9 / float64(tasks), "peak_held": peak,
			"free_s": median(free_), "rounds": rounds, "n": n,
			// per round, as bench_common.h: round 0 is the process's first graph (cold)
			"cold_ns_per_task": total_[0] * 1e9 / float64(tasks), "warm_ns_per_task": nil,
			"build_rounds_s": build_, "run_rounds_s": run_,
		}
		if rounds > 1 {
			row["warm_ns_per_task"] = median(total_[1:]) * 1e9 / float64(tasks)
		}
		if rss0 >= 0 && rss1 >= 0 {
			row["bytes_per_task"] = math.Round(float64(rss1-rss0)/float64(tasks)*10) / 10
		} else {
			row["bytes_per_task"] = nil
		}
		if shape == "spin" {
			row["spin_iters"] = spinIters
		}
		if asJSON {
			b, _ := json.Marshal(row)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-9s %-12s tasks=%d threads=%d build+run=%.0f ns/task (build %.0f, run %.0f; free %.0f) peak_held=%d rss=%v B/task\n",
				"daskr-go", shape, tasks, threads, row["ns_per_task"], median(build_)*1e9/float64(tasks),
				median(run_)*1e9/float64(tasks), median(free_)*1e9/float64(tasks), peak, row["bytes_per_task"])
		}
	}
	f.noop.Close()
	f.sink.Close()
	f.analyze.Close()
	f.store.Close()
	f.spin.Close()
}
