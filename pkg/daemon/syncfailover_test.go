package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// syncFailoverConfig is the two directors' keepalived.conf: a NAT
// service, or with fnat a FULLNAT one whose local address floats with the
// VIP (a virtual_ipaddress of the same instance), so that the reals'
// replies reach whichever director is MASTER.
func syncFailoverConfig(prio int, fnat bool) string {
	kind, laddr, group := "NAT", "", ""
	if fnat {
		kind, laddr = "FNAT", "\n        10.77.0.253/24"
		group = "\n    laddr_group_name lg\n"
	}
	cfg := fmt.Sprintf(`
global_defs {
    lvs_sync_daemon eth0 VI_1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
        10.77.0.254/24%s
    }
}
virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind %s
    protocol TCP%s
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`, prio, laddr, kind, group)
	if fnat {
		cfg = "local_address_group lg {\n    10.77.0.253\n}\n" + cfg
	}
	return cfg
}

// slowDownload fetches n bytes of the pattern from the VIP, reading
// chunk bytes every tick, and checks them by SHA-256. The client's
// receive buffer is small (32 KB), so that the real is still sending
// until the end: a download is a live connection all along, not one
// whose bytes already wait in the client's buffer.
// download is a slowDownload's progress: the bytes read so far, and the
// client's address and port once connected.
type download struct {
	got    atomic.Int64
	client atomic.Value // string
	hurry  *atomic.Bool // when set, read the rest without pausing
}

func slowDownload(ctx context.Context, topo *testutil.DR, n, chunk int, tick time.Duration, progress *download) error {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := topo.Client.Do(func() (err error) {
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
				})
				return errors.Join(err, serr)
			}}
			c, err = d.DialContext(ctx, network, addr)
			if err == nil {
				progress.client.Store(c.LocalAddr().String())
			}
			return err
		})
		return c, err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://10.77.1.100/bytes/%d", n), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	buf := make([]byte, chunk)
	got := 0
	for {
		k, err := io.ReadFull(resp.Body, buf)
		h.Write(buf[:k])
		got += k
		progress.got.Store(int64(got))
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
		if progress.hurry == nil || !progress.hurry.Load() {
			time.Sleep(tick)
		}
	}
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), int64(n)))
	if got != n || string(h.Sum(nil)) != string(want.Sum(nil)) {
		return fmt.Errorf("got %d of %d bytes, SHA-256 %s", got, n, map[bool]string{true: "matches", false: "differs"}[string(h.Sum(nil)) == string(want.Sum(nil))])
	}
	return nil
}

// downloads are slowDownloads of size bytes running at once, 16 KB read
// every given interval (100 ms: about 160 KB/s each), given within to
// finish.
type downloads struct {
	each  []download
	errs  []error
	wg    sync.WaitGroup
	hurry atomic.Bool
}

func startDownloads(t *testing.T, topo *testutil.DR, n, size int, every, within time.Duration) *downloads {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	d := &downloads{each: make([]download, n), errs: make([]error, n)}
	for i := range n {
		d.each[i].hurry = &d.hurry
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.errs[i] = slowDownload(ctx, topo, size, 16<<10, every, &d.each[i])
		}()
	}
	return d
}

// progress is the bytes each has read so far.
func (d *downloads) progress() []int64 {
	out := make([]int64, len(d.each))
	for i := range d.each {
		out[i] = d.each[i].got.Load()
	}
	return out
}

// finish lets every download read the rest at full speed: a test whose
// checks may come late (a slow VM) makes its downloads long and then
// need not wait for them.
func (d *downloads) finish() []error {
	d.hurry.Store(true)
	return d.wait()
}

// wait waits for every download to end and says how each ended.
func (d *downloads) wait() []error {
	d.wg.Wait()
	return d.errs
}

// Two xlb directors with lvs_sync_daemon and a NAT service (the case
// where a director without the flow breaks the connection: the reply
// translation is gone). Long downloads run through the MASTER; it is
// killed and its host leaves the LAN: the backup, which has every flow
// from the sync, takes over and every download goes on. The killed
// director restarts, learns the flows back by the bulk dump before it
// preempts (the sync gate), and takes the VIP again: every download
// still completes, checked byte for byte. A loop of new connections runs
// throughout.
func TestFailoverKeepsConnections(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	failoverKeepsConnections(t, "xdp", false)
}

// The same with a FULLNAT service (issue 13): each flow's local address
// and port go in xlb's option of the sync record, the backup takes the
// same ports toward the reals, and the reals — which have no route to
// the clients at all — answer the local address, which moves with the
// VIP: every download goes on across failover and failback.
func TestFailoverKeepsFULLNATConnections(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	failoverKeepsConnections(t, "xdp", true)
}

// The same with the kernel's IPVS as the first director (xlb on the IPVS
// data plane, which starts the kernel's sync daemons) and xlb's XDP as
// the second: the kernel's master sends the connections to xlb's backup,
// xlb's master sends them back to the kernel's backup, which kept running
// while its xlb was dead. (The 6.1 VM: it needs the kernel's IPVS.)
func TestFailoverKeepsConnectionsWithIPVS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if out, err := exec.Command("modprobe", "ip_vs").CombinedOutput(); err != nil {
		if why := testutil.IPVSMissing(); why != "" && os.Getenv("VMTEST") == "" {
			t.Skipf("%s; make vmtest KERNEL=6.1 runs this", why)
		}
		t.Fatalf("modprobe ip_vs: %v: %s", err, out)
	}
	failoverKeepsConnections(t, "ipvs", false)
}

