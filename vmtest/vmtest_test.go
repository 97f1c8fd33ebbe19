package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/probe"
)

// The committed lock file parses, pins every kernel of the matrix, and is
// written back byte for byte.
func TestKernelsLock(t *testing.T) {
	lf, err := readLock("kernels.lock")
	require.NoError(t, err)
	assert.Equal(t, []string{"5.10", "6.1", "6.12", "7.3"}, lf.kernels())
	assert.Equal(t, []string{"bullseye-security", "bookworm-security", "trixie-backports"}, lf.suites())
	ps, err := lf.pinsFor("7.3")
	require.NoError(t, err)
	require.Len(t, ps, 3, "7.3 is split into linux-binary, linux-modules and linux-base")
	for _, p := range lf.pins {
		assert.Equal(t, formatPin(p), strings.TrimSpace(lineOf(t, lf, p)), "lock line not in formatPin's layout")
	}
	_, err = lf.pinsFor("4.19")
	assert.ErrorContains(t, err, `no kernel "4.19"`)

	orig, err := os.ReadFile("kernels.lock")
	require.NoError(t, err)
	lf.path = filepath.Join(t.TempDir(), "kernels.lock")
	require.NoError(t, lf.write())
	again, err := os.ReadFile(lf.path)
	require.NoError(t, err)
	assert.Equal(t, string(orig), string(again))
}

func lineOf(t *testing.T, lf *lockFile, p pin) string {
	for _, l := range lf.lines {
		if strings.Contains(l, p.String()+" ") {
			return l
		}
	}
	t.Fatalf("no line for %s", p)
	return ""
}

func TestParsePinErrors(t *testing.T) {
	for line, want := range map[string]string{
		"6.1 bookworm linux-image-x=1":                          "got 3 fields",
		"6.1 bookworm linux-image-x " + strings.Repeat("a", 64): "is not <package>=<version>",
		"6.1 bookworm linux-image-x=1 abc":                      "is not a sha256",
	} {
		_, _, err := parsePin(line)
		assert.ErrorContains(t, err, want, line)
	}
	_, ok, err := parsePin("   # comment")
	assert.NoError(t, err)
	assert.False(t, ok)
}

func TestLockReplace(t *testing.T) {
	sum := strings.Repeat("b", 64)
	lf := &lockFile{path: "x", lines: []string{
		"# head",
		formatPin(pin{"6.1", "bookworm-security", "linux-image-6.1.0-1-cloud-amd64", "6.1.1-1", sum}),
		formatPin(pin{"7.3", "trixie-backports", "linux-binary-7.3.1+deb13-cloud-amd64", "7.3.1-1", sum}),
		formatPin(pin{"7.3", "trixie-backports", "linux-modules-7.3.1+deb13-cloud-amd64", "7.3.1-1", sum}),
		"# tail",
	}}
	for _, l := range lf.lines {
		if p, ok, _ := parsePin(l); ok {
			lf.pins = append(lf.pins, p)
		}
	}
	np := pin{"7.3", "trixie-backports", "linux-binary-7.3.9+deb13-cloud-amd64", "7.3.9-1", sum}
	lf.replace("7.3", []pin{np})
	assert.Equal(t, []string{"# head", lf.lines[1], formatPin(np), "# tail"}, lf.lines)
	ps, _ := lf.pinsFor("7.3")
	assert.Equal(t, []pin{np}, ps)
}

func TestMadison(t *testing.T) {
	out := ` linux-image-6.1.0-56-cloud-amd64 | 6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 linux-image-6.1.0-56-cloud-amd64 | 6.1.192-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
`
	assert.Equal(t, []string{"6.1.192-2"}, madison(out, "bookworm-security"))
	assert.Equal(t, []string{"6.1.192-1"}, madison(out, "bookworm"))
	assert.Empty(t, madison(out, "trixie"))
}

func TestLddPaths(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd4b1e5000)
	libbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f0c1b0a0000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1ae00000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0c1b14a000)
