package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sample belongs to the source line whose code starts at or before it
// within xlb's programs; samples outside them count only per symbol.
func TestSamplesOnLines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("jit.ksyms", "ffffffffc0001000 256\n")
	write("jit.lines", "ffffffffc0001000 xdp_lb.bpf.c:10 int xlb_xdp(struct xdp_md *ctx)\n"+
		"ffffffffc0001040 flowcache.h:94 struct flow_hint *h = lookup();\n")
	perf := strings.Join([]string{
		" ffffffffc0001000 bpf_prog_1_xlb_xdp",
		" ffffffffc0001041 bpf_prog_1_xlb_xdp",
		" ffffffffc0001050 bpf_prog_1_xlb_xdp",
		" ffffffffc00010ff bpf_prog_1_xlb_xdp",
		" ffffffffc0001100 bpf_prog_2_bench_harness", // one past the span
		" ffffffff81000000 bpf_test_run",
	}, "\n")
	var out bytes.Buffer
	if err := run(strings.NewReader(perf), &out, dir, 10); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"samples: 6, in xlb's programs 4",
		"       4 bpf_prog_1_xlb_xdp",
		" 75.0% flowcache.h:94 struct flow_hint *h = lookup();",
		" 25.0% xdp_lb.bpf.c:10 int xlb_xdp(struct xdp_md *ctx)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// A map from another run (no sample in its programs) is an error, not an
// empty profile.
func TestOtherRunsMap(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "jit.ksyms"), []byte("ffffffffc0001000 16\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "jit.lines"), []byte("ffffffffc0001000 a.c:1 x\n"), 0o644)
	err := run(strings.NewReader(" ffffffffc0009000 bpf_prog_9_xlb_xdp\n"), &bytes.Buffer{}, dir, 10)
	if err == nil || !strings.Contains(err.Error(), "same run") {
		t.Fatalf("err = %v, want one asking whether it was the same run", err)
	}
}