func failoverKeepsConnections(t *testing.T, dataplaneA string, fnat bool) {
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, Backup: true, NAT: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	if fnat {
		for _, ns := range topo.Reals {
			require.NoError(t, ns.IP("route", "del", "default"))
		}
	}
	require.NoError(t, topo.ServeHTTP(80))
	dir := t.TempDir()
	cfgA, cfgB := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	require.NoError(t, os.WriteFile(cfgA, []byte(syncFailoverConfig(150, fnat)), 0o644))
	require.NoError(t, os.WriteFile(cfgB, []byte(syncFailoverConfig(100, fnat)), 0o644))
	pinA := "/sys/fs/bpf/xlb-syncfail-" + testutil.Suffix()
	t.Cleanup(func() { os.RemoveAll(pinA) }) // a killed director's pins

	optsA := Options{ConfigFile: cfgA, PinDir: pinA, Dataplane: dataplaneA, IPVSState: filepath.Join(dir, "ipvs-state.json")}
	a := startDaemon(t, topo.Director, optsA)
	b := startDaemon(t, topo.Backup, Options{ConfigFile: cfgB, Dataplane: "xdp"})
	require.Eventually(t, func() bool {
		return a.vrrpState(t) == "MASTER" && b.vrrpState(t) == "BACKUP"
	}, 10*time.Second, 20*time.Millisecond)
	a.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	b.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	st := b.status(t).Sync
	require.NotNil(t, st, "xlb status shows the sync daemons")
	assert.Len(t, st.Daemons, 2, "master and backup on each director")
	assert.True(t, st.Configured)

	p := startProbe(topo)
	defer p.end()

	// Long downloads: 6 MB each, read at about 160 KB/s: 39 s or more.
	const downloads, size = 24, 6 << 20
	dl := startDownloads(t, topo, downloads, size, 100*time.Millisecond, 150*time.Second)
	snapshot := dl.progress
	// Every download is on the backup before the master dies: its table
	// (ipvsadm -Lnc through xlbadm) lists each one's client ESTABLISHED.
	// A connection the master had not yet synced would be lost, with
	// IPVS's sync as with xlb's.
	require.Eventually(t, func() bool {
		r, err := control.NewClient(b.socket).Ipvsadm([]string{"-Lnc"}, "")
		require.NoError(t, err)
		for i := range dl.each {
			c, _ := dl.each[i].client.Load().(string)
			if c == "" || !regexp.MustCompile(`ESTABLISHED +`+regexp.QuoteMeta(c)+` `).MatchString(r.Stdout) {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "the backup did not receive the downloads' flows")
	time.Sleep(time.Second)

	kill := time.Now()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "down"))
	<-a.done
	require.Eventually(t, func() bool { return b.vrrpState(t) == "MASTER" }, 10*time.Second, 10*time.Millisecond)
	t.Logf("failover: backup MASTER %.2fs after the kill", time.Since(kill).Seconds())
	// The downloads run through the new master: each moves on while it
	// is the only director.
	// Each download moves on through the director that now holds the
	// VIP (within 10 s: a sender whose packets were lost in the switch
	// retransmits after its backed-off timeout, seconds under the VM's
	// emulation).
	movesOn := func(through string) {
		time.Sleep(time.Second)
		before := snapshot()
		moved := func() bool {
			now := snapshot()
			for i := range downloads {
				if now[i] <= before[i] {
					return false
				}
			}
			return true
		}
		require.Eventually(t, moved, 10*time.Second, 50*time.Millisecond, "not every download moved on through the %s: %v then %v", through, before, snapshot())
		for i, n := range snapshot() {
			assert.Less(t, n, int64(size), "download %d was over before the %s: it proves nothing", i, through)
		}
	}
	movesOn("new master")

	// The killed director comes back as after a reboot (nothing pinned:
	// its flows are gone) and takes the VIP again once it has the flows.
	require.NoError(t, os.RemoveAll(pinA))
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "up"))
	a2 := startDaemon(t, topo.Director, optsA)
	restarted := time.Now()
	require.Eventually(t, func() bool { return a2.vrrpState(t) == "MASTER" && b.vrrpState(t) == "BACKUP" },
		20*time.Second, 20*time.Millisecond)
	t.Logf("failback: restarted director MASTER %.2fs after its start", time.Since(restarted).Seconds())
	sa := a2.status(t).Sync
	require.NotNil(t, sa)
	assert.Len(t, sa.Daemons, 2)
	if dataplaneA == "xdp" {
		require.NotNil(t, sa.Stats)
		assert.False(t, sa.Stats.DumpReceived.IsZero(), "the restarted director had its bulk dump")
		assert.Contains(t, sa.Gate, "bulk dump received")
		assert.Contains(t, a2.logs(), "sync gate: preemption allowed: the flow table is current")
	} else {
		assert.Contains(t, a2.logs(), "the daemon already running is the one wanted: kept")
	}
	movesOn("restarted master")

	broken := 0
	for i, err := range dl.wait() {
		if err != nil {
			broken++
			t.Errorf("download %d: %v", i, err)
		}
	}
	t.Logf("%d of %d downloads completed across failover and failback; new connections: %d failed between the kill and the end",
		downloads-broken, downloads, p.failuresBetween(kill, time.Now()))
	require.Eventually(t, func() bool { return p.successesAfter(time.Now().Add(-time.Second)) > 0 }, 10*time.Second, 50*time.Millisecond,
		"new connections do not go through after the failback")
	sb := b.status(t).Sync
	t.Logf("backup's sync: %+v", *sb.Stats)
	assert.Zero(t, sb.Stats.InstallErrors)
	assert.False(t, strings.Contains(a2.logs(), "level=ERROR"), "errors in the restarted director's log")
}
