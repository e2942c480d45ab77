package daskr

/*
#include "daskr.h"
*/
import "C"

import "fmt"

// ErrorKind says what went wrong; the numbers are daskr's stable ones.
type ErrorKind int

const (
	TaskFailed        ErrorKind = C.DASKR_ERROR_TASK_FAILED        // a task failed; Key is the task
	Cycle             ErrorKind = C.DASKR_ERROR_CYCLE              // Keys lists keys on the cycle
	MissingDependency ErrorKind = C.DASKR_ERROR_MISSING_DEPENDENCY // Key refers to Keys[0], which is not in the graph
	MissingKey        ErrorKind = C.DASKR_ERROR_MISSING_KEY        // a requested Key is not in the graph
	InvalidGraph      ErrorKind = C.DASKR_ERROR_INVALID_GRAPH      // a malformed entry (Key)
	Plugin            ErrorKind = C.DASKR_ERROR_PLUGIN
	Cancelled         ErrorKind = C.DASKR_ERROR_CANCELLED // the Get was cancelled (by its context)
	WorkerDied        ErrorKind = C.DASKR_ERROR_WORKER_DIED
	InvalidArgument   ErrorKind = C.DASKR_ERROR_INVALID_ARGUMENT // NULL, invalid UTF-8, a closed graph...
	GraphInUse        ErrorKind = C.DASKR_ERROR_GRAPH_IN_USE     // changed during a Get on it
	TypeMismatch      ErrorKind = C.DASKR_ERROR_TYPE_MISMATCH    // a value of another type than asked for
	Internal          ErrorKind = C.DASKR_ERROR_INTERNAL
)

// String is the kind's stable name: "task_failed", "cycle", ...
func (k ErrorKind) String() string {
	if n := C.daskr_error_kind_name(C.uint32_t(k)); n != nil {
		return C.GoString(n)
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is what every failing call returns (use errors.As to get at it).
type Error struct {
	Kind    ErrorKind
	Key     string   // the key at fault ("" if none)
	Keys    []string // other keys involved: the keys on a cycle, the missing dependency
	Message string   // daskr's message, naming the key and what went wrong
	// Err is the error underneath, if there is one: for TaskFailed, the error the Go task
	// returned; for Cancelled, the context's error (context.Canceled or
	// context.DeadlineExceeded). Unwrap gives it, so errors.Is and errors.As reach it.
	Err error
}

func (e *Error) Error() string { return e.Kind.String() + ": " + e.Message }

// Unwrap gives Err.
func (e *Error) Unwrap() error { return e.Err }

// takeError converts and frees a C error; nil for nil.
func takeError(e *C.daskr_error_t) error {
	if e == nil {
		return nil
	}
	defer C.daskr_error_free(e)
	err := &Error{
		Kind:    ErrorKind(C.daskr_error_kind(e)),
		Message: C.GoString(C.daskr_error_message(e)),
	}
	if k := C.daskr_error_key(e); k != nil {
		err.Key = C.GoString(k)
	}
	for i, n := C.size_t(0), C.daskr_error_keys_len(e); i < n; i++ {
		err.Keys = append(err.Keys, C.GoString(C.daskr_error_keys_at(e, i)))
	}
	return err
}

func newError(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
