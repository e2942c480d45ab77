package daskr_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	daskr "github.com/daskr/daskr/bindings/go"
)

// The processes scheduler from Go: a Go program cannot be forked, so its workers are fresh
// `daskr worker` processes (target/release/daskr, next to libdaskr.so) running plugin tasks.

var (
	crashyOnce sync.Once
	crashyPath string
	crashyErr  error
)

// crashy builds tests/plugins/crashy.c (tasks that crash on purpose) and opens it.
func crashy(t *testing.T) *daskr.PluginLib {
	t.Helper()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	if _, err := os.Stat(filepath.Join(root, "target", "release", "daskr")); err != nil {
		t.Fatalf("target/release/daskr is missing (the processes scheduler's workers from Go): run `cargo build --release` (make test-go does)")
	}
	crashyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "daskr-go-crashy")
		if err != nil {
			crashyErr = err
			return
		}
		crashyPath = filepath.Join(dir, "libcrashy.so")
		cc := os.Getenv("CC")
		if cc == "" {
			cc = "cc"
		}
		out, err := exec.Command(cc, "-std=c11", "-shared", "-fPIC", "-I"+filepath.Join(root, "include"),
			filepath.Join(root, "tests", "plugins", "crashy.c"), "-o", crashyPath).CombinedOutput()
		if err != nil {
			crashyErr = errors.New(string(out) + err.Error())
		}
	})
	if crashyErr != nil {
		t.Fatalf("building the crashy plugin: %v", crashyErr)
	}
	p, err := daskr.OpenPlugin(crashyPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func pluginFunc(t *testing.T, p *daskr.PluginLib, symbol string) *daskr.Func {
	t.Helper()
	f, err := p.Func(symbol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func processes(workers int) *daskr.Options {
	return &daskr.Options{Scheduler: daskr.Processes, Workers: workers}
}

func TestProcessesRunPluginTasksInDaskrWorkers(t *testing.T) {
	noLeaks(t)
	p := crashy(t)
	inc, add, pid := pluginFunc(t, p, "inc"), pluginFunc(t, p, "add"), pluginFunc(t, p, "pid")
	if !strings.HasSuffix(inc.Name(), ":inc") {
		t.Errorf("name %q", inc.Name())
	}
	g := daskr.NewGraph()
	defer g.Close()
	x, _ := g.AddValue("x", 1)
	g.AddTask("y", inc, []any{x}, nil)
	var leaves []any
	for i := 0; i < 50; i++ {
		k := "l" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		g.AddTask(k, add, []any{daskr.Ref("y"), i}, nil)
		leaves = append(leaves, daskr.Ref(k))
	}
	g.AddTask("total", add, leaves, nil)
	g.AddTask("pid", pid, nil, nil)
	want, err := g.GetWith(context.Background(), &daskr.Options{Scheduler: daskr.Threads}, "total", "y")
	if err != nil {
		t.Fatal(err)
	}
	var stats daskr.Stats
	opts := processes(2)
	opts.Stats = &stats
	got, err := g.GetWith(context.Background(), opts, "total", "y")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || stats.Workers != 2 || stats.EntriesRun != stats.Entries {
		t.Fatalf("got %v (want %v), stats %+v", got, want, stats)
	}
	// The task ran in a `daskr worker` process, not in this one.
	w, err := g.GetWith(context.Background(), processes(1), "pid")
	if err != nil {
		t.Fatal(err)
	}
	workerPid := int(w.(int64))
	if workerPid == os.Getpid() {
		t.Fatal("the task ran in the Go process")
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(workerPid) + "/exe"); err == nil && filepath.Base(exe) != "daskr" {
		t.Errorf("worker executable %s", exe)
	}
}

func TestProcessesRefuseGoFunctionsClearly(t *testing.T) {
	noLeaks(t)
	g := daskr.NewGraph()
	defer g.Close()
	f := daskr.MustFunc("double", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return 2 * x, err
	})
	defer f.Close()
	g.AddValue("x", 4)
	g.AddTask("gofn", f, []any{daskr.Ref("x")}, nil)
	_, err := g.GetWith(context.Background(), processes(2), "gofn")
	var e *daskr.Error
	if !errors.As(err, &e) || e.Kind != daskr.InvalidArgument || e.Key != "gofn" {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"Go program", "cannot be forked", "plugin tasks", "threads scheduler"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message lacks %q: %s", want, e.Message)
		}
	}
	// The threads scheduler runs it.
	if v, err := g.Get(context.Background(), "gofn"); err != nil || v != int64(8) {
		t.Fatalf("threads: %v %v", v, err)
	}
}

func TestProcessesCrashesRetriesAndTimeouts(t *testing.T) {
	noLeaks(t)
	p := crashy(t)
	g := daskr.NewGraph()
	defer g.Close()
	g.AddValue("x", 1)
	g.AddTask("y", pluginFunc(t, p, "inc"), []any{daskr.Ref("x")}, nil)
	for _, c := range []struct{ symbol, how string }{
		{"segfault", "SIGSEGV"}, {"abort_now", "SIGABRT"}, {"exit3", "exited with status 3"},
	} {
		g.AddTask(c.symbol, pluginFunc(t, p, c.symbol), nil, nil)
		_, err := g.GetWith(context.Background(), processes(2), "y", c.symbol)
		var e *daskr.Error
		if !errors.As(err, &e) || e.Kind != daskr.WorkerDied || e.Key != c.symbol || !strings.Contains(e.Message, c.how) {
			t.Errorf("%s: %v", c.symbol, err)
		}
		// The Go program is alive and the next Get works.
		if v, err := g.GetWith(context.Background(), processes(2), "y"); err != nil || v != int64(2) {
			t.Fatalf("after %s: %v %v", c.symbol, v, err)
		}
	}
	marker := filepath.Join(t.TempDir(), "crashed")
	g.AddTask("flaky", pluginFunc(t, p, "crash_once"), []any{marker, 9}, nil)
	opts := processes(1)
	opts.Retries = 1
	if v, err := g.GetWith(context.Background(), opts, "flaky"); err != nil || v != int64(9) {
		t.Fatalf("retry: %v %v", v, err)
	}
	g.AddTask("slow", pluginFunc(t, p, "sleep_ms"), []any{20000, 1}, nil)
	opts = processes(1)
	opts.TaskTimeout = 200 * time.Millisecond
	started := time.Now()
	_, err := g.GetWith(context.Background(), opts, "slow")
	var e *daskr.Error
	if !errors.As(err, &e) || e.Kind != daskr.WorkerDied || e.Key != "slow" || !strings.Contains(e.Message, "timeout of 200 ms") {
		t.Fatalf("timeout: %v", err)
	}
	if time.Since(started) > 10*time.Second {
		t.Errorf("the timeout took %v", time.Since(started))
	}
	// Cancelling the context stops the run: the running task finishes, no other starts.
	naps := []any{}
	for i := 0; i < 6; i++ {
		k := "nap" + strconv.Itoa(i)
		g.AddTask(k, pluginFunc(t, p, "sleep_ms"), []any{300, i}, nil)
		naps = append(naps, k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	started = time.Now()
	_, err = g.GetWith(ctx, processes(1), naps)
	if !errors.As(err, &e) || e.Kind != daskr.Cancelled || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}
	if time.Since(started) > 1500*time.Millisecond {
		t.Errorf("cancelled after %v", time.Since(started))
	}
	opts = processes(1)
	opts.Retries = -1
	if _, err := g.GetWith(context.Background(), opts, "y"); !errors.As(err, &e) || e.Kind != daskr.InvalidArgument {
		t.Fatalf("negative retries: %v", err)
	}
	// A timeout under sync or threads would be ignored: refused, naming it. Retries are
	// honoured by every scheduler (a failing task runs again).
	for _, s := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		opts = &daskr.Options{Scheduler: s, TaskTimeout: time.Second}
		if _, err := g.GetWith(context.Background(), opts, "y"); !errors.As(err, &e) || e.Kind != daskr.InvalidArgument ||
			!strings.Contains(e.Message, "task_timeout") {
			t.Fatalf("timeout under %v: %v", s, err)
		}
		opts = &daskr.Options{Scheduler: s, Retries: 1}
		if _, err := g.GetWith(context.Background(), opts, "y"); err != nil {
			t.Fatalf("retries under %v: %v", s, err)
		}
	}
}

// A Go program's processes get uses a result cache too: its fresh `daskr worker` processes
// are sent what was found and the hashes to store under, and write the results themselves.
func TestProcessesUseTheCacheFromGo(t *testing.T) {
	noLeaks(t)
	p := crashy(t)
	inc, add := pluginFunc(t, p, "inc"), pluginFunc(t, p, "add")
	cache, err := daskr.OpenCache(t.TempDir())
	check(t, err)
	defer cache.Close()
	build := func(x int) *daskr.Graph {
		g := daskr.NewGraph()
		g.AddValue("x", x)
		g.AddTask("y", inc, []any{daskr.Ref("x")}, nil)
		g.AddTask("z", add, []any{daskr.Ref("y"), 10}, nil)
		g.AddTask("w", inc, []any{100}, nil)
		return g
	}
	var stats daskr.Stats
	opts := processes(2)
	opts.Cache, opts.Stats = cache, &stats
	get := func(x int) any {
		g := build(x)
		defer g.Close()
		return must[any](t)(g.GetWith(context.Background(), opts, "z", "w"))
	}
	if r := get(1); !reflect.DeepEqual(r, []any{int64(12), int64(101)}) || stats.EntriesRun != 4 || stats.CacheMisses != 3 {
		t.Fatalf("first run: %v, stats %+v", r, stats)
	}
	if n, b := cache.Usage(); n != 3 || b != stats.CacheBytesWritten {
		t.Fatalf("%d entries, %d bytes; stats %+v", n, b, stats)
	}
	if r := get(1); !reflect.DeepEqual(r, []any{int64(12), int64(101)}) || stats.EntriesRun != 0 || stats.CacheHits != 2 {
		t.Fatalf("unchanged rerun: %v, stats %+v", r, stats)
	}
	// x changed: x (a literal), y and z run in the workers; w is read.
	if r := get(5); !reflect.DeepEqual(r, []any{int64(16), int64(101)}) || stats.EntriesRun != 3 || stats.CacheHits != 1 {
		t.Fatalf("changed rerun: %v, stats %+v", r, stats)
	}
	if n, _ := cache.Usage(); n != 5 {
		t.Fatalf("%d entries", n)
	}
}
