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

// pingsWithin drains the notifications for d and counts the watchdog
// pings among them; any other notification is returned in others.
func (n *notifications) pingsWithin(d time.Duration) (pings int, others []string) {
	deadline := time.After(d)
	for {
		select {
		case m := <-n.ch:
			if m == "WATCHDOG=1\n" {
				pings++
			} else {
				others = append(others, m)
			}
		case <-deadline:
			return pings, others
		}
	}
}

// The watchdog pings only while the daemon is really alive: a VRRP
// instance's loop that is stuck, or the director held while it applies a
// configuration, stops the pings (systemd would restart xlb), and they
// come back once the loop moves again. The stalls are injected from
// outside the process (internal/failpoint).
func TestWatchdogStopsWhenStuck(t *testing.T) {
	topo := testutil.NewDRServing(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(failoverConfig(150)), 0o644))
	fp := filepath.Join(dir, "failpoints")
	require.NoError(t, os.Mkdir(fp, 0o755))
	n, sock := listenNotify(t)
	cmd, o := childCmd(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}},
		[]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000", "XLB_FAILPOINTS=" + fp})
	var logs testutil.LockedBuffer
	cmd.Stderr = &logs
	t.Cleanup(func() { t.Logf("daemon log:\n%s", logs.String()) })
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pings := 0
	require.True(t, strings.HasPrefix(n.next(t, 30*time.Second, &pings), "READY=1"))
	require.Eventually(t, func() bool {
		st, err := control.NewClient(o.Socket).Status()
		return err == nil && len(st.VRRP) == 1 && st.VRRP[0].State == "MASTER"
	}, 10*time.Second, 50*time.Millisecond)

	arm := func(name string) { require.NoError(t, os.WriteFile(filepath.Join(fp, name), nil, 0o644)) }
	disarm := func(name string) { require.NoError(t, os.Remove(filepath.Join(fp, name))) }

	p, _ := n.pingsWithin(time.Second)
	assert.GreaterOrEqual(t, p, 3, "pings every 200 ms while alive")

	// The VRRP instance's loop stops at its next event (its next advert,
	// within advert_int): no ping from then on.
	arm("vrrp-loop")
	_, _ = n.pingsWithin(1500 * time.Millisecond)
	p, _ = n.pingsWithin(1500 * time.Millisecond)
	assert.Zero(t, p, "pings while the VRRP instance's loop is stuck")
	assert.Contains(t, logs.String(), "watchdog: the daemon does not answer; not pinging systemd")
	assert.Contains(t, logs.String(), "the instance's loop does not answer")
	disarm("vrrp-loop")
	time.Sleep(500 * time.Millisecond)
	p, _ = n.pingsWithin(time.Second)
	assert.GreaterOrEqual(t, p, 3, "pings again once the loop moves")

	// A reload whose apply is stuck holds the director: no ping.
	arm("director-apply")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	_, others := n.pingsWithin(1500 * time.Millisecond)
	require.NotEmpty(t, others)
	assert.Contains(t, others[0], "RELOADING=1")
	p, _ = n.pingsWithin(1500 * time.Millisecond)
	assert.Zero(t, p, "pings while the director is stuck applying")
	assert.Contains(t, logs.String(), "watchdog: the daemon's state did not answer in time")
	disarm("director-apply")
	p, others = n.pingsWithin(1500 * time.Millisecond)
	assert.GreaterOrEqual(t, p, 3, "pings again once the apply ends")
	require.NotEmpty(t, others)
	assert.True(t, strings.HasPrefix(others[0], "READY=1"), "%q", others)
}
