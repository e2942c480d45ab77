package daskr

/*
#include "daskr.h"
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"unsafe"
)

// A running Get, as its tasks see it: the context they receive, and the errors Go tasks
// returned, by key, so the Get's error can wrap the task's own.
//
// Each Get has its own daskr cancel switch, and a task finds it through its call
// (daskr_call_cancel, in the C trampoline): that is how a task function shared by concurrent Gets (of one graph
// or several) tells which Get it runs for. The switch's address keys the registry.
type running struct {
	ctx    context.Context
	cancel context.CancelFunc // ends ctx: a task failed, or the Get returned
	mu     sync.Mutex
	errs   map[string]error
}

var runningGets sync.Map // uintptr (the Get's *C.daskr_cancel_t) -> *running

func startRunning(ctx context.Context, cancel *C.daskr_cancel_t) *running {
	r := &running{}
	r.ctx, r.cancel = context.WithCancel(ctx)
	runningGets.Store(uintptr(unsafe.Pointer(cancel)), r)
	return r
}

// end forgets the Get (its tasks have all returned) and ends its tasks' context.
func (r *running) end(cancel *C.daskr_cancel_t) {
	runningGets.Delete(uintptr(unsafe.Pointer(cancel)))
	r.cancel()
}

// runningGet is the Get whose cancel switch is at address cancel (what daskr_call_cancel gave
// the task); nil for none, or for a get this package did not start (a Go function run by a C
// or C++ caller's get).
func runningGet(cancel uintptr) *running {
	if cancel == 0 {
		return nil
	}
	r, _ := runningGets.Load(cancel)
	get, _ := r.(*running)
	return get
}

// failed records the error the task computing key returned (the first, if several inline
// tasks of one entry fail) and ends the other tasks' context: the Get fails anyway.
func (r *running) failed(key string, err error) {
	r.mu.Lock()
	if r.errs == nil {
		r.errs = make(map[string]error)
	}
	if _, ok := r.errs[key]; !ok {
		r.errs[key] = err
	}
	r.mu.Unlock()
	r.cancel()
}

// wrap gives the Get's outcome its Go meaning: a TaskFailed error wraps the error its Go task
// returned; a Get whose context ended (before or while it ran, even if its tasks finished)
// fails with Cancelled wrapping ctx.Err().
func (r *running) wrap(ctx context.Context, err error) error {
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return err // a callback's panic
	}
	if ctxErr := ctx.Err(); ctxErr != nil && (e == nil || e.Kind == Cancelled || e.Kind == TaskFailed) {
		if e != nil && e.Kind == Cancelled {
			e.Err = ctxErr
			return e
		}
		msg := "the context ended during the get (" + ctxErr.Error() + ")"
		if e != nil {
			msg += "; " + e.Message
		}
		return &Error{Kind: Cancelled, Message: msg, Err: ctxErr}
	}
	if e != nil && e.Kind == TaskFailed && e.Key != "" {
		r.mu.Lock()
		e.Err = r.errs[e.Key]
		r.mu.Unlock()
	}
	return err
}
