package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// runResult is what one kernel's run produced; saved as result.json next to
// its logs, and read back for the matrix.
type runResult struct {
	Kernel         string      `json:"kernel"`            // 6.1, or host
	Release        string      `json:"release,omitempty"` // uname -r
	Status         string      `json:"status"`            // pass, fail, error, or - (host: tests not run)
	Reason         string      `json:"reason,omitempty"`  // why error
	Accel          string      `json:"accel,omitempty"`
	BootSeconds    float64     `json:"boot_seconds,omitempty"` // QEMU start to /init, host clock
	WallSeconds    float64     `json:"wall_seconds,omitempty"` // QEMU start to exit
	MissingModules []string    `json:"missing_modules,omitempty"`
	Packages       []pkgResult `json:"packages,omitempty"`
}

type pkgResult struct {
	Name    string   `json:"name"`
	RC      int      `json:"rc"`
	Seconds float64  `json:"seconds"`
	Pass    []string `json:"pass,omitempty"`
	Fail    []string `json:"fail,omitempty"`
	Skip    []string `json:"skip,omitempty"`
	// SkipWhy is each skipped test's t.Skip message (its last log line).
	SkipWhy map[string]string `json:"skip_why,omitempty"`
	Note    string            `json:"note,omitempty"` // a panic or timeout line
}

// boot runs the VM to the end and fills res from its output in outDir.
func boot(ctx context.Context, cfg *config, kt *kernelTree, initrd, outDir string, res *runResult) error {
	// The raw serial output goes to a file of this run's own, so that two
	// runs of one kernel cannot take each other's.
	tmp, err := os.MkdirTemp("", "vmtest-serial-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	console, guestOut := filepath.Join(outDir, "console.log"), filepath.Join(tmp, "guest.out")
	var q qemuRun
	for {
		accel, name := accelArgs()
		res.Accel = name
		args := append([]string{
			"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
			"-machine", "q35"}, accel...)
		args = append(args,
			"-smp", strconv.Itoa(cfg.smp), "-m", cfg.mem,
			"-kernel", kt.Vmlinuz, "-initrd", initrd,
			"-append", "console=ttyS0 panic=-1 oops=panic rdinit=/init loglevel=4",
			"-serial", "file:"+console, "-serial", "file:"+guestOut,
			"-monitor", "none", "-nic", "none")
		logf("booting %s (%s) with %s, %s RAM", kt.Name, kt.Release, res.Accel, cfg.mem)
		q = runQemu(ctx, cfg, args, console, guestOut, res, name == "kvm")
		if name == "kvm" && res.BootSeconds == 0 && (q.stalled || q.waitErr != nil && !q.timedOut) {
			// A nested KVM that aborts on an MSR or runs a guest that
			// never prints: this host's KVM cannot run the tests.
			kvmFailed.Store(true)
			why := "its guest printed nothing in " + kvmStall.String()
			if !q.stalled {
				why = fmt.Sprintf("qemu: %v: %s", q.waitErr, firstLine(q.stderr))
			}
			logf("kvm could not boot %s (%s); tcg from now on", kt.Name, why)
			continue
		}
		break
	}

	raw, err := os.ReadFile(guestOut)
	if err != nil {
		return err
	}
	g := parseGuest(raw)
	os.Remove(guestOut)
	if err := os.WriteFile(filepath.Join(outDir, "test.log"), g.testLog, 0o644); err != nil {
		return err
	}
	if len(g.probe) > 0 {
		if err := os.WriteFile(filepath.Join(outDir, "probe.json"), g.probe, 0o644); err != nil {
			return err
		}
	}
	res.Packages = g.packages
	if g.release != "" {
		res.Release = g.release
	}
	switch {
	case q.timedOut:
		res.Status, res.Reason = "error", fmt.Sprintf("VM timed out after %s (raise --timeout)", cfg.timeout)
	case !g.haveResult && q.waitErr != nil:
		res.Status, res.Reason = "error", fmt.Sprintf("qemu: %v: %s", q.waitErr, q.stderr)
	case !g.haveResult:
		res.Status, res.Reason = "error", "the guest stopped before its result line: "+lastKernelWords(console)
	case g.rc == 0:
		res.Status = "pass"
	default:
		res.Status = "fail"
	}
	return nil
}

// probeFilter passes the guest's output on line by line, all but the
// probe report, which goes to probe.json.
type probeFilter struct {
	w       io.Writer
	partial []byte
	inProbe bool
}

func (f *probeFilter) Write(b []byte) (int, error) {
	f.partial = append(f.partial, b...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := f.partial[:i+1]
		switch t := string(bytes.TrimSpace(line)); {
		case t == "VMTEST-PROBE-BEGIN":
			f.inProbe = true
		case t == "VMTEST-PROBE-END":
			f.inProbe = false
			fmt.Fprintln(f.w, "(xlb probe --json: saved as probe.json)")
		case !f.inProbe:
			if _, err := f.w.Write(line); err != nil {
				return len(b), err
			}
		}
		f.partial = f.partial[i+1:]
	}
}

// kvmFailed is set once this host's KVM could not boot a guest: every
// later boot of this process goes by TCG.
var kvmFailed atomic.Bool

// kvmStall is how long a KVM guest may print nothing on its console
// before it is taken for a KVM that cannot run it (a TCG boot prints
// within seconds).
const kvmStall = 45 * time.Second

// accelArgs: KVM where /dev/kvm opens and has not failed, else TCG.
func accelArgs() ([]string, string) {
	if !kvmFailed.Load() {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			return []string{"-accel", "kvm", "-cpu", "host"}, "kvm"
		}
	}
	return []string{"-accel", "tcg,thread=single", "-cpu", "max"}, "tcg (single-threaded)"
}

