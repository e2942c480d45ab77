package daskr_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	daskr "github.com/daskr/daskr/bindings/go"
)

// waitDone waits for ctx to be done, or fails the test after a long grace (a task that never
// sees its context end must fail the test, not hang it).
func waitDone(t *testing.T, ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(30 * time.Second):
		t.Error("the task's context never ended")
		return false
	}
}

// The case: a deadline passes while the last task runs, and the task finishes anyway
// (it sees ctx.Done() and returns a value, no error). The Get fails with the deadline.
func TestDeadlineMidTaskFailsTheGet(t *testing.T) {
	noLeaks(t)
	for _, s := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		g := newGraph(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		var sawDeadline bool
		slow := newFunc(t, "slow", func(ctx context.Context, c *daskr.Call) (any, error) {
			waitDone(t, ctx)
			sawDeadline = errors.Is(ctx.Err(), context.DeadlineExceeded)
			return 1, nil
		})
		must[daskr.TaskHandle](t)(g.AddTask("y", slow, nil, nil))
		_, err := g.GetWith(ctx, &daskr.Options{Scheduler: s}, "y")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || asError(t, err).Kind != daskr.Cancelled {
			t.Fatalf("%v: %v", s, err)
		}
		if !sawDeadline {
			t.Fatalf("%v: the task's ctx.Err() was not DeadlineExceeded", s)
		}
	}
}

// A task that returns ctx.Err() when its Get is cancelled: the Get says Cancelled, wrapping
// context.Canceled.
func TestCancelReachesTheRunningTask(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	wait := newFunc(t, "wait", func(ctx context.Context, c *daskr.Call) (any, error) {
		close(started)
		waitDone(t, ctx)
		return nil, ctx.Err()
	})
	must[daskr.TaskHandle](t)(g.AddTask("w", wait, nil, nil))
	go func() {
		<-started
		cancel()
	}()
	_, err := g.Get(ctx, "w")
	if e := asError(t, err); e.Kind != daskr.Cancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("%+v", e)
	}
}

type ctxKey struct{}

// One function in many concurrent Gets: each task gets its own Get's context.
func TestConcurrentGetsEachGiveTheirOwnContext(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	who := newFunc(t, "who", func(ctx context.Context, c *daskr.Call) (any, error) {
		n, _ := ctx.Value(ctxKey{}).(int)
		return n, nil
	})
	var keys []string
	for i := 0; i < 50; i++ {
		k := fmt.Sprint("who", i)
		must[daskr.TaskHandle](t)(g.AddTask(k, who, []any{i}, nil))
		keys = append(keys, k)
	}
	var wg sync.WaitGroup
	for n := 1; n <= 8; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			ctx := context.WithValue(context.Background(), ctxKey{}, n)
			for round := 0; round < 20; round++ {
				got, err := g.Get(ctx, keys)
				if err != nil {
					t.Error(err)
					return
				}
				for _, v := range got.([]any) {
					if v != int64(n) {
						t.Errorf("a task of get %d saw the context of get %v", n, v)
						return
					}
				}
			}
		}(n)
	}
	wg.Wait()
}

// A task's context ends once its Get has returned, and when another task of the Get failed.
func TestTaskContextEndsWithTheGetAndOnAFailure(t *testing.T) {
	noLeaks(t)
	g := newGraph(t)
	var kept context.Context
	keep := newFunc(t, "keep", func(ctx context.Context, c *daskr.Call) (any, error) {
		kept = ctx
		return nil, nil
	})
	must[daskr.TaskHandle](t)(g.AddTask("keep", keep, nil, nil))
	must[any](t)(g.Get(context.Background(), "keep"))
	if kept == nil || kept.Err() == nil {
		t.Fatal("the task's context outlived its get")
	}

	errBoom := errors.New("boom")
	siblingStarted := make(chan struct{})
	var siblingSaw error
	fail := newFunc(t, "fail", func(ctx context.Context, c *daskr.Call) (any, error) {
		<-siblingStarted
		return nil, errBoom
	})
	sibling := newFunc(t, "sibling", func(ctx context.Context, c *daskr.Call) (any, error) {
		close(siblingStarted)
		if waitDone(t, ctx) {
			siblingSaw = ctx.Err()
		}
		return nil, nil // not an error: the failure the get reports stays fail's
	})
	must[daskr.TaskHandle](t)(g.AddTask("fail", fail, nil, nil))
	must[daskr.TaskHandle](t)(g.AddTask("sibling", sibling, nil, nil))
	_, err := g.GetWith(context.Background(), &daskr.Options{Workers: 2}, []string{"fail", "sibling"})
	if e := asError(t, err); e.Kind != daskr.TaskFailed || e.Key != "fail" || !errors.Is(err, errBoom) {
		t.Fatalf("%+v", e)
	}
	if !errors.Is(siblingSaw, context.Canceled) {
		t.Fatalf("the sibling's context: %v", siblingSaw)
	}
}

type quotaError struct{ Used, Limit int }

func (e *quotaError) Error() string { return fmt.Sprintf("quota %d/%d", e.Used, e.Limit) }

// A Go task's error keeps its identity through the Get's error, which keeps daskr's kind and
// key: errors.Is and errors.As reach both.
func TestTaskErrorsKeepTheirIdentity(t *testing.T) {
	noLeaks(t)
	errMine := errors.New("mine")
	g := newGraph(t)
	wrapped := newFunc(t, "wrapped", func(context.Context, *daskr.Call) (any, error) {
		return nil, fmt.Errorf("reading the input: %w", errMine)
	})
	typed := newFunc(t, "typed", func(context.Context, *daskr.Call) (any, error) {
		return nil, &quotaError{Used: 7, Limit: 5}
	})
	must[daskr.TaskHandle](t)(g.AddTask("a", wrapped, nil, nil))
	must[daskr.TaskHandle](t)(g.AddTask("b", incFunc(t), []any{daskr.Ref("a")}, nil))
	must[daskr.TaskHandle](t)(g.AddTask("q", typed, nil, nil))
	// An inline task's error: the entry holding it is the key.
	must[daskr.TaskHandle](t)(g.AddTask("outer", incFunc(t), []any{daskr.Inline{Func: wrapped}}, nil))

	for _, s := range []daskr.Scheduler{daskr.Sync, daskr.Threads} {
		opts := &daskr.Options{Scheduler: s}
		_, err := g.GetWith(context.Background(), opts, "b")
		if !errors.Is(err, errMine) {
			t.Fatalf("%v: errors.Is(err, errMine) is false: %v", s, err)
		}
		var de *daskr.Error
		if !errors.As(err, &de) || de.Kind != daskr.TaskFailed || de.Key != "a" {
			t.Fatalf("%v: %+v", s, de)
		}
		_, err = g.GetWith(context.Background(), opts, "q")
		var qe *quotaError
		if !errors.As(err, &qe) || qe.Used != 7 || asError(t, err).Key != "q" {
			t.Fatalf("%v: %v", s, err)
		}
		_, err = g.GetWith(context.Background(), opts, "outer")
		if !errors.Is(err, errMine) || asError(t, err).Key != "outer" {
			t.Fatalf("%v: %v", s, err)
		}
	}
	// Errors that are daskr's own wrap nothing.
	_, err := g.Get(context.Background(), "nope")
	if e := asError(t, err); e.Kind != daskr.MissingKey || e.Unwrap() != nil {
		t.Fatalf("%+v", e)
	}
}
