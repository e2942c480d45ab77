package daskr_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	daskr "github.com/daskr/daskr/bindings/go"
)

// noLeaks records the live cgo handle count and checks, when the test ends, that it is back
// to where it was (every graph and function the test made must be closed by then).
func noLeaks(t *testing.T) {
	t.Helper()
	base := daskr.LiveHandles()
	t.Cleanup(func() {
		if n := daskr.LiveHandles(); n != base {
			t.Errorf("live cgo handles: %d after the test, %d before", n, base)
		}
	})
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newFunc(t *testing.T, name string, fn daskr.TaskFunc) *daskr.Func {
	t.Helper()
	f, err := daskr.NewFunc(name, fn)
	check(t, err)
	t.Cleanup(f.Close)
	return f
}

func newGraph(t *testing.T) *daskr.Graph {
	g := daskr.NewGraph()
	t.Cleanup(g.Close)
	return g
}

func incFunc(t *testing.T) *daskr.Func {
	return newFunc(t, "inc", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return x + 1, err
	})
}

func asError(t *testing.T, err error) *daskr.Error {
	t.Helper()
	var e *daskr.Error
	if !errors.As(err, &e) {
		t.Fatalf("expected a *daskr.Error, got %T: %v", err, err)
	}
	return e
}

func TestAHandleFromAnotherGraphIsRefused(t *testing.T) {
	noLeaks(t)
	mine, theirs := newGraph(t), newGraph(t)
	own := must[daskr.TaskHandle](t)(mine.AddValue("x", 1))
	foreign := must[daskr.TaskHandle](t)(theirs.AddValue("elsewhere", 2)) // the same index as "x"
	if own == foreign {
		t.Fatal("two graphs handed out the same handle")
	}
	var e *daskr.Error
	if _, err := mine.AddTask("t", incFunc(t), []any{foreign}, nil); !errors.As(err, &e) ||
		e.Kind != daskr.InvalidArgument || e.Key != "t" {
		t.Fatalf("AddTask with a foreign handle: %v", err)
	}
	if _, err := mine.Add("l", []any{own, foreign}); !errors.As(err, &e) || e.Kind != daskr.InvalidArgument {
		t.Fatalf("Add with a foreign handle in a list: %v", err)
	}
	if _, ok := mine.Key(foreign); ok {
		t.Fatal("Key of a foreign handle")
	}
	if k, ok := theirs.Key(foreign); !ok || k != "elsewhere" {
		t.Fatalf("Key(foreign) = %q, %v", k, ok)
	}
	must[daskr.TaskHandle](t)(mine.AddTask("t", incFunc(t), []any{own}, nil))
	if v := must[any](t)(mine.Get(context.Background(), "t")); v != int64(2) {
		t.Fatalf("t = %#v", v)
	}
}

func TestIncrement(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	x := must[daskr.TaskHandle](t)(g.AddValue("x", 1))
	must[daskr.TaskHandle](t)(g.AddTask("y", incFunc(t), []any{x}, nil))
	y := must[any](t)(g.Get(context.Background(), "y"))
	if y != int64(2) {
		t.Fatalf("y = %#v", y)
	}
	if g.Len() != 2 || !g.Contains("y") || g.Contains("z") {
		t.Fatal("Len/Contains")
	}
	if k, ok := g.Key(x); !ok || k != "x" {
		t.Fatalf("Key(x) = %q, %v", k, ok)
	}
	if daskr.Version() == "" || daskr.ABIVersion() != daskr.HeaderABIVersion {
		t.Fatal("version")
	}
}

