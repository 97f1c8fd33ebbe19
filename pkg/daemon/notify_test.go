package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// notifications listens as systemd does for a Type=notify unit: a datagram
// socket whose path goes to the daemon in NOTIFY_SOCKET.
type notifications struct {
	c  *net.UnixConn
	ch chan string
}

func listenNotify(t *testing.T) (*notifications, string) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	n := &notifications{c: c, ch: make(chan string, 1024)}
	go func() {
		b := make([]byte, 4096)
		for {
			k, err := c.Read(b)
			if err != nil {
				close(n.ch)
				return
			}
			n.ch <- string(b[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n, path
}

// next is the next notification other than a watchdog ping (counted).
func (n *notifications) next(t *testing.T, within time.Duration, pings *int) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-n.ch:
			if m == "WATCHDOG=1\n" {
				*pings++
				continue
			}
			return m
		case <-deadline:
			t.Fatalf("no notification within %v", within)
			return ""
		}
	}
}

// xlb run under systemd (Type=notify): READY=1 only once the data plane is
// attached, the configuration applied and the control socket answering,
// with a STATUS= line saying what it serves; RELOADING=1 then READY=1
// around a SIGHUP (and the reason when a reload is refused); watchdog
// pings at half WATCHDOG_USEC while the daemon answers; STOPPING=1 at the
// end.
func TestSystemdNotify(t *testing.T) {
	topo := testutil.NewDRServing(t)
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(keepConfig), 0o644))
	n, sock := listenNotify(t)

	cmd, o := childCmd(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}},
		[]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"})
	d := &proc{cmd: cmd, socket: o.Socket, done: make(chan error, 1)}
	var logs testutil.LockedBuffer
	cmd.Stderr = &logs
	t.Cleanup(func() { t.Logf("daemon log:\n%s", logs.String()) })
	require.NoError(t, cmd.Start())
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	pings := 0
	ready := n.next(t, 30*time.Second, &pings)
	// By READY=1 the control socket answers and the service is applied.
	st, err := control.NewClient(o.Socket).Status()
	require.NoError(t, err, "the control socket answers once READY=1 is sent")
	require.Len(t, st.Services, 1)
	assert.True(t, strings.HasPrefix(ready, "READY=1\nSTATUS=1 virtual services on xdp (eth0 "), "%q", ready)
	assert.NotEmpty(t, xdpProgram(t, topo.Director), "attached before READY=1")

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	reloading := n.next(t, 10*time.Second, &pings)
	assert.Contains(t, reloading, "RELOADING=1\nMONOTONIC_USEC=")
	assert.Contains(t, reloading, "STATUS=reloading the configuration")
	assert.True(t, strings.HasPrefix(n.next(t, 10*time.Second, &pings), "READY=1\nSTATUS=1 virtual services on xdp"))

	require.NoError(t, os.WriteFile(cfgPath, []byte("virtual_server {\n"), 0o644))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	assert.Contains(t, n.next(t, 10*time.Second, &pings), "RELOADING=1")
	refused := n.next(t, 10*time.Second, &pings)
	assert.True(t, strings.HasPrefix(refused, "READY=1\nSTATUS=reload refused, running the previous configuration: "), "%q", refused)
	assert.Contains(t, refused, "1 virtual services on xdp")

	time.Sleep(time.Second)
	for len(n.ch) > 0 {
		if <-n.ch == "WATCHDOG=1\n" {
			pings++
		}
	}
	assert.GreaterOrEqual(t, pings, 5, "watchdog pings every 200 ms while the daemon answers")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, "STOPPING=1\nSTATUS=stopping\n", n.next(t, 10*time.Second, &pings))
	select {
	case err := <-d.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
}
