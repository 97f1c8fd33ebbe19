// Command chaos runs the xlb binary as a director on a built-in namespace
// topology (client, director, three DR reals with HTTP), under a steady
// client load, and subjects it to the faults of a careless operator and a
// hostile local user, one after another. For each it records the failed
// requests, the daemon's RSS before and after, whether xlbadm -Ln still
// answers (and how fast), and whether the VIP is where it belongs, and
// writes them as a table (docs/chaos.md is its output). It exits 1 when a
// verdict fails: a failed request where the fault does not touch the
// serving path, failures past the bound where it does, RSS of 100 MB or
// more after a bad input, a listing that does not answer, a VIP misplaced.
//
//	go run ./tools/chaos [-o FILE]    (root; make chaos)
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

const (
	vip = "10.77.1.100"
	// maxRSS is what the daemon may hold after any bad input (MB).
	maxRSS = 100
)

func main() {
	out := flag.String("o", "", "write the table here (default: standard output)")
	only := flag.String("run", "", "run only the faults whose name contains this")
	holdSock := flag.String("hold", "", "(internal) hold -n connections to this socket until stdin closes")
	holdN := flag.Int("n", 0, "(internal) connections to hold")
	flag.Parse()
	if *holdSock != "" {
		hold(*holdSock, *holdN)
		return
	}
	if *only != "" {
		var keep []fault
		for _, f := range faults {
			if strings.Contains(f.name, *only) {
				keep = append(keep, f)
			}
		}
		faults = keep
	}
	if os.Geteuid() != 0 {
		fail("chaos needs root (namespaces, XDP)")
	}
	c, err := setup()
	if err != nil {
		fail("%v", err)
	}
	rows, err := c.run()
	c.close()
	if err != nil {
		fail("%v", err)
	}
	var b bytes.Buffer
	ok := c.report(&b, rows)
	if *out == "" {
		os.Stdout.Write(b.Bytes())
	} else if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fail("%v", err)
	} else {
		fmt.Printf("chaos: wrote %s\n", *out)
		os.Stdout.Write(b.Bytes())
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "chaos: a verdict failed (marked FAIL in the table)")
		os.Exit(1)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// chaos is the run: the topology, the binaries, the daemon, the load.
type chaos struct {
	tmp, xlb, xlbadm string
	topo             *testutil.DR
	conf, sock, pin  string
	d                *daemon
	load             *testutil.Load
	started          time.Time
}

const goodConf = `global_defs {
    router_id xlb-chaos
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
}

virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.77.0.13 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`

func setup() (*chaos, error) {
	tmp, err := os.MkdirTemp("", "xlb-chaos-")
	if err != nil {
		return nil, err
	}
	c := &chaos{tmp: tmp, xlb: filepath.Join(tmp, "xlb"), xlbadm: filepath.Join(tmp, "xlbadm"),
		conf: filepath.Join(tmp, "keepalived.conf"), sock: filepath.Join(tmp, "xlb.sock"),
		pin: "/sys/fs/bpf/xlb-chaos-" + testutil.Suffix()}
	logf("building xlb and xlbadm")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: %v", err)
	}
	for bin, pkg := range map[string]string{c.xlb: "./cmd/xlb", c.xlbadm: "./cmd/xlbadm"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	logf("building the topology")
	if c.topo, err = testutil.NewDR(testutil.DROptions{Reals: 3, Native: true}); err != nil {
		return nil, err
	}
	if err := c.topo.ServeHTTP(80); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.conf, []byte(goodConf), 0o644); err != nil {
		return nil, err
	}
	if c.d, err = c.startDaemon(); err != nil {
		return nil, err
	}
	if err := c.waitServing(20 * time.Second); err != nil {
		return nil, err
	}
	hc := c.topo.HTTPClient()
	hc.Timeout = 2 * time.Second
	c.load = testutil.StartLoad(hc, "http://"+vip+"/", 10_000_000)
	c.started = time.Now()
	return c, nil
}

