package daskr

/*
#include <stdlib.h>
#include "daskr.h"
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"runtime/cgo"
	"sort"
	"sync"
	"time"
	"unsafe"
)

// Ref is a reference to the entry with this key (a computation).
type Ref string

// TaskHandle is the handle of a graph entry, returned when it is added. As a computation it
// refers to that entry (cheaper than a Ref: no key lookup). It belongs to the graph that made
// it: used with another graph, the add fails with InvalidArgument.
type TaskHandle uint64

// Inline is a task evaluated as part of the entry that contains it, not scheduled alone.
type Inline struct {
	Func   *Func
	Args   []any
	Kwargs Kwargs
}

// Kwargs are keyword arguments: names to computations (passed in sorted name order).
type Kwargs map[string]any

// Graph is a task graph. Any number of goroutines may Get from one graph at once; adding to
// it while a Get runs fails with GraphInUse. Close it when done (a finalizer closes a
// forgotten graph).
type Graph struct {
	mu sync.RWMutex // held for reading by every call, for writing by Close
	g  *C.daskr_graph_t
}

// NewGraph makes an empty graph.
func NewGraph() *Graph {
	g := &Graph{g: C.daskr_graph_new()}
	runtime.SetFinalizer(g, (*Graph).Close)
	return g
}

// Close frees the graph and everything it holds (it waits for running Gets). Safe to call
// twice.
func (g *Graph) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.g != nil {
		C.daskr_graph_free(g.g)
		g.g = nil
		runtime.SetFinalizer(g, nil)
	}
}

var errClosed = newError(InvalidArgument, "the graph is closed")

// with runs f on the live graph, holding the read lock.
func (g *Graph) with(f func(*C.daskr_graph_t) error) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.g == nil {
		return errClosed
	}
	return f(g.g)
}

// comp converts a Go value to an owned computation:
//   - Ref("k") and TaskHandle: references;
//   - Inline{...}: an inline task;
//   - a slice or array (other than []byte): a list computation of its items (which may hold
//     references);
//   - a *Map (or Map): a map computation of its values (which may hold references);
//   - anything else: a literal value (see AddValue).
func comp(x any) (*C.daskr_comp_t, error) {
	switch x := x.(type) {
	case Ref:
		k := cString(string(x))
		defer free(k)
		return C.daskr_comp_ref(k), nil
	case TaskHandle:
		return C.daskr_comp_ref_task(C.daskr_task_t(x)), nil
	case Inline:
		return inlineComp(&x)
	case *Inline:
		return inlineComp(x)
	case *Map:
		if x != nil {
			return mapComp(x)
		}
	case Map:
		return mapComp(&x)
	case []byte, string, nil, Object, *Pointer:
	default:
		rv := reflect.ValueOf(x)
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			items, err := comps(rv.Len(), func(i int) any { return rv.Index(i).Interface() })
			if err != nil {
				return nil, err
			}
			return C.daskr_comp_list(ptrOrNil(items), C.size_t(len(items))), nil
		}
	}
	v, err := toC(x)
	if err != nil {
		return nil, err
	}
	return C.daskr_comp_value(v), nil
}

func mapComp(m *Map) (*C.daskr_comp_t, error) {
	values, err := comps(len(m.values), func(i int) any { return m.values[i] })
	if err != nil {
		return nil, err
	}
	names := make([]*C.char, len(m.names))
	lens := make([]C.size_t, len(m.names))
	for i, name := range m.names {
		names[i] = (*C.char)(C.CBytes([]byte(name)))
		lens[i] = C.size_t(len(name))
	}
	defer func() {
		for _, p := range names {
			free(p)
		}
	}()
	// daskr_comp_map takes every value.
	return C.daskr_comp_map(ptrOrNil(names), ptrOrNil(lens), ptrOrNil(values), C.size_t(len(values))), nil
}

func inlineComp(t *Inline) (*C.daskr_comp_t, error) {
	if t.Func == nil || t.Func.f == nil {
		return nil, newError(InvalidArgument, "an inline task without a function (or with a closed one)")
	}
	args, err := comps(len(t.Args), func(i int) any { return t.Args[i] })
	if err != nil {
		return nil, err
	}
	kw, err := kwargComps(t.Kwargs)
	if err != nil {
		freeComps(args)
		return nil, err
	}
	defer kw.free()
	c := C.daskr_comp_task(t.Func.f, ptrOrNil(args), C.size_t(len(args)), ptrOrNil(kw.names), ptrOrNil(kw.values), C.size_t(len(kw.values)))
	runtime.KeepAlive(t.Func)
	return c, nil
}

func comps(n int, item func(int) any) ([]*C.daskr_comp_t, error) {
	out := make([]*C.daskr_comp_t, n)
	for i := range out {
		c, err := comp(item(i))
		if err != nil {
			freeComps(out[:i])
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

func freeComps(cs []*C.daskr_comp_t) {
	for _, c := range cs {
		C.daskr_comp_free(c)
	}
}

type kwargs struct {
	names  []*C.char
	values []*C.daskr_comp_t
}

// free frees the names (the values are taken by the call they were passed to).
func (k *kwargs) free() {
	for _, n := range k.names {
		free(n)
	}
}

func kwargComps(kw Kwargs) (*kwargs, error) {
	names := make([]string, 0, len(kw))
	for n := range kw {
		names = append(names, n)
	}
	sort.Strings(names)
	k := &kwargs{}
	for _, n := range names {
		c, err := comp(kw[n])
		if err != nil {
			freeComps(k.values)
			k.free()
			return nil, fmt.Errorf("keyword argument %q: %w", n, err)
		}
		k.names = append(k.names, cString(n))
		k.values = append(k.values, c)
	}
	return k, nil
}

func ptrOrNil[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// Add adds the entry key computing comp: a Ref (an alias), a TaskHandle, an Inline task, a
// slice (a list computation, whose items may be references), or a literal.
//
// An empty key adds an anonymous entry, as in AddValue and AddTask: it has no key (no key is
// stored or hashed: the cheapest way to add the many entries of a big graph), and is reached
// by its handle, from other entries' computations — a keyed entry over anonymous ones is
// asked for by Get as usual. Errors and callbacks name it "#<index>".
func (g *Graph) Add(key string, computation any) (TaskHandle, error) {
	var t C.daskr_task_t
	err := g.with(func(cg *C.daskr_graph_t) error {
		c, err := comp(computation)
		if err != nil {
			return err
		}
		ck := cKey(key)
		defer free(ck)
		return takeError(C.daskr_graph_add(cg, ck, c, &t))
	})
	return TaskHandle(t), err
}

// AddValue adds the literal entry key. Go values convert as follows: nil -> null; bool;
// every integer type -> int64 (a uint64 above MaxInt64 is an error); float32/float64;
// string (must be UTF-8); []byte -> bytes; []any and other slices and arrays -> lists;
// *Map -> a map (MapOf makes one from a Go map);
// nil pointers, maps, funcs and channels -> null; any other value (a struct, a pointer, a
// map, ...) and anything wrapped in Object -> an opaque pointer value holding the Go value
// itself (a task reads it back with Call.Object; Get returns it as it was).
func (g *Graph) AddValue(key string, value any) (TaskHandle, error) {
	var t C.daskr_task_t
	err := g.with(func(cg *C.daskr_graph_t) error {
		v, err := toC(value)
		if err != nil {
			return err
		}
		ck := cKey(key)
		defer free(ck)
		return takeError(C.daskr_graph_add_value(cg, ck, v, &t))
	})
	return TaskHandle(t), err
}

// AddTask adds the task entry key: f(args..., kwargs...). Arguments are computations (see
// Add): use Ref("k") or a TaskHandle to pass another entry's value. An empty key adds an
// anonymous task (see Add).
func (g *Graph) AddTask(key string, f *Func, args []any, kw Kwargs) (TaskHandle, error) {
	var t C.daskr_task_t
	err := g.with(func(cg *C.daskr_graph_t) error {
		if f == nil || f.f == nil {
			return newError(InvalidArgument, "AddTask(%q): the function is nil or closed", key)
		}
		if handles, ok := smallHandles(key, args, kw); ok {
			// The usual task of a big graph, in one cgo call instead of one per argument and
			// two for the key's copy.
			err := takeError(C.daskr_go_add_task_handles(cg, (*C.char)(unsafe.Pointer(unsafe.StringData(key))),
				C.size_t(len(key)), f.f, (*C.uint64_t)(unsafe.Pointer(&handles[0])), C.size_t(len(args)), &t))
			runtime.KeepAlive(f)
			return err
		}
		a, err := comps(len(args), func(i int) any { return args[i] })
		if err != nil {
			return fmt.Errorf("AddTask(%q): argument %w", key, err)
		}
		k, err := kwargComps(kw)
		if err != nil {
			freeComps(a)
			return fmt.Errorf("AddTask(%q): %w", key, err)
		}
		defer k.free()
		ck := cKey(key)
		defer free(ck)
		err = takeError(C.daskr_graph_add_task(cg, ck, f.f, ptrOrNil(a), C.size_t(len(a)),
			ptrOrNil(k.names), ptrOrNil(k.values), C.size_t(len(k.values)), &t))
		runtime.KeepAlive(f)
		return err
	})
	return TaskHandle(t), err
}

// smallHandles gives the arguments of a task AddTask can add through
// daskr_go_add_task_handles: only TaskHandles, no keyword arguments, a key and an argument
// list within that function's bounds.
func smallHandles(key string, args []any, kw Kwargs) (handles [C.DASKR_GO_SMALL_ARGS]uint64, ok bool) {
	if len(kw) != 0 || len(args) > len(handles) || len(key) >= C.DASKR_GO_SMALL_KEY {
		return handles, false
	}
	for i, a := range args {
		h, isHandle := a.(TaskHandle)
		if !isHandle {
			return handles, false
		}
		handles[i] = uint64(h)
	}
	return handles, true
}

// AddAlias adds the alias key for target.
func (g *Graph) AddAlias(key, target string) (TaskHandle, error) {
	var t C.daskr_task_t
	err := g.with(func(cg *C.daskr_graph_t) error {
		ck, ct := cString(key), cString(target)
		defer free(ck)
		defer free(ct)
		return takeError(C.daskr_graph_add_alias(cg, ck, ct, &t))
	})
	return TaskHandle(t), err
}

// Handle is the handle of key, whether or not it is defined yet.
func (g *Graph) Handle(key string) (TaskHandle, error) {
	var t C.daskr_task_t
	err := g.with(func(cg *C.daskr_graph_t) error {
		ck := cString(key)
		defer free(ck)
		return takeError(C.daskr_graph_handle(cg, ck, &t))
	})
	return TaskHandle(t), err
}

// Key is the key behind a handle, and whether there is one (false for a handle the graph did
// not hand out, or of an anonymous entry).
func (g *Graph) Key(t TaskHandle) (string, bool) {
	var key string
	var ok bool
	_ = g.with(func(cg *C.daskr_graph_t) error {
		if k := C.daskr_graph_key(cg, C.daskr_task_t(t)); k != nil {
			key, ok = C.GoString(k), true
		}
		return nil
	})
	return key, ok
}

// Len is the number of entries in the graph.
func (g *Graph) Len() int {
	n := 0
	_ = g.with(func(cg *C.daskr_graph_t) error {
		n = int(C.daskr_graph_len(cg))
		return nil
	})
	return n
}

// Contains reports whether key is defined.
func (g *Graph) Contains(key string) bool {
	found := false
	_ = g.with(func(cg *C.daskr_graph_t) error {
		ck := cString(key)
		defer free(ck)
		found = bool(C.daskr_graph_contains(cg, ck))
		return nil
	})
	return found
}

// Scheduler chooses what runs a Get.
type Scheduler int

const (
	// Threads is daskr's native thread pool (the default).
	Threads Scheduler = C.DASKR_SCHEDULER_THREADS
	// Sync runs every task on the calling thread, in priority order: deterministic.
	Sync Scheduler = C.DASKR_SCHEDULER_SYNC
	// Processes runs tasks in worker processes: a task that crashes kills its worker, not
	// this program (the Get fails with a WorkerDied error naming the task, or retries it).
	// A Go program cannot be forked, so its workers are fresh `daskr worker` processes
	// (the daskr command next to libdaskr, or $DASKR_WORKER) and run plugin tasks only
	// (OpenPlugin); a Go function task is an InvalidArgument error naming its key.
	Processes Scheduler = C.DASKR_SCHEDULER_PROCESSES
	// Distributed runs plugin tasks on a Dask cluster at Options.Address.
	Distributed Scheduler = C.DASKR_SCHEDULER_DISTRIBUTED
)

// The constants above are conveniences: the library's own list of schedulers (its registry)
// is what Schedulers, SchedulerNamed, String and Reads read, so a scheduler the library adds
// is usable by name before this package has a constant for it.

// Schedulers lists every scheduler the library has, in value order.
func Schedulers() []Scheduler {
	n := int(C.daskr_scheduler_count())
	all := make([]Scheduler, n)
	for i := range all {
		all[i] = Scheduler(i)
	}
	return all
}

// String is the scheduler's name as daskr spells it everywhere ("threads", "sync",
// "processes", "distributed"), or "Scheduler(N)" for a value that is no scheduler.
func (s Scheduler) String() string {
	if s >= 0 && s < Scheduler(C.daskr_scheduler_count()) {
		return C.GoString(C.daskr_scheduler_name(C.uint32_t(s)))
	}
	return fmt.Sprintf("Scheduler(%d)", int(s))
}

// SchedulerNamed is the scheduler of that name (as String and the daskr command's
// --scheduler spell it); an InvalidArgument error listing the names for an unknown one.
func SchedulerNamed(name string) (Scheduler, error) {
	cname := cString(name)
	defer free(cname)
	var out C.daskr_scheduler_t
	if err := takeError(C.daskr_scheduler_from_name(cname, &out)); err != nil {
		return 0, err
	}
	return Scheduler(out), nil
}

// schedulerOptions are the Options fields only some schedulers read, by their C names.
var schedulerOptions = map[string]string{
	"Workers":     "num_workers",
	"Retries":     "retries",
	"TaskTimeout": "task_timeout_s",
	"Address":     "address",
}

// Reads reports whether s reads the Options field named option ("Workers", "Retries",
// "TaskTimeout" or "Address": the fields only some schedulers read; the others ignore it).
func (s Scheduler) Reads(option string) bool {
	name, ok := schedulerOptions[option]
	if !ok || s < 0 {
		return false
	}
	cname := cString(name)
	defer free(cname)
	return bool(C.daskr_scheduler_reads(C.uint32_t(s), cname))
}

// Callbacks observe a run (Dask's start/pretask/posttask/finish); nil ones are skipped.
// They are never called concurrently with each other. A panic in one is recovered: no
// further callbacks run, and Get returns it as an error after the run.
type Callbacks struct {
	Start    func(entries int)
	Pretask  func(key string, worker int)
	Posttask func(key string, ok bool, worker int)
	Finish   func(failed bool)
}

// Stats are figures about one Get.
type Stats struct {
	Entries    uint64 // entries the request needed (after culling), literals included
	EntriesRun uint64 // entries that ran
	PeakHeld   uint64 // the most results held at once
	Workers    uint32 // threads that ran tasks
	PlanTime   time.Duration
	RunTime    time.Duration
	// With Options.Cache: tasks read from it instead of run, tasks that ran and were stored,
	// tasks neither run nor read (every consumer was found), and the bytes moved.
	CacheHits, CacheMisses, CacheSkipped uint64
	CacheBytesRead, CacheBytesWritten    uint64
}

// Options tune a Get. The zero value means: threads scheduler, all cores, no callbacks.
type Options struct {
	Scheduler Scheduler
	Workers   int // threads for Threads (the caller's included), processes for Processes; 0 = all cores
	Callbacks *Callbacks
	Stats     *Stats    // filled in when Get returns (success or not); PeakHeld is measured only then
	Profile   *Profile  // records each entry's run (see Profile)
	Progress  *Progress // counts entries as they run, for another goroutine to read
	// Workers and the fields below are read by some schedulers only (Scheduler.Reads says
	// which).
	// Retries (Processes): how many times a task whose worker process died runs again on a
	// fresh worker before the Get fails with WorkerDied.
	Retries int
	// TaskTimeout (Processes): a task running longer has its worker killed and the Get fails
	// with WorkerDied. 0 for no limit.
	TaskTimeout time.Duration
	// Address (Distributed): the Dask scheduler, "tcp://host:port"; "" for $DASKR_ADDRESS.
	Address string
	// Cache keeps task results on disk: tasks found there are not run, what runs is stored
	// (see OpenCache). Every scheduler; with Processes from Go only plugin tasks run (in
	// `daskr worker` processes), with Distributed the directory must be one every Dask worker
	// reaches at the same path (a shared filesystem).
	Cache *Cache
}

// Get computes keys and returns their values as Go values (see Call.Arg for the types). One
// key gives its value; several keys give a []any of their values, in order; a key may also
// be a []string or a (nested) []any of keys, which gives results of the same shape; no keys
// give an empty []any. Only the tasks the keys need run.
//
// ctx reaches every task (see TaskFunc). Cancelling it stops the run: no task starts after,
// and Get returns a *Error of kind Cancelled wrapping ctx.Err() once the running tasks
// return. A ctx that ends while the last tasks run fails the Get the same way, even if they
// finish: errors.Is(err, context.DeadlineExceeded) holds for a deadline that passed. A Go
// task's error is wrapped by the TaskFailed error Get returns.
func (g *Graph) Get(ctx context.Context, keys ...any) (any, error) {
	return g.GetWith(ctx, nil, keys...)
}

type cbState struct {
	mu    sync.Mutex
	cb    *Callbacks
	panic any
}

func (s *cbState) call(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panic != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.panic = r
		}
	}()
	f()
}

func cbOf(h C.uintptr_t) *cbState { return cgo.Handle(h).Value().(*cbState) }

//export daskrGoCbStart
func daskrGoCbStart(h C.uintptr_t, entries C.size_t) {
	s := cbOf(h)
	if s.cb.Start != nil {
		s.call(func() { s.cb.Start(int(entries)) })
	}
}

//export daskrGoCbPretask
func daskrGoCbPretask(h C.uintptr_t, key *C.char, worker C.uint32_t) {
	s := cbOf(h)
	if s.cb.Pretask != nil {
		k := C.GoString(key)
		s.call(func() { s.cb.Pretask(k, int(worker)) })
	}
}

//export daskrGoCbPosttask
func daskrGoCbPosttask(h C.uintptr_t, key *C.char, ok C.bool, worker C.uint32_t) {
	s := cbOf(h)
	if s.cb.Posttask != nil {
		k := C.GoString(key)
		s.call(func() { s.cb.Posttask(k, bool(ok), int(worker)) })
	}
}

//export daskrGoCbFinish
func daskrGoCbFinish(h C.uintptr_t, failed C.bool) {
	s := cbOf(h)
	if s.cb.Finish != nil {
		s.call(func() { s.cb.Finish(bool(failed)) })
	}
}

func keysValue(keys []any) (*C.daskr_value_t, error) {
	var request any
	if len(keys) == 1 {
		request = keys[0]
	} else {
		request = keys
	}
	if err := checkKeys(request); err != nil {
		return nil, err
	}
	return toC(request)
}

func checkKeys(k any) error {
	switch k := k.(type) {
	case string, []string:
		return nil
	case Ref:
		return newError(InvalidArgument, "keys are plain strings (got Ref(%q))", string(k))
	case []any:
		for _, item := range k {
			if err := checkKeys(item); err != nil {
				return err
			}
		}
		return nil
	}
	return newError(InvalidArgument, "a key must be a string, []string or []any of keys, not %T", k)
}

// GetWith is Get with options (nil for the defaults).
func (g *Graph) GetWith(ctx context.Context, opts *Options, keys ...any) (any, error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Workers < 0 {
		return nil, newError(InvalidArgument, "Options.Workers is negative")
	}
	if opts.Retries < 0 || int64(opts.Retries) > math.MaxUint32 {
		return nil, newError(InvalidArgument, "Options.Retries is %d: give 0 or more", opts.Retries)
	}
	if opts.TaskTimeout < 0 {
		return nil, newError(InvalidArgument, "Options.TaskTimeout is negative")
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: Cancelled, Message: "the context was done before the get started", Err: err}
	}
	request, err := keysValue(keys)
	if err != nil {
		return nil, err
	}
	defer C.daskr_value_free(request)

	// Every Get has its own cancel switch: its tasks find their Get (and context) by it, and
	// a goroutine turns it on when ctx is done.
	cancel := C.daskr_cancel_new()
	get := startRunning(ctx, cancel)
	defer func() { // runs last: after the goroutine below is gone
		get.end(cancel)
		C.daskr_cancel_free(cancel)
	}()
	if ctx.Done() != nil {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-ctx.Done():
				C.daskr_cancel_trigger(cancel)
			case <-stop:
			}
		}()
		defer func() {
			close(stop)
			<-done
		}()
	}

	var cbHandle cgo.Handle
	var state *cbState
	if opts.Callbacks != nil {
		state = &cbState{cb: opts.Callbacks}
		cbHandle = newHandle(state)
		defer deleteHandle(cbHandle)
	}

	// Stats (peak_held among them, which costs the run a shared counter) only when asked for.
	var stats C.daskr_stats_t
	var statsPtr *C.daskr_stats_t
	if opts.Stats != nil {
		statsPtr = &stats
	}
	var address *C.char
	if opts.Address != "" {
		address = cString(opts.Address)
		defer free(address)
	}
	var out *C.daskr_value_t
	err = g.with(func(cg *C.daskr_graph_t) error {
		return takeError(C.daskr_go_get(cg, request, C.int(opts.Scheduler), C.uint32_t(opts.Workers), cancel,
			C.uintptr_t(cbHandle), statsPtr, opts.Profile.raw(), opts.Progress.raw(), C.uint32_t(opts.Retries),
			C.double(opts.TaskTimeout.Seconds()), address, opts.Cache.raw(), &out))
	})
	if opts.Stats != nil {
		*opts.Stats = Stats{
			Entries:    uint64(stats.entries),
			EntriesRun: uint64(stats.entries_run),
			PeakHeld:   uint64(stats.peak_held),
			Workers:    uint32(stats.workers),
			PlanTime:   time.Duration(stats.plan_ns),
			RunTime:    time.Duration(stats.run_ns),

			CacheHits:         uint64(stats.cache_hits),
			CacheMisses:       uint64(stats.cache_misses),
			CacheSkipped:      uint64(stats.cache_skipped),
			CacheBytesRead:    uint64(stats.cache_bytes_read),
			CacheBytesWritten: uint64(stats.cache_bytes_written),
		}
	}
	var result any
	if out != nil {
		result = fromC(out)
		C.daskr_value_free(out)
	}
	if err = get.wrap(ctx, err); err != nil {
		return nil, err
	}
	if state != nil {
		state.mu.Lock()
		p := state.panic
		state.mu.Unlock()
		if p != nil {
			return nil, fmt.Errorf("daskr: a callback panicked: %v", p)
		}
	}
	return result, nil
}
