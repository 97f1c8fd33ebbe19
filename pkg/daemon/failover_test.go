package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

func failoverConfig(prio int) string {
	return fmt.Sprintf(`
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
}
virtual_server 10.77.1.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`, prio)
}

// httpProbe is a client loop of HTTP requests to the VIP, each on a new
// connection with a short timeout, so that a gap in service is measured
// to within a few hundred milliseconds.
type httpProbe struct {
	mu   sync.Mutex
	ok   []time.Time // completion times of successful requests
	errs []time.Time
	stop chan struct{}
	done chan struct{}
}

func startProbe(topo *testutil.DR) *httpProbe {
	p := &httpProbe{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{
		DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
	go func() {
		defer close(p.done)
		// Bounded in count and time; paced so that a minute-long test
		// does not run out of requests.
		end := time.Now().Add(10 * time.Minute)
		for i := 0; i < 100000 && time.Now().Before(end); i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			_, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
			p.mu.Lock()
			if err == nil {
				p.ok = append(p.ok, time.Now())
			} else {
				p.errs = append(p.errs, time.Now())
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *httpProbe) end() { close(p.stop); <-p.done }

// gap is the longest time without a successful request in [from, to].
func (p *httpProbe) gap(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	last := from
	for _, t := range p.ok {
		if t.Before(from) {
			last = t
			continue
		}
		if t.After(to) {
			break
		}
		longest = max(longest, t.Sub(last))
		last = t
	}
	return max(longest, to.Sub(last))
}

func (p *httpProbe) successesAfter(t0 time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.ok {
		if t.After(t0) {
			n++
		}
	}
	return n
}

func (p *httpProbe) failuresBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.errs {
		if t.After(from) && t.Before(to) {
			n++
		}
	}
	return n
}

func holdsVIP(t *testing.T, ns *testutil.NS) bool {
	out, err := exec.Command("ip", "-n", ns.Name, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Contains(string(out), "10.77.1.100/32")
}

func (d *proc) vrrpState(t *testing.T) string {
	st := d.status(t)
	if len(st.VRRP) != 1 {
		return ""
	}
	return st.VRRP[0].State
}

// Two xlb directors share a VIP by VRRP with the data plane following the
// role. The master dies (xlb killed and its host off the LAN): requests
// resume through the backup after its master-down interval, and the gap
// is measured. The dead director comes back: the VIP its kernel kept is
// removed at start, it preempts, and the VIP is never held by both once
// it has restarted.
func TestTwoDirectorFailover(t *testing.T) {
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
	pinA := "/sys/fs/bpf/xlb-failover-" + testutil.Suffix()

	a := startDaemon(t, topo.Director, Options{ConfigFile: cfgA, PinDir: pinA})
	b := startDaemon(t, topo.Backup, Options{ConfigFile: cfgB})
	require.Eventually(t, func() bool {
		return a.vrrpState(t) == "MASTER" && b.vrrpState(t) == "BACKUP"
	}, 10*time.Second, 20*time.Millisecond)
	a.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	b.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	assert.True(t, holdsVIP(t, topo.Director))
	assert.False(t, holdsVIP(t, topo.Backup))
	assert.True(t, b.status(t).Services[0].Standby, "the BACKUP's service is on standby")
	assert.False(t, a.status(t).Services[0].Standby)

	p := startProbe(topo)
	defer p.end()
	time.Sleep(time.Second)
	require.NotZero(t, p.successesAfter(time.Now().Add(-time.Second)), "no request went through the MASTER")

	// The master dies: xlb killed, and its host leaves the LAN.
	kill := time.Now()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "down"))
	<-a.done
	require.Eventually(t, func() bool { return b.vrrpState(t) == "MASTER" }, 10*time.Second, 10*time.Millisecond)
	master := time.Now()
	require.Eventually(t, func() bool { return p.successesAfter(master) > 20 }, 10*time.Second, 10*time.Millisecond,
		"requests did not resume through the new master")
	resumed := time.Now()
	gap := p.gap(kill, resumed)
	// Master down interval with priority 100, advert_int 1: 3 x 1 s +
	// (256-100)/256 s = 3.61 s.
	mdi := 3*time.Second + 156*time.Second/256
	t.Logf("crash failover: backup MASTER %.2fs after the kill (master down interval %.2fs); longest gap without a successful request %.2fs",
		master.Sub(kill).Seconds(), mdi.Seconds(), gap.Seconds())
	assert.Less(t, master.Sub(kill), mdi+500*time.Millisecond)
	assert.Less(t, gap, mdi+time.Second, "the gap is the master down interval plus the client's timeout")
	assert.True(t, holdsVIP(t, topo.Backup))
	assert.False(t, b.status(t).Services[0].Standby)

	// The dead director's kernel still has the VIP; its link comes back
	// and xlb restarts (taking over its pinned data plane).
	require.True(t, holdsVIP(t, topo.Director), "the killed xlb's VIP stays in its kernel")
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "up"))
	a2 := startDaemon(t, topo.Director, Options{ConfigFile: cfgA, PinDir: pinA})
	restarted := time.Now()
	assert.False(t, holdsVIP(t, topo.Director), "the restarted xlb removes the VIP left from before")

	// From here on, never both; A preempts B (priority 150 > 100).
	var both, samples int
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ha, hb := holdsVIP(t, topo.Director), holdsVIP(t, topo.Backup)
		samples++
		if ha && hb {
			both++
		}
		if ha && !hb && a2.vrrpState(t) == "MASTER" && b.vrrpState(t) == "BACKUP" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	back := time.Now()
	require.Equal(t, "MASTER", a2.vrrpState(t))
	require.Equal(t, "BACKUP", b.vrrpState(t))
	assert.Zero(t, both, "both directors held the VIP in %d of %d samples after the restart", both, samples)
	require.Eventually(t, func() bool { return p.successesAfter(back) > 20 }, 10*time.Second, 10*time.Millisecond)
	fails := p.failuresBetween(restarted, time.Now())
	backGap := p.gap(restarted, time.Now())
	t.Logf("failback: restarted xlb MASTER again after %.2fs; gap %.2fs; %d failed requests (connections in flight move to a director with no state for them)",
		back.Sub(restarted).Seconds(), backGap.Seconds(), fails)
	// A planned failback must cost less than a crash: the requests caught
	// in the move fail fast (reset), they do not wait out a master down
	// interval. How many are caught depends on the machine's speed (1 on
	// the host, 3 under TCG), so the interruption is what is bounded.
	assert.Less(t, backGap, mdi, "the failback interrupted service longer than a crash failover does")
	assert.True(t, b.status(t).Services[0].Standby, "the BACKUP's service is on standby again")
}
