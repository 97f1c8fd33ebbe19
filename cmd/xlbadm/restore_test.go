package main

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/daemon"
)

// Run again with one of these set, the test binary is xlbadm itself (main
// on its arguments, standard input and XLB_SOCKET) or a director (what
// `xlb run` runs, with the daemon.Options the variable holds as JSON).
const (
	mainEnv   = "XLBADM_TEST_MAIN"
	daemonEnv = "XLBADM_TEST_DAEMON"
)

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		main()
	}
	if v := os.Getenv(daemonEnv); v != "" {
		os.Exit(runDaemon(v))
	}
	os.Exit(m.Run())
}

func runDaemon(v string) int {
	var o daemon.Options
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		fmt.Fprintln(os.Stderr, "daemon test child:", err)
		return 2
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "xlb run: %v\n", err)
		return 1
	}
	return 0
}

// xlbadm runs the xlbadm binary (this test binary as main) against socket
// with stdin as its standard input: its output and exit code.
func xlbadm(t *testing.T, socket, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "XLB_SOCKET="+socket)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// A table saved by `ipvsadm -S -n` elsewhere, restored by piping it into
// `xlbadm -R` (the binary, reading its standard input, as in `xlbadm -R <
// rules`) on a director started with no configuration: `xlbadm -Ln` lists
// it as ipvsadm would, `xlbadm -Sn` saves it back unchanged, and HTTP to
// the VIP is answered in its weights.
func TestRestoreFromStdin(t *testing.T) {
	topo := testutil.NewDRServing(t)
	socket := filepath.Join(t.TempDir(), "xlb.sock")
	pin := "/sys/fs/bpf/xlb-xlbadm-" + testutil.Suffix()
	t.Cleanup(func() { os.RemoveAll(pin) })
	o, err := json.Marshal(daemon.Options{Interfaces: []string{"eth0"}, Socket: socket, PinDir: pin, Dataplane: "xdp",
		XlbadmState: filepath.Join(filepath.Dir(socket), "xlbadm.rules")})
	require.NoError(t, err)
	cmd := topo.Director.Command(os.Args[0])
	cmd.Env = append(os.Environ(), daemonEnv+"="+string(o))
	director := testutil.StartChild(t, cmd)
	require.Eventually(t, func() bool {
		_, err := control.NewClient(socket).Status()
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "the director did not start")

	out, errOut, code := xlbadm(t, socket, "", "-Ln")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "10.77.1.100", "a director started with no configuration has no services")

	const saved = `-A -t 10.77.1.100:80 -s wrr
-a -t 10.77.1.100:80 -r 10.77.0.11:80 -g -w 3
-a -t 10.77.1.100:80 -r 10.77.0.12:80 -g -w 1
-A -u 10.77.1.100:53 -s rr
-a -u 10.77.1.100:53 -r 10.77.0.12:53 -g -w 2
`
	out, errOut, code = xlbadm(t, socket, saved, "-R")
	require.Equal(t, 0, code, "xlbadm -R: %s", errOut)
	assert.Empty(t, out)
	assert.Empty(t, errOut)

	out, errOut, code = xlbadm(t, socket, "", "-Ln")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.1.100:80 wrr
  -> 10.77.0.11:80                Route   3      0          0         
  -> 10.77.0.12:80                Route   1      0          0         
UDP  10.77.1.100:53 rr
  -> 10.77.0.12:53                Route   2      0          0         
`, out)
	out, _, code = xlbadm(t, socket, "", "-Sn")
	require.Equal(t, 0, code)
	assert.Equal(t, saved, out, "-Sn saves what -R read")

	// What was restored forwards.
	require.Eventually(t, func() bool {
		st, err := control.NewClient(socket).Status()
		if err != nil || len(st.Services) != 2 {
			return false
		}
		for _, s := range st.Services {
			for _, r := range s.Reals {
				if !r.Resolved {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "the restored reals' MACs were not resolved")
	c := topo.HTTPClient()
	got := map[string]int{}
	for i := range 8 {
		name, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
		require.NoError(t, err, "request %d", i)
		got[name]++
	}
	assert.Equal(t, map[string]int{"r1": 6, "r2": 2}, got)

	require.NoError(t, director.Stop(), "the director did not exit 0 on SIGTERM")
}
