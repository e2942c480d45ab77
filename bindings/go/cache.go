package daskr

// #include "daskr.h"
import "C"

import "runtime"

// Cache is a result cache directory: give it to a Get (Options.Cache) and the tasks found in
// it are not run, while what runs is stored under a hash of its function (NewVersionedFunc,
// or a plugin task) and its arguments. A rerun after a failure resumes; a rerun after a
// changed input runs only what depends on it. Safe for concurrent use; other processes may
// share the directory. Close it when done (the directory stays).
type Cache struct {
	c *C.daskr_cache_t
}

// OpenCache opens (creating if need be) the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	cdir := cString(dir)
	defer free(cdir)
	var out *C.daskr_cache_t
	if err := takeError(C.daskr_cache_open(cdir, &out)); err != nil {
		return nil, err
	}
	c := &Cache{c: out}
	runtime.SetFinalizer(c, (*Cache).Close)
	return c, nil
}

func (c *Cache) raw() *C.daskr_cache_t {
	if c == nil {
		return nil
	}
	return c.c
}

// SetMaxBytes bounds the directory: after a Get that stored results, the least recently used
// entries are removed until the rest fit. 0: no bound.
func (c *Cache) SetMaxBytes(n uint64) { C.daskr_cache_set_max_bytes(c.raw(), C.uint64_t(n)) }

// SetMaxEntryBytes sets the largest result stored: one whose encoding is larger is not. 0: no
// limit.
func (c *Cache) SetMaxEntryBytes(n uint64) { C.daskr_cache_set_max_entry_bytes(c.raw(), C.uint64_t(n)) }

// Usage reports how many entries the directory holds, and their bytes.
func (c *Cache) Usage() (entries, bytes uint64) {
	var e, b C.uint64_t
	C.daskr_cache_usage(c.raw(), &e, &b)
	return uint64(e), uint64(b)
}

// Clear removes every entry.
func (c *Cache) Clear() error { return takeError(C.daskr_cache_clear(c.raw())) }

// Close frees the handle. Safe to call twice; it must not be attached to a running Get.
func (c *Cache) Close() {
	if c != nil && c.c != nil {
		C.daskr_cache_free(c.c)
		c.c = nil
		runtime.SetFinalizer(c, nil)
	}
}
