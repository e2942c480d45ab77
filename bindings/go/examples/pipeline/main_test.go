package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Go pipeline prints what the C one does (the C binary is built by `make pipeline`; the
// first line, the computed result, is also checked on its own).
func TestSameOutputAsC(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	const want = "[store -> results] 19 readings from 3 files, mean 87.31\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("got %q, want it to start with %q", out.String(), want)
	}
	cBinary := filepath.Join("..", "..", "..", "..", "target", "examples", "pipeline")
	if _, err := os.Stat(cBinary); err != nil {
		t.Skipf("%s not built (run `make pipeline`): compared the result line only", cBinary)
	}
	cOut, err := exec.Command(cBinary).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(cOut) {
		t.Fatalf("Go printed\n%s\nC printed\n%s", out.String(), cOut)
	}
}