func TestArgumentAccessors(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	var mu sync.Mutex
	var problems []string
	expect := func(what string, got, want any) {
		if !reflect.DeepEqual(got, want) {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s: got %#v, want %#v", what, got, want))
			mu.Unlock()
		}
	}
	f := newFunc(t, "check", func(_ context.Context, c *daskr.Call) (any, error) {
		expect("key", c.Key(), "t")
		expect("nargs", c.NArgs(), 8)
		i, err := c.Int(0)
		expect("Int", []any{i, err}, []any{int64(-5), nil})
		fl, _ := c.Float(1)
		expect("Float", fl, 2.5)
		fi, _ := c.Float(0)
		expect("Float of int", fi, -5.0)
		s, _ := c.String(2)
		expect("String", s, "héllo")
		b, _ := c.Bool(3)
		expect("Bool", b, true)
		ints, _ := c.Ints(4)
		expect("Ints", ints, []int64{1, 2, 3})
		l, _ := c.List(5)
		expect("List", l, []any{[]any{"a"}, []any{}, []any{"b", "c"}})
		n5, err := c.Len(5)
		expect("Len", []any{n5, err}, []any{3, nil})
		_, err = c.Len(0)
		expect("Len of int", fmt.Sprint(err), "type_mismatch: argument 0 of task 't': expected a list")
		by, _ := c.Bytes(6)
		expect("Bytes", by, []byte{0, 255})
		a, _ := c.Arg(7)
		expect("Arg null", a, nil)
		strs, _ := c.Strings(8 - 3) // not a list of strings (nested lists)
		expect("Strings mismatch", strs, []string(nil))
		_, err = c.String(0)
		expect("String of int", fmt.Sprint(err), "type_mismatch: argument 0: expected string, got int")
		_, err = c.Int(99)
		expect("missing", fmt.Sprint(err), "invalid_argument: missing argument 99 (the task has 8)")
		_, err = c.Int(-1)
		expect("negative", fmt.Sprint(err), "invalid_argument: missing argument -1 (the task has 8)")
		_, err = c.Int(2)
		expect("Int of string", fmt.Sprint(err), "type_mismatch: argument 2: expected int, got string")

		expect("nkwargs", c.NKwargs(), 3)
		sep, _ := c.KwargString("sep", "?")
		expect("KwargString", sep, ",")
		n, _ := c.KwargInt("n", 0)
		expect("KwargInt from ref", n, int64(3))
		def, _ := c.KwargString("absent", "fallback")
		expect("default", def, "fallback")
		flag, _ := c.KwargBool("flag", true)
		expect("KwargBool", flag, false)
		_, err = c.KwargInt("sep", 0)
		expect("KwargInt mismatch", fmt.Sprint(err), `type_mismatch: keyword argument "sep": expected int, got string`)
		v, ok := c.Kwarg("sep")
		expect("Kwarg", []any{v, ok}, []any{",", true})
		v, ok = c.Kwarg("absent")
		expect("Kwarg absent", []any{v, ok}, []any{nil, false})
		expect("Kwargs", c.Kwargs(), map[string]any{"sep": ",", "n": int64(3), "flag": false})
		return "ok", nil
	})
	must[daskr.TaskHandle](t)(g.AddValue("n", 3))
	must[daskr.TaskHandle](t)(g.AddTask("t", f,
		[]any{-5, 2.5, "héllo", true, []int64{1, 2, 3}, []any{[]string{"a"}, []any{}, []any{"b", "c"}}, []byte{0, 255}, nil},
		daskr.Kwargs{"sep": ",", "n": daskr.Ref("n"), "flag": false}))
	if r := must[any](t)(g.Get(context.Background(), "t")); r != "ok" {
		t.Fatalf("result %#v", r)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Tasks over handles only are added in one cgo call when their key and argument list are
// small (daskr_go_add_task_handles), the general way otherwise: both give the same graph.
func TestAddTaskOverHandlesShortAndLong(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	sum := newFunc(t, "sum", func(_ context.Context, c *daskr.Call) (any, error) {
		total := int64(0)
		for i := 0; i < c.NArgs(); i++ {
			x, err := c.Int(i)
			if err != nil {
				return nil, err
			}
			total += x
		}
		return total, nil
	})
	var xs []any
	for i := 1; i <= 20; i++ {
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("x%d", i)
		}
		xs = append(xs, must[daskr.TaskHandle](t)(g.AddValue(key, i)))
	}
	long := strings.Repeat("k", 200)
	cases := []struct {
		key  string
		args []any
		want int64
	}{
		{"none", nil, 0},
		{"three", xs[:3], 6},
		{"sixteen", xs[:16], 136},
		{"twenty", xs, 210},
		{long, xs[:2], 3},
		{strings.Repeat("j", 127), xs[:4], 10},
	}
	for _, c := range cases {
		must[daskr.TaskHandle](t)(g.AddTask(c.key, sum, c.args, nil))
	}
	anon := must[daskr.TaskHandle](t)(g.AddTask("", sum, xs[:5], nil))
	for _, c := range cases {
		if got := must[any](t)(g.Get(context.Background(), c.key)); got != c.want {
			t.Errorf("%.10s...: got %v, want %d", c.key, got, c.want)
		}
	}
	must[daskr.TaskHandle](t)(g.Add("over-anon", anon))
	if got := must[any](t)(g.Get(context.Background(), "over-anon")); got != int64(15) {
		t.Errorf("anonymous: got %v, want 15", got)
	}
	var e *daskr.Error
	if _, err := g.AddTask("three", sum, xs[:3], nil); !errors.As(err, &e) || e.Kind != daskr.InvalidGraph {
		t.Errorf("a key added twice: %v", err)
	}
}

type point struct{ X, Y int }

func TestResultsAsGoValues(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	ret := func(v any) *daskr.Func {
		return newFunc(t, "ret", func(context.Context, *daskr.Call) (any, error) { return v, nil })
	}
	p := &point{1, 2}
	cases := []struct {
		key       string
		ret, want any
	}{
		{"int", 7, int64(7)},
		{"uint8", uint8(200), int64(200)},
		{"float", 0.5, 0.5},
		{"float32", float32(0.25), 0.25},
		{"string", "s", "s"},
		{"bytes", []byte("b"), []byte("b")},
		{"bool", true, true},
		{"nil", nil, nil},
		{"list", []any{1, "a", []any{2.5}}, []any{int64(1), "a", []any{2.5}}},
		{"ints", []int{1, 2}, []any{int64(1), int64(2)}},
		{"object", p, p},
		{"struct", point{3, 4}, point{3, 4}},
		{"map", map[string]int{"a": 1}, map[string]int{"a": 1}},
		{"wrapped", daskr.Object{Value: "kept as an object"}, "kept as an object"},
		{"nilptr", (*point)(nil), nil},
	}
	for _, c := range cases {
		must[daskr.TaskHandle](t)(g.AddTask(c.key, ret(c.ret), nil, nil))
	}
	for _, c := range cases {
		got := must[any](t)(g.Get(context.Background(), c.key))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.key, got, c.want)
		}
	}
	if got := must[any](t)(g.Get(context.Background(), "object")); got.(*point) != p {
		t.Error("the object came back as a different pointer")
	}
	// A result that cannot be converted fails the task.
	must[daskr.TaskHandle](t)(g.AddTask("huge", ret(uint64(1<<63)), nil, nil))
	_, err := g.Get(context.Background(), "huge")
	if e := asError(t, err); e.Kind != daskr.TaskFailed || e.Key != "huge" || !strings.Contains(e.Message, "does not fit") {
		t.Fatalf("%+v", e)
	}
}

