package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// vrrpAdverts are the times the backup's interface saw VRRP adverts
// from the master (IPv4, protocol 112, from 10.77.0.2).
func vrrpAdverts(c *testutil.Capture) []time.Time {
	var out []time.Time
	for _, f := range c.Frames(0) {
		b := f.Frame
		if len(b) < 34 || b[12] != 0x08 || b[13] != 0x00 || b[14+9] != 112 {
			continue
		}
		if string(b[14+12:14+16]) != string([]byte{10, 77, 0, 2}) {
			continue
		}
		out = append(out, f.At)
	}
	return out
}

func longestGap(ts []time.Time, from, to time.Time) time.Duration {
	var longest time.Duration
	last := from
	for _, t := range ts {
		if t.Before(from) || t.After(to) {
			continue
		}
		longest = max(longest, t.Sub(last))
		last = t
	}
	return longest
}

// A hitless restart (SIGUSR2, then the next xlb, as the unit's restart
// does): the MASTER of a VRRP pair is replaced under a loop of new
// connections and 20 long downloads. The data plane forwards on, the VIP
// never leaves, the new process resumes MASTER at once, the backup never
// becomes MASTER, and no request fails. Then a SIGHUP that changes only
// the priority keeps the MASTER too.
func TestHitlessRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, Backup: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	dir := t.TempDir()
	cfgA, cfgB := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	require.NoError(t, os.WriteFile(cfgA, []byte(failoverConfig(150)), 0o644))
	require.NoError(t, os.WriteFile(cfgB, []byte(failoverConfig(100)), 0o644))
	optsA := Options{ConfigFile: cfgA, PinDir: "/sys/fs/bpf/xlb-hitless-" + testutil.Suffix(), Socket: filepath.Join(dir, "a.sock")}
	t.Cleanup(func() { os.RemoveAll(optsA.PinDir) }) // left by a failed run's handoff

	a := startDaemon(t, topo.Director, optsA)
	b := startDaemon(t, topo.Backup, Options{ConfigFile: cfgB})
	require.Eventually(t, func() bool {
		return a.vrrpState(t) == "MASTER" && b.vrrpState(t) == "BACKUP"
	}, 10*time.Second, 20*time.Millisecond)
	a.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	capture, err := testutil.StartCapture(topo.Backup.Do, "eth0")
	require.NoError(t, err)
	defer capture.Close()

	p := startProbe(topo)
	defer p.end()
	const downloads, size = 20, 3 << 20
	dl := startDownloads(t, topo, downloads, size, 100*time.Millisecond, 90*time.Second)
	time.Sleep(2 * time.Second)

	// Never a moment without the VIP on A, never B MASTER.
	var watched atomic.Bool
	var lost, bMaster atomic.Int32
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for !watched.Load() {
			if !holdsVIP(t, topo.Director) {
				lost.Add(1)
			}
			if b.vrrpState(t) == "MASTER" {
				bMaster.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	restart := time.Now()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGUSR2))
	select {
	case err := <-a.done:
		require.NoError(t, err, "the handing-off xlb exits 0")
	case <-time.After(10 * time.Second):
		t.Fatal("the xlb asked to hand off did not stop")
	}
	a2 := startDaemon(t, topo.Director, optsA)
	resumed := time.Now()
	assert.Equal(t, "MASTER", a2.vrrpState(t), "the new xlb resumed MASTER")
	assert.Contains(t, a2.logs(), "vrrp_instance resumes as MASTER")
	time.Sleep(3 * time.Second)
	end := time.Now()
	gap := longestGap(vrrpAdverts(capture), restart.Add(-time.Second), end)
	t.Logf("restart: the new xlb answered %.2fs after SIGUSR2; longest gap between the director's adverts %.2fs (advert_int 1 s); failed requests %d; longest gap without a successful request %.2fs",
		resumed.Sub(restart).Seconds(), gap.Seconds(), p.failuresBetween(restart, end), p.gap(restart, end).Seconds())
	// What the peer allows is its master-down interval, three adverts
	// and its skew ((256 - 100)/256 of an advert for priority 100, RFC
	// 5798): 3.6 s. The new xlb advertises once it has read its
	// configuration, before it loads its programs (1.4-2.9 s here: the
	// gap it made before vrrpd.Bridge): the gap is the old process's
	// exit and the new one's start, within an advert interval of the
	// usual one.
	assert.Less(t, gap, 2*time.Second, "a gap in the adverts: the new xlb did not advertise while it loaded")
	assert.Zero(t, p.failuresBetween(restart, end), "requests failed during the restart")

	// A reload that changes only the priority keeps MASTER and the VIP.
	require.NoError(t, os.WriteFile(cfgA, []byte(failoverConfig(151)), 0o644))
	reload := time.Now()
	require.NoError(t, a2.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		st := a2.status(t)
		return len(st.VRRP) == 1 && st.VRRP[0].Priority == 151
	}, 10*time.Second, 20*time.Millisecond, "the reload did not take the new priority")
	time.Sleep(2 * time.Second)
	assert.Equal(t, "MASTER", a2.vrrpState(t))
	assert.Zero(t, p.failuresBetween(reload, time.Now()), "requests failed during the reload")

	watched.Store(true)
	<-watchDone
	assert.Zero(t, lost.Load(), "the VIP left the director")
	assert.Zero(t, bMaster.Load(), "the backup became MASTER")
	assert.False(t, strings.Contains(b.logs(), `state=MASTER`), "the backup's log shows a MASTER transition")
	for i, err := range dl.wait() {
		assert.NoError(t, err, "download %d", i)
	}
}

