package daskr

// #include "shim.h"
// #include <stdlib.h>
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// ProfileTask is one entry's run, as a Profile recorded it.
type ProfileTask struct {
	Key    string
	Func   string // the task's function name; "alias", "list" or "literal" for other entries
	Worker uint32 // 0 is the thread that called Get
	Start  time.Duration
	End    time.Duration // since the Get started
	OK     bool
}

// Profile records the gets it is attached to (Options.Profile) and keeps the last one's
// profile: each entry timed on the thread that ran it, and the scheduler's phases. It costs two
// clock reads per entry while attached. Safe for concurrent use; Close it when done.
type Profile struct {
	c *C.daskr_profile_t
}

// NewProfile makes a profile recorder.
func NewProfile() *Profile {
	p := &Profile{c: C.daskr_profile_new()}
	runtime.SetFinalizer(p, (*Profile).Close)
	return p
}

// Close frees the recorder. It must not be attached to a running Get.
func (p *Profile) Close() {
	if p != nil && p.c != nil {
		C.daskr_profile_free(p.c)
		p.c = nil
		runtime.SetFinalizer(p, nil)
	}
}

func (p *Profile) raw() *C.daskr_profile_t {
	if p == nil {
		return nil
	}
	return p.c
}

// Tasks are the entries the last Get ran, in the order they started.
func (p *Profile) Tasks() []ProfileTask {
	n := int(C.daskr_profile_len(p.raw()))
	out := make([]ProfileTask, 0, n)
	for i := 0; i < n; i++ {
		var t C.daskr_profile_task_t
		if !C.daskr_profile_task(p.raw(), C.size_t(i), &t, C.size_t(unsafe.Sizeof(t))) {
			break
		}
		out = append(out, ProfileTask{
			Key: C.GoString(t.key), Func: C.GoString(t._func), Worker: uint32(t.worker),
			Start: time.Duration(t.start_ns), End: time.Duration(t.end_ns), OK: bool(t.ok),
		})
	}
	runtime.KeepAlive(p)
	return out
}

// WriteTrace writes the last Get as a Chrome trace / Perfetto JSON file.
func (p *Profile) WriteTrace(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	err := takeError(C.daskr_profile_write_trace(p.raw(), cpath))
	runtime.KeepAlive(p)
	return err
}
