package daskr

// LiveHandles is the test hook on the package's count of live cgo handles.
func LiveHandles() int64 { return liveHandles.Load() }