// Services made with xlbadm survive a restart, as IPVS's survive
// keepalived's: kept in ipvsadm -S form (--xlbadm-state), read back at
// start, forwarding again; a service the configuration now defines is
// the configuration's.
func TestXlbadmServicesSurviveRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	dir := t.TempDir()
	o := Options{Interfaces: []string{"eth0"}, Socket: filepath.Join(dir, "x.sock"), XlbadmState: filepath.Join(dir, "xlbadm.rules"),
		PinDir: "/sys/fs/bpf/xlb-admkeep-" + testutil.Suffix()}
	t.Cleanup(func() { os.RemoveAll(o.PinDir) }) // left by the killed one if the test fails
	d := startDaemon(t, topo.Director, o)
	adm := func(d *proc, args ...string) string {
		r, err := control.NewClient(d.socket).Ipvsadm(args, "")
		require.NoError(t, err)
		require.Equal(t, 0, r.Code, "ipvsadm %v: %s", args, r.Stderr)
		return r.Stdout
	}
	adm(d, "-A", "-t", "10.77.1.100:80", "-s", "wrr", "-p", "60")
	adm(d, "-a", "-t", "10.77.1.100:80", "-r", "10.77.0.11:80", "-g", "-w", "3")
	adm(d, "-a", "-t", "10.77.1.100:80", "-r", "10.77.0.12:80", "-g", "-w", "2")
	adm(d, "-A", "-u", "10.77.1.100:53", "-s", "rr")
	before := adm(d, "-Sn")
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	<-d.done

	d2 := startDaemon(t, topo.Director, o)
	assert.Equal(t, before, adm(d2, "-Sn"), "the services made with xlbadm, as they were")
	assert.Contains(t, d2.logs(), "restored the services made with xlbadm")
	require.Eventually(t, func() bool {
		st := d2.status(t)
		return len(st.Services) == 2 && len(st.Services[0].Reals) == 2 && st.Services[0].Reals[0].Resolved && st.Services[0].Reals[1].Resolved
	}, 10*time.Second, 50*time.Millisecond, "%+v", d2.status(t).Services)
	_, err = testutil.Get(context.Background(), topo.HTTPClient(), "http://10.77.1.100/")
	require.NoError(t, err, "the restored service forwards")

	// killed, then restarted with a file that now defines port 80: the
	// file's wins, the UDP service stays.
	require.NoError(t, d2.cmd.Process.Signal(syscall.SIGKILL))
	<-d2.done
	cfg := filepath.Join(dir, "k.conf")
	require.NoError(t, os.WriteFile(cfg, []byte(`virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 { weight 1 }
}
`), 0o644))
	o.ConfigFile = cfg
	d3 := startDaemon(t, topo.Director, o)
	assert.Contains(t, d3.logs(), "a service made with xlbadm is now in the configuration")
	out := adm(d3, "-Sn")
	assert.Contains(t, out, "-A -u 10.77.1.100:53 -s rr")
	assert.NotContains(t, out, "-A -t 10.77.1.100:80 -s wrr")
}