`
	assert.Equal(t, []string{"/lib/x86_64-linux-gnu/libbpf.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}, lddPaths(out))
}

const guestSample = `VMTEST-MODULE-FAILED ip_vs_mh: modprobe: FATAL: Module ip_vs_mh not found
VMTEST-PROBE-BEGIN
{"kernel": "6.1.0-56-cloud-amd64", "results": []}
VMTEST-PROBE-END
VMTEST-PKG-BEGIN pkg_a
=== RUN   TestOne
--- PASS: TestOne (0.00s)
=== RUN   TestTwo
=== RUN   TestTwo/sub
--- FAIL: TestTwo (0.10s)
    --- FAIL: TestTwo/sub (0.10s)
=== RUN   TestThree
    three_test.go:9: kernel 5.10 is too old
--- SKIP: TestThree (0.00s)
FAIL
VMTEST-PKG-END pkg_a rc=1 secs=1.5
VMTEST-PKG-BEGIN pkg_b
=== RUN   TestHang
panic: test timed out after 20m0s
VMTEST-PKG-END pkg_b rc=2 secs=1200.25
VMTEST-RESULT rc=1 kernel=6.1.0-56-cloud-amd64 uptime=1210.5
`

func TestParseGuest(t *testing.T) {
	g := parseGuest([]byte(guestSample))
	assert.JSONEq(t, `{"kernel": "6.1.0-56-cloud-amd64", "results": []}`, string(g.probe))
	assert.NotContains(t, string(g.testLog), "PROBE")
	assert.Contains(t, string(g.testLog), "--- FAIL: TestTwo/sub")
	assert.True(t, g.haveResult)
	assert.Equal(t, 1, g.rc)
	assert.Equal(t, "6.1.0-56-cloud-amd64", g.release)
	assert.Equal(t, []pkgResult{
		{Name: "pkg_a", RC: 1, Seconds: 1.5, Pass: []string{"TestOne"}, Fail: []string{"TestTwo", "TestTwo/sub"}, Skip: []string{"TestThree"},
			SkipWhy: map[string]string{"TestThree": "kernel 5.10 is too old"}},
		{Name: "pkg_b", RC: 2, Seconds: 1200.25, Note: "panic: test timed out after 20m0s"},
	}, g.packages)

	// Skip messages belong to the test that logged them, and a multi-line
	// entry (a cleanup's dump) is not one.
	g = parseGuest([]byte(`VMTEST-PKG-BEGIN pkg_c
=== RUN   TestParent
=== RUN   TestParent/xdp
    run_test.go:416: kernel too old
=== RUN   TestParent/ipvs
    run_test.go:118: daemon log:
        time=... msg=started
--- PASS: TestParent (1.00s)
    --- SKIP: TestParent/xdp (0.00s)
    --- PASS: TestParent/ipvs (1.00s)
=== RUN   TestAlone
    alone_test.go:20: no keepalived here
    run_test.go:118: daemon log:
        time=... msg=started
