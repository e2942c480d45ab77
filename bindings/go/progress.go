package daskr

// #include "shim.h"
import "C"

import "runtime"

// Progress counts the entries of the gets it is attached to (Options.Progress) as they run,
// for another goroutine to read while a Get runs — to draw a progress bar. Workers publish
// counts in small batches, so attaching it costs a run nothing measurable. Safe for
// concurrent use; Close it when no Get uses it.
type Progress struct {
	c *C.daskr_progress_t
}

// NewProgress makes a progress counter.
func NewProgress() *Progress {
	p := &Progress{c: C.daskr_progress_new()}
	runtime.SetFinalizer(p, (*Progress).Close)
	return p
}

// Close frees the counter. It must not be attached to a running Get.
func (p *Progress) Close() {
	if p != nil && p.c != nil {
		C.daskr_progress_free(p.c)
		p.c = nil
		runtime.SetFinalizer(p, nil)
	}
}

func (p *Progress) raw() *C.daskr_progress_t {
	if p == nil {
		return nil
	}
	return p.c
}

// Total is the number of entries the current (or last) Get needs, literals included.
func (p *Progress) Total() uint64 {
	n := uint64(C.daskr_progress_total(p.raw()))
	runtime.KeepAlive(p)
	return n
}

// Done is the number of entries run so far: a little behind while a Get runs, exact once it
// has returned. Entries found in a result cache count as done.
func (p *Progress) Done() uint64 {
	n := uint64(C.daskr_progress_done(p.raw()))
	runtime.KeepAlive(p)
	return n
}

// Running reports whether a Get using this counter is running.
func (p *Progress) Running() bool {
	r := bool(C.daskr_progress_running(p.raw()))
	runtime.KeepAlive(p)
	return r
}