func TestRequestShapes(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	must[daskr.TaskHandle](t)(g.AddValue("a", 1))
	must[daskr.TaskHandle](t)(g.AddValue("b", "two"))
	must[daskr.TaskHandle](t)(g.AddTask("c", incFunc(t), []any{daskr.Ref("a")}, nil))
	ctx := context.Background()
	for _, c := range []struct {
		keys []any
		want any
	}{
		{[]any{"a"}, int64(1)},
		{[]any{"a", "b"}, []any{int64(1), "two"}},
		{[]any{[]string{"c", "c"}}, []any{int64(2), int64(2)}},
		{[]any{"a", []any{"b", []any{"c"}}}, []any{int64(1), []any{"two", []any{int64(2)}}}},
		{[]any{}, []any{}},
		{[]any{[]any{}}, []any{}},
	} {
		got, err := g.Get(ctx, c.keys...)
		check(t, err)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Get(%v) = %#v, want %#v", c.keys, got, c.want)
		}
	}
	_, err := g.Get(ctx, 5)
	if e := asError(t, err); e.Kind != daskr.InvalidArgument {
		t.Fatal(e)
	}
}

func TestComputations(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	add := newFunc(t, "add", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		if err != nil {
			return nil, err
		}
		y, err := c.KwargInt("y", 0)
		return x + y, err
	})
	one := must[daskr.TaskHandle](t)(g.AddValue("one", 1))
	must[daskr.TaskHandle](t)(g.Add("pair", []any{one, daskr.Inline{Func: add, Args: []any{one}, Kwargs: daskr.Kwargs{"y": 10}}}))
	must[daskr.TaskHandle](t)(g.AddAlias("alias", "pair"))
	later := must[daskr.TaskHandle](t)(g.Handle("later"))
	must[daskr.TaskHandle](t)(g.AddTask("use-later", add, []any{later}, daskr.Kwargs{"y": daskr.Ref("one")}))
	must[daskr.TaskHandle](t)(g.AddValue("later", 5))
	must[daskr.TaskHandle](t)(g.Add("ref-alias", daskr.Ref("one")))
	got := must[any](t)(g.Get(context.Background(), "alias", "use-later", "ref-alias"))
	if want := []any{[]any{int64(1), int64(11)}, int64(6), int64(1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

type counted struct {
	n int64
}

func TestGoObjectsBetweenTasksAndNoLeakedHandles(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	make_ := newFunc(t, "make", func(_ context.Context, c *daskr.Call) (any, error) {
		n, err := c.Int(0)
		return &counted{n: n}, err
	})
	use := newFunc(t, "use", func(_ context.Context, c *daskr.Call) (any, error) {
		o, err := c.Object(0)
		if err != nil {
			return nil, err
		}
		return o.(*counted).n + 1, nil
	})
	must[daskr.TaskHandle](t)(g.AddTask("make", make_, []any{20}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("use", use, []any{daskr.Ref("make")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("misuse", use, []any{5}, nil))
	base := daskr.LiveHandles()
	if r := must[any](t)(g.Get(context.Background(), "use")); r != int64(21) {
		t.Fatalf("use = %#v", r)
	}
	if n := daskr.LiveHandles(); n != base {
		t.Fatalf("handles after a get: %d, before %d", n, base)
	}
	r := must[any](t)(g.Get(context.Background(), "make", "use"))
	if o := r.([]any)[0].(*counted); o.n != 20 {
		t.Fatalf("%#v", o)
	}
	if n := daskr.LiveHandles(); n != base {
		t.Fatalf("handles after a get returning an object: %d, before %d", n, base)
	}
	_, err := g.Get(context.Background(), "misuse")
	if e := asError(t, err); e.Kind != daskr.TaskFailed || !strings.Contains(e.Message, "expected a Go object, got int") {
		t.Fatalf("%+v", e)
	}
	// A literal Go object lives (one handle) as long as the graph does.
	must[daskr.TaskHandle](t)(g.AddValue("lit", &counted{n: 41}))
	must[daskr.TaskHandle](t)(g.AddTask("use-lit", use, []any{daskr.Ref("lit")}, nil))
	if n := daskr.LiveHandles(); n != base+1 {
		t.Fatalf("handles with a literal object: %d, want %d", n, base+1)
	}
	if r := must[any](t)(g.Get(context.Background(), "use-lit")); r != int64(42) {
		t.Fatalf("use-lit = %#v", r)
	}
}

func TestHandlesReleasedWhenGraphAndFuncsClose(t *testing.T) {
	base := daskr.LiveHandles()
	g := daskr.NewGraph()
	f := daskr.MustFunc("f", func(context.Context, *daskr.Call) (any, error) { return 1, nil })
	for i := 0; i < 10; i++ {
		must[daskr.TaskHandle](t)(g.AddTask(fmt.Sprint("t", i), f, nil, nil))
	}
	must[daskr.TaskHandle](t)(g.AddValue("obj", &point{}))
	f.Close() // the graph still uses it
	if n := daskr.LiveHandles(); n != base+2 {
		t.Fatalf("handles: %d, want %d (a function and an object)", n, base+2)
	}
	if r := must[any](t)(g.Get(context.Background(), "t3")); r != int64(1) {
		t.Fatal(r)
	}
	g.Close()
	g.Close()
	if n := daskr.LiveHandles(); n != base {
		t.Fatalf("handles after Close: %d, want %d", n, base)
	}
	_, err := g.Get(context.Background(), "t3")
	if e := asError(t, err); e.Kind != daskr.InvalidArgument {
		t.Fatal(e)
	}
	if _, err := g.AddValue("x", 1); err == nil {
		t.Fatal("adding to a closed graph worked")
	}
}

func TestTaskErrorsAndPanics(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	var objects atomic.Int64
	mk := newFunc(t, "make", func(context.Context, *daskr.Call) (any, error) {
		objects.Add(1)
		return &counted{n: 1}, nil
	})
	failing := newFunc(t, "failing", func(_ context.Context, c *daskr.Call) (any, error) {
		return nil, fmt.Errorf("cannot use %s", c.Key())
	})
	panicking := newFunc(t, "panicking", func(_ context.Context, c *daskr.Call) (any, error) {
		var items []int
		return items[len(c.Key())], nil // a runtime panic: index out of range
	})
	var afterRan atomic.Bool
	after := newFunc(t, "after", func(context.Context, *daskr.Call) (any, error) {
		afterRan.Store(true)
		return nil, nil
	})
	must[daskr.TaskHandle](t)(g.AddTask("obj", mk, nil, nil))
	must[daskr.TaskHandle](t)(g.AddTask("fail", failing, []any{daskr.Ref("obj")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("panic", panicking, []any{daskr.Ref("obj")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("after-fail", after, []any{daskr.Ref("fail")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("after-panic", after, []any{daskr.Ref("panic")}, nil))
	base := daskr.LiveHandles()
	for _, sched := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		_, err := g.GetWith(context.Background(), &daskr.Options{Scheduler: sched}, "obj", "after-fail")
		e := asError(t, err)
		if e.Kind != daskr.TaskFailed || e.Key != "fail" || !strings.Contains(e.Message, "cannot use fail") {
			t.Fatalf("%+v", e)
		}
		_, err = g.GetWith(context.Background(), &daskr.Options{Scheduler: sched}, "after-panic")
		e = asError(t, err)
		if e.Kind != daskr.TaskFailed || e.Key != "panic" || !strings.Contains(e.Message, "panic: runtime error: index out of range") {
			t.Fatalf("%+v", e)
		}
		if afterRan.Load() {
			t.Fatal("a task ran after its input failed")
		}
		if n := daskr.LiveHandles(); n != base {
			t.Fatalf("handles after a failed get: %d, before %d", n, base)
		}
	}
	if objects.Load() != 4 {
		t.Fatalf("make ran %d times", objects.Load())
	}
}

func TestGraphErrors(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	ctx := context.Background()
	must[daskr.TaskHandle](t)(g.AddAlias("a", "b"))
	must[daskr.TaskHandle](t)(g.AddAlias("b", "a"))
	must[daskr.TaskHandle](t)(g.AddTask("lost", incFunc(t), []any{daskr.Ref("nowhere")}, nil))
	must[daskr.TaskHandle](t)(g.AddValue("fine", 1))

	_, err := g.Get(ctx, "fine", "nope")
	if e := asError(t, err); e.Kind != daskr.MissingKey || e.Key != "nope" {
		t.Fatalf("%+v", e)
	}
	_, err = g.Get(ctx, "a")
	e := asError(t, err)
	sort.Strings(e.Keys)
	if e.Kind != daskr.Cycle || !reflect.DeepEqual(e.Keys, []string{"a", "b"}) || e.Kind.String() != "cycle" {
		t.Fatalf("%+v", e)
	}
	_, err = g.Get(ctx, "lost")
	if e := asError(t, err); e.Kind != daskr.MissingDependency || e.Key != "lost" || !reflect.DeepEqual(e.Keys, []string{"nowhere"}) {
		t.Fatalf("%+v", e)
	}
	_, err = g.AddValue("fine", 2)
	if e := asError(t, err); e.Key != "fine" {
		t.Fatalf("%+v", e)
	}
	if _, err := g.AddValue("bad\xff", 1); err == nil {
		t.Fatal("invalid UTF-8 key accepted")
	}
	if _, err := g.AddValue("s", "bad\xff"); err == nil {
		t.Fatal("invalid UTF-8 string accepted")
	}
	if _, err := daskr.NewFunc("bad\xff", func(context.Context, *daskr.Call) (any, error) { return nil, nil }); err == nil {
		t.Fatal("invalid function name accepted")
	}
	if r := must[any](t)(g.Get(ctx, "fine")); r != int64(1) {
		t.Fatal(r)
	}
}

func TestContextCancelsARunningGet(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var afterRan atomic.Bool
	mk := newFunc(t, "make", func(context.Context, *daskr.Call) (any, error) { return &counted{n: 1}, nil })
	slow := newFunc(t, "slow", func(_ context.Context, c *daskr.Call) (any, error) {
		close(started)
		<-ctx.Done() // runs until the get is cancelled...
		// ...and a little longer: Get's goroutine, woken by the same ctx.Done(), turns the
		// cancel switch on meanwhile (otherwise "after" could start before it does).
		time.Sleep(100 * time.Millisecond)
		o, err := c.Object(0)
		return o, err
	})
	after := newFunc(t, "after", func(context.Context, *daskr.Call) (any, error) {
		afterRan.Store(true)
		return nil, nil
	})
	must[daskr.TaskHandle](t)(g.AddTask("obj", mk, nil, nil))
	must[daskr.TaskHandle](t)(g.AddTask("slow", slow, []any{daskr.Ref("obj")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("after", after, []any{daskr.Ref("slow")}, nil))
	base := daskr.LiveHandles()
	go func() {
		<-started
		cancel()
	}()
	_, err := g.Get(ctx, "after")
	e := asError(t, err)
	if e.Kind != daskr.Cancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("%+v", e)
	}
	if afterRan.Load() {
		t.Fatal("a task started after the cancel")
	}
	if n := daskr.LiveHandles(); n != base {
		t.Fatalf("handles after a cancelled get: %d, before %d", n, base)
	}
	// A context that is already done: nothing runs.
	_, err = g.Get(ctx, "obj")
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestContextDeadline(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	step := newFunc(t, "step", func(_ context.Context, c *daskr.Call) (any, error) {
		time.Sleep(2 * time.Millisecond)
		return nil, nil
	})
	prev := any(nil)
	for i := 0; i < 1000; i++ { // a chain: about 2 s if it were not stopped
		k := fmt.Sprint("s", i)
		must[daskr.TaskHandle](t)(g.AddTask(k, step, []any{prev}, nil))
		prev = daskr.Ref(k)
	}
	start := time.Now()
	_, err := g.Get(ctx, "s999")
	if !errors.Is(err, context.DeadlineExceeded) || asError(t, err).Kind != daskr.Cancelled {
		t.Fatal(err)
	}
	t.Logf("a 1000-step chain stopped %v after the start (deadline 50ms)", time.Since(start))
}

func TestCallbacksAndStats(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	must[daskr.TaskHandle](t)(g.AddValue("x", 1))
	must[daskr.TaskHandle](t)(g.AddTask("y", incFunc(t), []any{daskr.Ref("x")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("z", incFunc(t), []any{daskr.Ref("y")}, nil))
	var events []string // callbacks are never concurrent
	var stats daskr.Stats
	opts := &daskr.Options{
		Callbacks: &daskr.Callbacks{
			Start:    func(n int) { events = append(events, fmt.Sprint("start ", n)) },
			Pretask:  func(k string, _ int) { events = append(events, "pre "+k) },
			Posttask: func(k string, ok bool, _ int) { events = append(events, fmt.Sprint("post ", k, " ", ok)) },
			Finish:   func(failed bool) { events = append(events, fmt.Sprint("finish ", failed)) },
		},
		Stats:   &stats,
		Workers: 2,
	}
	if r := must[any](t)(g.GetWith(context.Background(), opts, "z")); r != int64(3) {
		t.Fatal(r)
	}
	want := []string{"start 2", "pre y", "post y true", "pre z", "post z true", "finish false"}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events %q", events)
	}
	// EntriesRun counts the literal entry "x" too (callbacks do not report it).
	if stats.Entries != 3 || stats.EntriesRun != 3 || stats.Workers < 1 || stats.Workers > 2 {
		t.Fatalf("stats %+v", stats)
	}
	// A panicking callback: the get finishes and reports it.
	events = nil
	opts.Callbacks.Pretask = func(string, int) { panic("progress bar broke") }
	_, err := g.GetWith(context.Background(), opts, "z")
	if err == nil || !strings.Contains(err.Error(), "progress bar broke") {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(events, []string{"start 2"}) {
		t.Fatalf("events after a panic %q", events)
	}
}

func TestSchedulersComeFromTheLibrary(t *testing.T) {
	want := []string{"threads", "sync", "processes", "distributed"}
	all := daskr.Schedulers()
	if len(all) != len(want) {
		t.Fatalf("Schedulers() = %v, want %v", all, want)
	}
	for i, s := range all {
		if s.String() != want[i] {
			t.Errorf("scheduler %d is %q, want %q", i, s, want[i])
		}
		named, err := daskr.SchedulerNamed(want[i])
		if err != nil || named != s {
			t.Errorf("SchedulerNamed(%q) = %v, %v", want[i], named, err)
		}
	}
	if daskr.Threads.String() != "threads" || daskr.Distributed.String() != "distributed" {
		t.Errorf("constants: %v %v", daskr.Threads, daskr.Distributed)
	}
	if s := daskr.Scheduler(9).String(); s != "Scheduler(9)" {
		t.Errorf("an unknown value prints %q", s)
	}
	_, err := daskr.SchedulerNamed("fast")
	var e *daskr.Error
	if !errors.As(err, &e) || e.Kind != daskr.InvalidArgument || !strings.Contains(e.Message, "'threads'") {
		t.Errorf("SchedulerNamed(\"fast\"): %v", err)
	}
	reads := []struct {
		s      daskr.Scheduler
		option string
		want   bool
	}{
		{daskr.Threads, "Workers", true}, {daskr.Sync, "Workers", false},
		{daskr.Processes, "TaskTimeout", true}, {daskr.Processes, "Retries", true},
		{daskr.Distributed, "Retries", true}, {daskr.Distributed, "Address", true},
		{daskr.Sync, "Retries", true}, {daskr.Distributed, "TaskTimeout", false},
		{daskr.Threads, "Address", false}, {daskr.Threads, "Callbacks", false},
	}
	for _, r := range reads {
		if got := r.s.Reads(r.option); got != r.want {
			t.Errorf("%v.Reads(%q) = %v, want %v", r.s, r.option, got, r.want)
		}
	}
}

func TestSyncSchedulerAndGraphInUse(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	var addErr error
	f := newFunc(t, "adder", func(_ context.Context, c *daskr.Call) (any, error) {
		_, addErr = g.AddValue("new", 1)
		return nil, nil
	})
	must[daskr.TaskHandle](t)(g.AddTask("t", f, nil, nil))
	must[any](t)(g.GetWith(context.Background(), &daskr.Options{Scheduler: daskr.Sync}, "t"))
	if e := asError(t, addErr); e.Kind != daskr.GraphInUse {
		t.Fatalf("%+v", e)
	}
	if g.Contains("new") {
		t.Fatal("changed during a get")
	}
}

func TestConcurrentGets(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	inc := incFunc(t)
	must[daskr.TaskHandle](t)(g.AddValue("x", 1))
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprint("y", i)
		must[daskr.TaskHandle](t)(g.AddTask(keys[i], inc, []any{daskr.Ref("x")}, nil))
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 20; r++ {
				got, err := g.Get(context.Background(), keys)
				if err != nil || len(got.([]any)) != 50 || got.([]any)[49] != int64(2) {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad gets", bad.Load())
	}
}

// 100,000 Go tasks on daskr's native threads, calling back into Go.
func TestHundredThousandGoTasks(t *testing.T) {
	noLeaks(t)
	const n = 100_000
	g := newGraph(t)
	var ran atomic.Int64
	var threads sync.Map // OS thread ids the tasks ran on
	double := newFunc(t, "double", func(_ context.Context, c *daskr.Call) (any, error) {
		ran.Add(1)
		threads.Store(syscall.Gettid(), true)
		x, err := c.Int(0)
		return 2 * x, err
	})
	sum := newFunc(t, "sum", func(_ context.Context, c *daskr.Call) (any, error) {
		xs, err := c.Ints(0)
		var s int64
		for _, x := range xs {
			s += x
		}
		return s, err
	})
	buildStart := time.Now()
	parts := make([]any, n)
	for i := 0; i < n; i++ {
		k := fmt.Sprint("double-", i)
		must[daskr.TaskHandle](t)(g.AddTask(k, double, []any{i}, nil))
		parts[i] = daskr.Ref(k)
	}
	must[daskr.TaskHandle](t)(g.AddTask("total", sum, []any{parts}, nil))
	build := time.Since(buildStart)
	var stats daskr.Stats
	start := time.Now()
	total := must[any](t)(g.GetWith(context.Background(), &daskr.Options{Stats: &stats}, "total"))
	elapsed := time.Since(start)
	if total != int64(n*(n-1)) || ran.Load() != n {
		t.Fatalf("total %v, ran %d", total, ran.Load())
	}
	if stats.EntriesRun != n+1 {
		t.Fatalf("stats %+v", stats)
	}
	nthreads := 0
	threads.Range(func(any, any) bool { nthreads++; return true })
	if nthreads > int(stats.Workers) {
		t.Fatalf("tasks ran on %d OS threads, daskr reports %d workers", nthreads, stats.Workers)
	}
	t.Logf("%d Go tasks on %d threads (%d OS threads seen): get %v (%.2f µs/task; run %v), graph built in %v",
		n, stats.Workers, nthreads, elapsed, float64(elapsed.Microseconds())/n, stats.RunTime, build)
}

// A big graph's arrays are kept for reuse once it is closed; ReleaseMemory gives them back.
func TestReleaseMemory(t *testing.T) {
	const n = 300_000
	g := daskr.NewGraph()
	inc := incFunc(t)
	for i := 0; i < n; i++ {
		must[daskr.TaskHandle](t)(g.AddTask(fmt.Sprint("r-", i), inc, []any{i}, nil))
	}
	g.Close()
	if got := daskr.ReleaseMemory(); got < n*2*16 { // at least the expression arena
		t.Fatalf("ReleaseMemory() = %d bytes after a %d-task graph", got, n)
	}
	if got := daskr.ReleaseMemory(); got != 0 {
		t.Fatalf("second ReleaseMemory() = %d", got)
	}
}

// A Func that is never closed is still released once it is garbage (and its graphs are closed).
func TestForgottenFuncIsFinalized(t *testing.T) {
	base := daskr.LiveHandles()
	func() {
		g := daskr.NewGraph()
		defer g.Close()
		f := daskr.MustFunc("forgotten", func(context.Context, *daskr.Call) (any, error) { return 1, nil })
		must[daskr.TaskHandle](t)(g.AddTask("t", f, nil, nil))
		if r := must[any](t)(g.Get(context.Background(), "t")); r != int64(1) {
			t.Fatal(r)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for daskr.LiveHandles() != base && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := daskr.LiveHandles(); n != base {
		t.Fatalf("live handles %d, want %d", n, base)
	}
}

// No recursion limit in the package either: a 100,000-deep chain of Go tasks.
func TestDeepChainOfGoTasks(t *testing.T) {
	noLeaks(t)
	const n = 100_000
	g := newGraph(t)
	inc := incFunc(t)
	prev := must[daskr.TaskHandle](t)(g.AddValue("c0", 0))
	for i := 1; i <= n; i++ {
		prev = must[daskr.TaskHandle](t)(g.AddTask(fmt.Sprint("c", i), inc, []any{prev}, nil))
	}
	for _, sched := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		r, err := g.GetWith(context.Background(), &daskr.Options{Scheduler: sched}, fmt.Sprint("c", n))
		if err != nil || r != int64(n) {
			t.Fatalf("scheduler %d: %v, %v", sched, r, err)
		}
	}
}

func TestProfileRecordsEachEntry(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	f := newFunc(t, "inc", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return x + 1, err
	})
	must[daskr.TaskHandle](t)(g.AddValue("x", 1))
	keys := []any{}
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("t%d", i)
		must[daskr.TaskHandle](t)(g.AddTask(k, f, []any{daskr.Ref("x")}, nil))
		keys = append(keys, k)
	}
	p := daskr.NewProfile()
	defer p.Close()
	if _, err := g.GetWith(context.Background(), &daskr.Options{Workers: 2, Profile: p}, keys...); err != nil {
		t.Fatal(err)
	}
	tasks := p.Tasks()
	if len(tasks) != 11 {
		t.Fatalf("%d entries recorded, want 11: %+v", len(tasks), tasks)
	}
	for i, task := range tasks {
		if !task.OK || task.End < task.Start || task.Worker >= 2 || (i > 0 && task.Start < tasks[i-1].Start) {
			t.Errorf("bad span %+v", task)
		}
		if task.Key == "x" && task.Func != "literal" || task.Key == "t3" && task.Func != "inc" {
			t.Errorf("func of %s: %s", task.Key, task.Func)
		}
	}
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := p.WriteTrace(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 || data[0] != '{' {
		t.Fatalf("trace: %v %q", err, data)
	}
	var e *daskr.Error
	if err := p.WriteTrace("/nonexistent-dir/trace.json"); !errors.As(err, &e) {
		t.Fatalf("want a *daskr.Error, got %v", err)
	}
}

// A Progress attached to a Get is read while it runs (from a task here, as a progress bar's
// goroutine would) and holds the exact counts once it returns.
func TestProgressCountsEntriesAsTheyRun(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	p := daskr.NewProgress()
	defer p.Close()
	if p.Running() || p.Total() != 0 || p.Done() != 0 {
		t.Fatalf("a new counter: running %v, %d of %d", p.Running(), p.Done(), p.Total())
	}
	var seenRunning bool
	var seenTotal, seenDone uint64
	f := newFunc(t, "inc", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		if x == 5 {
			seenRunning, seenTotal, seenDone = p.Running(), p.Total(), p.Done()
		}
		return x + 1, err
	})
	prev := must[daskr.TaskHandle](t)(g.AddValue("t0", 0))
	for i := 1; i <= 10; i++ {
		prev = must[daskr.TaskHandle](t)(g.AddTask(fmt.Sprintf("t%d", i), f, []any{prev}, nil))
	}
	must[daskr.TaskHandle](t)(g.AddTask("unneeded", f, []any{prev}, nil))
	got, err := g.GetWith(context.Background(), &daskr.Options{Scheduler: daskr.Sync, Progress: p}, "t10")
	if err != nil || got != int64(10) {
		t.Fatalf("got %v, %v", got, err)
	}
	if !seenRunning || seenTotal != 11 || seenDone > 6 {
		t.Errorf("read from the sixth task: running %v, %d of %d (want running, at most 6 of 11)",
			seenRunning, seenDone, seenTotal)
	}
	if p.Running() || p.Total() != 11 || p.Done() != 11 {
		t.Errorf("after the Get: running %v, %d of %d (want 11 of 11, not running)", p.Running(), p.Done(), p.Total())
	}
	var nilProgress *daskr.Progress
	if nilProgress.Running() || nilProgress.Done() != 0 {
		t.Error("a nil Progress reads as an empty one")
	}
	nilProgress.Close()
}

// An empty key adds an anonymous entry: no key, reached by handle; a keyed entry over
// anonymous ones is asked for by key; a failing anonymous task is named by its index.
func TestAnonymousEntries(t *testing.T) {
	ctx := context.Background()
	g := daskr.NewGraph()
	defer g.Close()
	inc, err := daskr.NewFunc("inc", func(_ context.Context, c *daskr.Call) (any, error) {
		x, err := c.Int(0)
		return x + 1, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	prev, err := g.AddValue("", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if prev, err = g.AddTask("", inc, []any{prev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := g.Key(prev); ok {
		t.Fatal("an anonymous entry has a key")
	}
	if _, err := g.Add("last", []any{prev, prev}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []daskr.Scheduler{daskr.Sync, daskr.Threads} { // (Go functions run in this process only)
		got, err := g.GetWith(ctx, &daskr.Options{Scheduler: s}, "last")
		if err != nil || !reflect.DeepEqual(got, []any{int64(100), int64(100)}) {
			t.Fatalf("%v: %v, %v", s, got, err)
		}
	}
	if g.Len() != 102 {
		t.Fatalf("Len %d", g.Len())
	}
	boom, err := daskr.NewFunc("boom", func(context.Context, *daskr.Call) (any, error) { return nil, errors.New("boom") })
	if err != nil {
		t.Fatal(err)
	}
	defer boom.Close()
	bad, err := g.AddTask("", boom, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Add("bad", bad); err != nil {
		t.Fatal(err)
	}
	_, err = g.Get(ctx, "bad")
	if e := asError(t, err); e.Kind != daskr.TaskFailed || e.Key != fmt.Sprintf("#%d", uint32(bad)) {
		t.Fatalf("%+v", e)
	}
}