type qemuRun struct {
	waitErr  error
	stderr   string
	timedOut bool // cfg.timeout passed
	stalled  bool // watched: nothing on the console within kvmStall
}

// runQemu runs one VM to its end, streaming the guest's output and
// noting when it booted in res.
func runQemu(ctx context.Context, cfg *config, args []string, console, guestOut string, res *runResult, watch bool) qemuRun {
	var q qemuRun
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	start := time.Now()
	res.BootSeconds = 0
	if err := cmd.Start(); err != nil {
		q.waitErr = fmt.Errorf("start qemu: %w", err)
		return q
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var stream io.Writer = &probeFilter{w: os.Stdout}
	if cfg.quiet {
		stream = io.Discard
	}
	con, out := &tail{path: console}, &tail{path: guestOut}
	printed := false
	for running := true; running; {
		select {
		case q.waitErr = <-done:
			running = false
		case <-time.After(200 * time.Millisecond):
		}
		c := con.poll()
		printed = printed || len(c) > 0
		if res.BootSeconds == 0 && bytes.Contains(c, []byte("VMTEST: booted")) {
			res.BootSeconds = time.Since(start).Seconds()
		}
		stream.Write(out.poll())
		if watch && running && !printed && !q.stalled && time.Since(start) > kvmStall {
			q.stalled = true
			cancel()
		}
	}
	res.WallSeconds = time.Since(start).Seconds()
	con.close()
	out.close()
	q.timedOut = !q.stalled && errors.Is(ctx.Err(), context.DeadlineExceeded)
	q.stderr = strings.TrimSpace(qemuErr.String())
	return q
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// tail reads what QEMU appended to a file since the last poll.
type tail struct {
	path string
	f    *os.File
}

func (t *tail) poll() []byte {
	if t.f == nil {
		f, err := os.Open(t.path)
		if err != nil {
			return nil
		}
		t.f = f
	}
	b, _ := io.ReadAll(t.f)
	return b
}

func (t *tail) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// lastKernelWords returns the console's panic or Oops line, or its last line.
func lastKernelWords(console string) string {
	b, _ := os.ReadFile(console)
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(b), "\r", "")), "\n")
	for _, l := range lines {
		if strings.Contains(l, "Kernel panic") || strings.Contains(l, "Oops") || strings.Contains(l, "BUG:") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// guestOutput is the guest's ttyS1 stream taken apart.
type guestOutput struct {
	probe      []byte // xlb probe --json
	testLog    []byte // everything else
	packages   []pkgResult
	rc         int
	haveResult bool
	release    string
}

var (
	testLineRe = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)
	// a t.Log / t.Skip line of go test -v: "    file_test.go:12: message"
	testLogRe = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
	runLineRe = regexp.MustCompile(`^=== (?:RUN|CONT) +(\S+)`)
	pkgEndRe  = regexp.MustCompile(`^VMTEST-PKG-END (\S+) rc=(\d+) secs=([0-9.e+-]+)`)
	resultRe  = regexp.MustCompile(`^VMTEST-RESULT rc=(\d+) kernel=(\S+)`)
)

func parseGuest(raw []byte) guestOutput {
	var g guestOutput
	var log, probe bytes.Buffer
	inProbe := false
	var cur *pkgResult
	// why is each test's skip message as far as the log shows it: with
	// -v, log lines stream under the "=== RUN" (or "=== CONT") of the test
	// running, before its "--- SKIP" (which, for a subtest, comes only
	// when its parent ends). The message is the test's last one-line log
	// entry: a multi-line one (a daemon log dumped by a cleanup) is not it.
	why := map[string]string{}
	var running, prev string
	logIndent := -1 // the indent of the log line just seen, -1 if none
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "VMTEST-PROBE-BEGIN":
			inProbe = true
			continue
		case line == "VMTEST-PROBE-END":
			inProbe = false
			continue
		case inProbe:
			probe.WriteString(line + "\n")
			continue
		}
		log.WriteString(line + "\n")
		if name, ok := strings.CutPrefix(line, "VMTEST-PKG-BEGIN "); ok {
			g.packages = append(g.packages, pkgResult{Name: name, RC: -1})
			cur = &g.packages[len(g.packages)-1]
			continue
		}
		if m := pkgEndRe.FindStringSubmatch(line); m != nil && cur != nil {
			cur.RC, _ = strconv.Atoi(m[2])
			cur.Seconds, _ = strconv.ParseFloat(m[3], 64)
			cur = nil
			continue
		}
		if m := resultRe.FindStringSubmatch(line); m != nil {
			g.rc, _ = strconv.Atoi(m[1])
			g.release, g.haveResult = m[2], true
			continue
		}
		if cur == nil {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		run, m := runLineRe.FindStringSubmatch(line), testLogRe.FindStringSubmatch(line)
		switch {
		case run != nil:
			running, logIndent = run[1], -1
		case m != nil:
			prev, why[running], logIndent = why[running], m[1], indent
		case logIndent >= 0 && indent > logIndent && strings.TrimSpace(line) != "":
			why[running], logIndent = prev, -1 // a multi-line entry
		default:
			logIndent = -1
		}
		if m := testLineRe.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "PASS":
				cur.Pass = append(cur.Pass, m[2])
			case "FAIL":
				cur.Fail = append(cur.Fail, m[2])
			case "SKIP":
				cur.Skip = append(cur.Skip, m[2])
				if w := why[m[2]]; w != "" {
					if cur.SkipWhy == nil {
						cur.SkipWhy = map[string]string{}
					}
					cur.SkipWhy[m[2]] = w
				}
			}
		} else if cur.Note == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
			cur.Note = line
		}
	}
	g.probe, g.testLog = probe.Bytes(), log.Bytes()
	return g
}