func (c *chaos) close() {
	if c.load != nil {
		c.load.End()
	}
	if c.d != nil {
		c.d.stop()
	}
	c.topo.Close()
	_ = os.RemoveAll(c.pin)
	_ = os.RemoveAll(c.tmp)
}

// daemon is a running xlb run.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan error
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// runArgs run xlb in the director's network namespace: nsenter enters
// only that (ip netns exec would also give it a mount namespace of its
// own, whose bpffs, and pins, would die with the process).
func (c *chaos) runArgs(extra ...string) []string {
	args := []string{"--net=/run/netns/" + c.topo.Director.Name, c.xlb, "run", "-f", c.conf, "--socket", c.sock,
		"--pin-dir", c.pin, "--interface", "eth0", "--max-services", "64", "--max-conns", "16384",
		"--xlbadm-state", filepath.Join(filepath.Dir(c.sock), "xlbadm.rules")}
	return append(args, extra...)
}

func (c *chaos) startDaemon() (*daemon, error) {
	d := &daemon{done: make(chan error, 1)}
	// nsenter execs xlb: the pid is the daemon's.
	d.cmd = exec.Command("nsenter", c.runArgs()...)
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := control.NewClient(c.sock).Status(); err == nil {
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("xlb run ended: %v\n%s", err, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("xlb run did not answer on %s:\n%s", c.sock, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitServing waits for MASTER, the VIP and three healthy reals.
func (c *chaos) waitServing(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		st, err := control.NewClient(c.sock).Status()
		if err == nil && c.vipHere() == nil && master(st) && healthy(st) == 3 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the director is not serving (status error %v, vip %v):\n%s", err, c.vipHere(), c.d.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func master(st control.Status) bool {
	return len(st.VRRP) == 1 && st.VRRP[0].State == "MASTER"
}

func healthy(st control.Status) int {
	n := 0
	for _, s := range st.Services {
		for _, r := range s.Reals {
			if r.Healthy && r.InService {
				n++
			}
		}
	}
	return n
}

// vipHere says whether the VIP is on the director's eth0 and its VRRP
// instance MASTER: where it belongs, with one director.
func (c *chaos) vipHere() error {
	out, err := exec.Command("ip", "-n", c.topo.Director.Name, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip addr: %v", err)
	}
	if !strings.Contains(string(out), vip+"/32") {
		return fmt.Errorf("the VIP is not on the director")
	}
	return nil
}

// rss is the daemon's resident memory and its peak, in MB.
func rss(pid int) (now, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			now = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return now, peak
}

// list runs xlbadm -Ln and says how long it took and whether it listed
// the service.
func (c *chaos) list() (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.xlbadm, "-Ln")
	cmd.Env = append(os.Environ(), "XLB_SOCKET="+c.sock)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("xlbadm -Ln: %v: %s", err, firstLine(string(out)))
	}
	if !strings.Contains(string(out), vip+":80") {
		return took, fmt.Errorf("xlbadm -Ln does not list the service")
	}
	return took, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// row is one fault's outcome.
type row struct {
	name       string
	requests   int
	failed     int
	slowest    time.Duration // the slowest request that succeeded
	bound      string        // what may fail, and why
	maxFailed  int           // -1: judged by the fault itself
	badInput   bool          // RSS after must stay under maxRSS
	rssBefore  float64
	rssAfter   float64
	rssPeak    float64
	listTook   time.Duration
	listErr    error
	vipErr     error
	faultErr   error // the fault's own verdict
	note       string
	lingerFrom time.Time
}

func (r row) ok() bool {
	if r.faultErr != nil || r.listErr != nil || r.vipErr != nil {
		return false
	}
	if r.maxFailed >= 0 && r.failed > r.maxFailed {
		return false
	}
	return !r.badInput || r.rssAfter < maxRSS
}

// fault is one thing done to the director; it returns what it saw and an
// error when its own verdict fails.
type fault struct {
	name     string
	bound    string
	badInput bool
	// maxFailed: failures allowed in the window (-1: the fault judges).
	maxFailed int
	do        func(c *chaos, r *row) error
}

func (c *chaos) run() ([]row, error) {
	var rows []row
	for _, f := range faults {
		logf("fault: %s", f.name)
		r := row{name: f.name, bound: f.bound, badInput: f.badInput, maxFailed: f.maxFailed}
		pid := c.d.cmd.Process.Pid
		r.rssBefore, _ = rss(pid)
		time.Sleep(300 * time.Millisecond)
		from := time.Now()
		r.faultErr = f.do(c, &r)
		// Let requests sent during the fault finish (client timeout 2 s).
		time.Sleep(2500 * time.Millisecond)
		to := time.Now().Add(-2 * time.Second)
		rs := c.load.Between(from, to)
		r.requests, r.failed = len(rs), len(testutil.Failures(rs))
		for _, x := range rs {
			if x.Err == nil {
				r.slowest = max(r.slowest, x.Took)
			}
			if os.Getenv("CHAOS_DEBUG") != "" && x.Took > 50*time.Millisecond {
				logf("slow request at +%v: %v %s %v", x.At.Sub(from), x.Took, x.Name, x.Err)
			}
		}
		if r.maxFailed < 0 && r.faultErr == nil && !r.lingerFrom.IsZero() {
			// Failures are allowed only before the fault was dealt with.
			if late := testutil.Failures(c.load.Between(r.lingerFrom, to)); len(late) > 0 {
				r.faultErr = fmt.Errorf("%d requests failed after the director dealt with the fault: %v", len(late), late[0])
			}
		}
		pid = c.d.cmd.Process.Pid // a fault may restart it
		r.rssAfter, r.rssPeak = rss(pid)
		r.listTook, r.listErr = c.list()
		r.vipErr = c.vipHere()
		if r.vipErr == nil {
			if st, err := control.NewClient(c.sock).Status(); err != nil || !master(st) {
				r.vipErr = fmt.Errorf("VRRP is not MASTER (%v)", err)
			}
		}
		logf("  %d requests, %d failed; RSS %.0f -> %.0f MB; -Ln %v %v; vip %v; %v", r.requests, r.failed, r.rssBefore, r.rssAfter,
			r.listTook.Round(time.Millisecond), r.listErr, r.vipErr, r.faultErr)
		rows = append(rows, r)
	}
	return rows, nil
}

func (c *chaos) report(w io.Writer, rows []row) bool {
	kernel, _ := exec.Command("uname", "-r").Output()
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	total := c.load.Since(c.started)
	fmt.Fprintf(w, "# Chaos: faults against a running director\n\n")
	fmt.Fprintf(w, "Produced by `make chaos` (`tools/chaos`): the xlb binary as a DR director (XDP,\n")
	fmt.Fprintf(w, "native, on a veth) for three HTTP reals with TCP_CHECK, one VRRP instance, `--max-services 64\n")
	fmt.Fprintf(w, "--max-conns 16384`, and a client making one request after another on a new connection each\n")
	fmt.Fprintf(w, "(2 s timeout) through every fault. A fault's requests are those sent from its start until\n")
	fmt.Fprintf(w, "0.5 s after it ended, each given its 2 s; \"slowest answered\" is the longest of those that\n")
	fmt.Fprintf(w, "succeeded (1 s is a SYN retransmitted). RSS is the daemon's VmRSS before and after (peak\n")
	fmt.Fprintf(w, "VmHWM of the whole run at the end); `xlbadm -Ln` is run after each fault; the VIP must be on\n")
	fmt.Fprintf(w, "the director with its instance MASTER. Kernel %s, %s, xlb %s; %d requests in all, %d failed.\n\n",
		strings.TrimSpace(string(kernel)), time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(rev)), len(total), len(testutil.Failures(total)))
	fmt.Fprintln(w, "| fault | requests | failed | allowed | slowest answered | RSS MB before → after | `xlbadm -Ln` | VIP | verdict | what happened |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---|---|---|---|---|")
	ok := true
	peak := 0.0
	for _, r := range rows {
		peak = max(peak, r.rssPeak)
		verdict := "ok"
		if !r.ok() {
			verdict, ok = "**FAIL**", false
		}
		list := fmt.Sprintf("%d ms", r.listTook.Milliseconds())
		if r.listErr != nil {
			list = "**" + r.listErr.Error() + "**"
		}
		v := "director, MASTER"
		if r.vipErr != nil {
			v = "**" + r.vipErr.Error() + "**"
		}
		note := r.note
		if r.faultErr != nil {
			note = "**" + r.faultErr.Error() + "** " + note
		}
		rssCell := fmt.Sprintf("%.0f → %.0f", r.rssBefore, r.rssAfter)
		if r.badInput {
			rssCell += fmt.Sprintf(" (< %d)", maxRSS)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d ms | %s | %s | %s | %s | %s |\n", r.name, r.requests, r.failed, r.bound, r.slowest.Milliseconds(), rssCell, list, v, verdict,
			strings.ReplaceAll(note, "|", "\\|"))
	}
	fmt.Fprintf(w, "\nPeak RSS of the daemon over the run (VmHWM): %.0f MB.\n", peak)
	return ok
}

// sighup reloads and waits for the daemon to say how it went: the
// occurrences of want in its log grow.
func (c *chaos) sighup(want string, within time.Duration) (time.Duration, error) {
	before := strings.Count(c.d.logs(), want)
	start := time.Now()
	if err := c.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return 0, err
	}
	for time.Since(start) < within {
		if strings.Count(c.d.logs(), want) > before {
			return time.Since(start), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("no %q within %v", want, within)
}

// lastLine is the daemon's last log line containing s, trimmed.
func (c *chaos) lastLine(s string) string {
	lines := strings.Split(c.d.logs(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			l := lines[i]
			if j := strings.Index(l, "msg="); j >= 0 {
				l = l[j:]
			}
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

// badConfig puts something in place of the configuration, reloads, and
// expects the reload refused; then puts the good file back.
func badConfig(make func(path string) error) func(c *chaos, r *row) error {
	return func(c *chaos, r *row) error {
		defer func() {
			_ = os.RemoveAll(c.conf)
			_ = os.WriteFile(c.conf, []byte(goodConf), 0o644)
		}()
		if err := os.Remove(c.conf); err != nil {
			return err
		}
		if err := make(c.conf); err != nil {
			return err
		}
		took, err := c.sighup("reload refused", 60*time.Second)
		if err != nil {
			return err
		}
		r.note = fmt.Sprintf("refused in %d ms: `%s`", took.Milliseconds(), c.lastLine("reload refused"))
		st, err := control.NewClient(c.sock).Status()
		if err != nil {
			return err
		}
		if len(st.Services) != 1 || healthy(st) != 3 {
			return fmt.Errorf("the running configuration changed: %d services, %d healthy reals", len(st.Services), healthy(st))
		}
		return nil
	}
}

func manyServices(n int) func(path string) error {
	return func(path string) error {
		var b strings.Builder
		b.WriteString(goodConf)
		for i := range n {
			fmt.Fprintf(&b, "virtual_server 10.%d.%d.%d 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 10.77.0.11 80 {\n        weight 1\n    }\n}\n",
				100+i>>16, i>>8&255, i&255)
		}
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

var faults = []fault{
	{name: "second `xlb run` on the same pin directory and socket", bound: "0", maxFailed: 0, do: func(c *chaos, r *row) error {
		start := time.Now()
		out, err := exec.Command("nsenter", c.runArgs()...).CombinedOutput()
		took := time.Since(start)
		if err == nil {
			return fmt.Errorf("the second xlb run exited 0")
		}
		if took > time.Second {
			return fmt.Errorf("the second xlb run took %v to refuse", took)
		}
		if _, err := os.Stat(filepath.Join(c.pin, "link_eth0")); err != nil {
			return fmt.Errorf("the pin directory lost its link: %v", err)
		}
		r.note = fmt.Sprintf("refused in %d ms, pin directory intact: `%s`", took.Milliseconds(), lastLogLine(string(out)))
		return nil
	}},
	{name: "second `xlb run --socket` at a regular file", bound: "0", maxFailed: 0, do: func(c *chaos, r *row) error {
		precious := filepath.Join(c.tmp, "precious")
		if err := os.WriteFile(precious, []byte("keep me"), 0o644); err != nil {
			return err
		}
		// Another pin directory: only the socket stands in the way.
		args := c.runArgs()
		for i := range args {
			switch args[i] {
			case c.sock:
				args[i] = precious
			case c.pin:
				args[i] = c.pin + "-other"
			}
		}
		out, err := exec.Command("nsenter", args...).CombinedOutput()
		if err == nil {
			return fmt.Errorf("xlb run --socket at a regular file exited 0")
		}
		if b, err := os.ReadFile(precious); err != nil || string(b) != "keep me" {
			return fmt.Errorf("the file at --socket was touched: %v", err)
		}
		if _, err := os.Stat(c.pin + "-other"); err == nil {
			_ = os.RemoveAll(c.pin + "-other")
			return fmt.Errorf("it opened a data plane before refusing")
		}
		r.note = fmt.Sprintf("refused, the file intact: `%s`", lastLogLine(string(out)))
		return nil
	}},
	{name: "reload over capacity: 100 virtual servers, `--max-services 64`", bound: "0", maxFailed: 0, badInput: true, do: badConfig(manyServices(100))},
	{name: "reload over capacity: 100,000 virtual servers", bound: "0", maxFailed: 0, badInput: true, do: badConfig(manyServices(100_000))},
	{name: "config truncated mid-block", bound: "0", maxFailed: 0, badInput: true, do: badConfig(func(p string) error {
		return os.WriteFile(p, []byte(goodConf[:len(goodConf)*2/3]), 0o644)
	})},
	{name: "config binary (1 MiB random)", bound: "0", maxFailed: 0, badInput: true, do: badConfig(func(p string) error {
		b := make([]byte, 1<<20)
		_, _ = rand.Read(b)
		return os.WriteFile(p, b, 0o644)
	})},
	{name: "config huge (1 GiB sparse)", bound: "0", maxFailed: 0, badInput: true, do: badConfig(func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(1 << 30)
	})},
	{name: "config a FIFO", bound: "0", maxFailed: 0, badInput: true, do: badConfig(func(p string) error {
		return unix.Mkfifo(p, 0o644)
	})},
	{name: "config unreadable (a directory in its place)", bound: "0", maxFailed: 0, badInput: true, do: badConfig(func(p string) error {
		return os.Mkdir(p, 0o755)
	})},
	{name: "control socket: 20,000 held connections, then 1,000 clients at once", bound: "0", maxFailed: 0, do: heldConnections},
	{name: "SYN flood, 200,000 spoofed sources, an idle connection open", bound: "0", maxFailed: 0, do: synFlood},
	{name: "a real's address moves to another host (gratuitous ARP)", bound: "≤ 1: the request in flight on the old host as its address left it (the client is sequential)",
		maxFailed: 1, do: macChange},
	{name: "a real's interface removed", bound: "requests to it until TCP_CHECK takes it out (≤ 3 s)", maxFailed: -1, do: interfaceRemoved},
	{name: "`kill -9` of the daemon under load, then `xlb run` again", bound: "0", maxFailed: 0, do: killNine},
}

// lastLogLine is the last line of a daemon's output that says something.
func lastLogLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := lines[len(lines)-1]
	if j := strings.Index(l, "msg="); j >= 0 {
		l = l[j:]
	}
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

// hold is a child of chaos holding n connections to sock (a process
// may have too few descriptors for them all): it says how many it holds,
// then waits for its standard input to close.
func hold(sock string, n int) {
	var held []net.Conn
	start := time.Now()
	for len(held) < n {
		h, err := net.DialTimeout("unix", sock, time.Second)
		if errors.Is(err, syscall.EAGAIN) && time.Since(start) < 60*time.Second {
			// The backlog is full for a moment: an attacker tries again.
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			fmt.Printf("error after %d: %v\n", len(held), err)
			os.Exit(1)
		}
		held = append(held, h)
	}
	fmt.Printf("held %d\n", len(held))
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func heldConnections(c *chaos, r *row) error {
	start := time.Now()
	// Four processes of 5,000: one process may have too few descriptors.
	var holders []*exec.Cmd
	var ins []io.Closer
	defer func() {
		for i, h := range holders {
			ins[i].Close()
			_ = h.Wait()
		}
	}()
	for range 4 {
		h := exec.Command(os.Args[0], "-hold", c.sock, "-n", "5000")
		in, err := h.StdinPipe()
		if err != nil {
			return err
		}
		out, err := h.StdoutPipe()
		if err != nil {
			return err
		}
		if err := h.Start(); err != nil {
			return err
		}
		holders, ins = append(holders, h), append(ins, in)
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "held ") {
			return fmt.Errorf("holding connections: %q %v", line, err)
		}
	}
	holding := time.Since(start)
	took, err := c.list()
	if err != nil {
		return fmt.Errorf("with 20,000 held connections: %v", err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	start = time.Now()
	for range 1000 {
		wg.Go(func() {
			if _, err := control.NewClient(c.sock).Status(); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of 1,000 concurrent status requests failed", n)
	}
	pid := c.d.cmd.Process.Pid
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	r.note = fmt.Sprintf("20,000 connections opened and held in %.1f s (the daemon closes the oldest silent ones at its cap); `xlbadm -Ln` then: %d ms; 1,000 concurrent `xlb status`: all answered in %d ms; the daemon holds %d descriptors",
		holding.Seconds(), took.Milliseconds(), time.Since(start).Milliseconds(), len(fds))
	return nil
}

// synFlood opens a keep-alive connection to the VIP, floods the VIP with
// SYNs from spoofed sources (198.18.0.0/15, which nothing routes) from the
// client's namespace, then uses the idle connection again.
func synFlood(c *chaos, r *row) error {
	tr := &http.Transport{DialContext: c.topo.Client.DialContext, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	before, err := testutil.Get(context.Background(), hc, "http://"+vip+"/")
	if err != nil {
		return fmt.Errorf("the idle connection's first request: %v", err)
	}
	var dirMAC net.HardwareAddr
	if err := c.topo.Director.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			dirMAC = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		return err
	}
	const n = 200_000
	var sent int
	start := time.Now()
	err = c.topo.Client.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], dirMAC)
		f := testutil.Frame{SrcMAC: ifi.HardwareAddr, DstMAC: dirMAC, Dst: netip.MustParseAddr(vip), Proto: 6,
			DstPort: 80, TCPFlags: testutil.TCPSyn}
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < n && time.Now().Before(deadline); i++ {
			f.Src = netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
			f.SrcPort = uint16(1024 + i%60000)
			if err := unix.Sendto(fd, f.Bytes(), 0, to); err != nil {
				if err == unix.ENOBUFS {
					i--
					continue
				}
				return err
			}
			sent++
		}
		return nil
	})
	flood := time.Since(start)
	if err != nil {
		return fmt.Errorf("flood: %v", err)
	}
	after, err := testutil.Get(context.Background(), hc, "http://"+vip+"/")
	if err != nil {
		return fmt.Errorf("the connection left idle during the flood: %v", err)
	}
	if after != before {
		return fmt.Errorf("the idle connection moved from %s to %s", before, after)
	}
	st, err := control.NewClient(c.sock).Status()
	if err != nil {
		return err
	}
	half := ""
	if d := st.Defence; d != nil {
		half = fmt.Sprintf("; flow table %d/%d, half-open %d/%d", d.Flows, d.MaxFlows, d.HalfOpen, d.MaxHalfOpen)
	}
	r.note = fmt.Sprintf("%d SYNs in %.1f s (%.0f kpps, %.0f times the half-open table); the connection left idle through it answered, from %s%s",
		sent, flood.Seconds(), float64(sent)/flood.Seconds()/1000, float64(sent)/4096, after, half)
	return nil
}

// macChange moves real 1's address to real 3's host, which announces it.
func macChange(c *chaos, r *row) error {
	moving := c.topo.RealAddrs[0].String()
	before, err := control.NewClient(c.sock).Status()
	if err != nil {
		return err
	}
	if err := c.topo.Reals[0].IP("addr", "del", moving+"/24", "dev", "eth0"); err != nil {
		return err
	}
	if err := c.topo.Reals[2].IP("addr", "add", moving+"/24", "dev", "eth0"); err != nil {
		return err
	}
	sent := time.Now()
	if err := c.topo.Reals[2].Do(func() error {
		g, err := vrrp.NewGARP("eth0")
		if err != nil {
			return err
		}
		defer g.Close()
		return g.SendGARP(c.topo.RealAddrs[0])
	}); err != nil {
		return err
	}
	for {
		st, err := control.NewClient(c.sock).Status()
		if err == nil && st.NextHopChanges > before.NextHopChanges {
			r.note = fmt.Sprintf("the new MAC used %d ms after the gratuitous ARP (next-hop changes %d → %d)",
				time.Since(sent).Milliseconds(), before.NextHopChanges, st.NextHopChanges)
			return nil
		}
		if time.Since(sent) > 5*time.Second {
			return fmt.Errorf("the director never followed the new MAC")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// interfaceRemoved deletes real 2's interface: its requests fail until
// the health check takes it out, none after.
func interfaceRemoved(c *chaos, r *row) error {
	gone := time.Now()
	if err := c.topo.Reals[1].IP("link", "del", "eth0"); err != nil {
		return err
	}
	for {
		st, err := control.NewClient(c.sock).Status()
		if err == nil && healthy(st) == 2 {
			r.lingerFrom = time.Now()
			r.note = fmt.Sprintf("TCP_CHECK took it out after %d ms; no request failed after that", time.Since(gone).Milliseconds())
			return nil
		}
		if time.Since(gone) > 10*time.Second {
			return fmt.Errorf("the health check never took the real out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killNine kills the daemon: the pinned XDP program keeps forwarding and
// the VIP stays; a new xlb run takes the data plane over.
func killNine(c *chaos, r *row) error {
	st, err := control.NewClient(c.sock).Status()
	if err != nil {
		return err
	}
	reals := healthy(st)
	killed := time.Now()
	if err := c.d.cmd.Process.Kill(); err != nil {
		return err
	}
	<-c.d.done
	time.Sleep(3 * time.Second)
	if err := c.vipHere(); err != nil {
		return fmt.Errorf("with the daemon dead: %v", err)
	}
	dead := len(testutil.Failures(c.load.Since(killed)))
	start := time.Now()
	d, err := c.startDaemon()
	if err != nil {
		return err
	}
	c.d = d
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := control.NewClient(c.sock).Status()
		if err == nil && master(st) && healthy(st) == reals {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the new daemon is not serving:\n%s", d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	served := time.Now()
	if os.Getenv("CHAOS_DEBUG") != "" {
		logf("new daemon's log:\n%s", d.logs())
	}
	time.Sleep(time.Second)
	restart := testutil.Failures(c.load.Between(start, time.Now()))
	r.note = fmt.Sprintf("%d requests failed in the 3 s with no daemon (the pinned program forwarded); the new daemon took the data plane over and was MASTER with its reals up in %d ms; %d failed across the restart",
		dead, served.Sub(start).Milliseconds(), len(restart))
	if len(restart) > 0 {
		r.note += fmt.Sprintf(" (first: %v)", restart[0])
	}
	if os.Getenv("CHAOS_DEBUG") != "" {
		for _, x := range c.load.Since(killed) {
			if x.Err != nil {
				logf("failed request sent %v after the restart began, took %v: %v", x.At.Sub(start), x.Took, x.Err)
			}
		}
	}
	return nil
}
