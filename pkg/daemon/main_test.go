package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// childEnv makes the test binary a director: it runs Run with the Options
// JSON the variable holds, as `xlb run` would, until SIGTERM. The
// end-to-end tests start it inside the director's namespace, as its own
// process (a daemon's goroutines cannot share the test's namespace).
const childEnv = "XLB_TEST_DAEMON"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(child(v))
	}
	os.Exit(m.Run())
}

func child(v string) int {
	var o Options
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		fmt.Fprintln(os.Stderr, "daemon test child:", err)
		return 2
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "xlb run: %v\n", err)
		return 1
	}
	return 0
}

// proc is a director process in a test namespace.
type proc struct {
	cmd    *exec.Cmd
	socket string
	config string // its keepalived.conf, where the test wrote one
	mu     sync.Mutex
	log    strings.Builder
	done   chan error
}

// childCmd is the test binary as a director with o in ns; a socket, pin
// directory and IPVS state file of its own unless o names them.
func childCmd(t *testing.T, ns *testutil.NS, o Options, env []string) (*exec.Cmd, Options) {
	dir := t.TempDir()
	if o.Socket == "" {
		o.Socket = filepath.Join(dir, "xlb.sock")
	}
	if o.PinDir == "" {
		// The daemon removes its pins when it stops; one killed (or
		// never stopped by a failed test) leaves them: removed here.
		o.PinDir = "/sys/fs/bpf/xlb-run-" + testutil.Suffix()
		pin := o.PinDir
		t.Cleanup(func() { os.RemoveAll(pin) })
	}
	if o.IPVSState == "" {
		o.IPVSState = filepath.Join(dir, "ipvs.json")
	}
	if o.XlbadmState == "" {
		o.XlbadmState = filepath.Join(dir, "xlbadm.rules")
	}
	b, err := json.Marshal(o)
	require.NoError(t, err)
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns.Name, os.Args[0])
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(b)), env...)
	return cmd, o
}

// startDaemon runs a director with o in ns until the test ends (SIGTERM),
// and waits for its control socket; env adds environment variables.
func startDaemon(t *testing.T, ns *testutil.NS, o Options, env ...string) *proc {
	cmd, o := childCmd(t, ns, o, env)
	return startChild(t, cmd, o)
}

// startChild starts cmd (from childCmd) as startDaemon does.
func startChild(t *testing.T, cmd *exec.Cmd, o Options) *proc {
	d, err := tryChild(t, cmd, o)
	require.NoError(t, err)
	return d
}

// tryChild starts cmd and says whether its control socket answered
// within 15 s (150 s in the test VM); the process is stopped when the test ends either way.
func tryChild(t *testing.T, cmd *exec.Cmd, o Options) (*proc, error) {
	d := &proc{cmd: cmd, socket: o.Socket, done: make(chan error, 1)}
	stderr, err := d.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, d.cmd.Start())
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	// Wait closes the pipe: what the director wrote last (how it
	// stopped) is read first.
	go func() { <-logged; d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				_ = d.cmd.Process.Kill()
			}
		}
		t.Logf("daemon log:\n%s", d.logs())
	})
	// Under TCG (the test VM) verifying the programs alone took 25 s on
	// an idle host, more than 45 s in CI beside the second VM.
	wait := 15 * time.Second
	if os.Getenv("VMTEST") != "" {
		wait = 150 * time.Second
	}
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := control.NewClient(d.socket).Status(); err == nil {
			return d, nil
		}
		select {
		case err := <-d.done:
			d.done <- err
			return d, fmt.Errorf("daemon exited (%v): %s", err, d.logs())
		default:
		}
	}
	return d, fmt.Errorf("daemon did not start: %s", d.logs())
}

// runDaemonOnce runs a director that is expected to stop by itself (a
// refusal), returning what it logged and how it ended.
func runDaemonOnce(t *testing.T, ns *testutil.NS, o Options, env ...string) (string, error) {
	cmd, _ := childCmd(t, ns, o, env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), err
}