--- SKIP: TestAlone (0.00s)
VMTEST-PKG-END pkg_c rc=0 secs=2
`))
	assert.Equal(t, map[string]string{"TestParent/xdp": "kernel too old", "TestAlone": "no keepalived here"}, g.packages[0].SkipWhy)

	// A guest that died mid-package: no result, the package unfinished.
	g = parseGuest([]byte("VMTEST-PKG-BEGIN pkg_a\n=== RUN   TestOne\n"))
	assert.False(t, g.haveResult)
	assert.Equal(t, []pkgResult{{Name: "pkg_a", RC: -1}}, g.packages)
}

func TestPrintMatrix(t *testing.T) {
	rep := func(kernel string, statuses ...probe.Status) *probe.Report {
		r := &probe.Report{Kernel: kernel}
		for i, f := range probe.Features {
			res := probe.Result{Feature: f, Status: statuses[i]}
			if res.Status != probe.OK {
				res.Reason = f + " said no"
			}
			r.Results = append(r.Results, res)
		}
		return r
	}
	ok, miss := probe.OK, probe.Missing
	old := rep("5.10.0-46-cloud-amd64", ok, ok, miss, ok, ok, ok)
	old.Dataplane, old.DataplaneReason = "ipvs", "kernel 5.10 is older than the XDP data plane needs"
	host := rep("6.18.44", ok, ok, ok, ok, ok, miss)
	host.Dataplane = "xdp-native"
	rows := []row{
		{name: "host", result: &runResult{Kernel: "host", Status: "-"}, probe: host},
		{name: "5.10", result: &runResult{Kernel: "5.10", Status: "pass", Packages: []pkgResult{
			{Name: "pkg_a", Skip: []string{"TestA", "TestB", "TestC", "TestD"}, SkipWhy: map[string]string{
				"TestA": "kernel too old", "TestB": "kernel too old", "TestC": "kernel too old", "TestD": "kernel too old"}},
			{Name: "pkg_b", Skip: []string{"TestE"}},
		}}, probe: old},
		{name: "6.1", result: &runResult{Kernel: "6.1", Status: "fail", Packages: []pkgResult{
			{Name: "pkg_a", RC: 0}, {Name: "pkg_b", RC: 1, Fail: []string{"TestX"}},
		}}, probe: rep("6.1.0-56-cloud-amd64", ok, ok, miss, ok, ok, ok)},
		{name: "7.3", result: &runResult{Kernel: "7.3", Release: "7.3.4+deb13-cloud-amd64", Status: "error", Reason: "VM timed out after 1h0m0s"}},
	}
	var b bytes.Buffer
	printMatrix(&b, rows)
	assert.Equal(t, `kernel  release                  xdp-native  xdp-generic  tcx      clsact  prog-test-run  ipvs     auto        tests
host    6.18.44                  ok          ok           ok       ok      ok             missing  xdp-native  -
5.10    5.10.0-46-cloud-amd64    ok          ok           missing  ok      ok             ok       ipvs        pass (5 skipped)
6.1     6.1.0-56-cloud-amd64     ok          ok           missing  ok      ok             ok       ?           fail
7.3     7.3.4+deb13-cloud-amd64  ?           ?            ?        ?       ?              ?        ?           error

reasons:
  host  ipvs: ipvs said no
  5.10  auto: ipvs: kernel 5.10 is older than the XDP data plane needs
  5.10  tcx: tcx said no
  6.1   tcx: tcx said no
  7.3   all: no probe report (VM timed out after 1h0m0s)

skipped tests, by reason:
  5.10  4: kernel too old (TestA, TestB, TestC, and 1 more)
  5.10  1: no reason given (TestE)

test failures:
  6.1   fail: pkg_b: TestX
  7.3   error: VM timed out after 1h0m0s
`, b.String())
}

func TestSourcesList(t *testing.T) {
	a := &apt{suites: []string{"bullseye-security", "trixie-backports"}, mirror: "http://mirror.example"}
	assert.Equal(t, `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security bullseye-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie-backports main
`, a.sourcesList())
}

func TestProbeFilter(t *testing.T) {
	var b bytes.Buffer
	f := &probeFilter{w: &b}
	for _, chunk := range []string{"VMTEST-MOD", "ULE-FAILED x\nVMTEST-PROBE-BEGIN\n{\"kernel\"", ": \"6.1\"}\nVMTEST-PROBE-END\n=== RUN   TestA\n--- PA", "SS: TestA\n"} {
		n, err := f.Write([]byte(chunk))
		require.NoError(t, err)
		assert.Equal(t, len(chunk), n)
	}
	assert.Equal(t, "VMTEST-MODULE-FAILED x\n(xlb probe --json: saved as probe.json)\n=== RUN   TestA\n--- PASS: TestA\n", b.String())
}

func TestLeaves(t *testing.T) {
	assert.Equal(t, []string{"TestA/x", "TestA/y/z", "TestB"}, leaves([]string{"TestA", "TestA/x", "TestA/y", "TestA/y/z", "TestB"}))
}
