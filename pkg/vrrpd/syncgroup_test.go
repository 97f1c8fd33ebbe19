package vrrpd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xlbproject/xlb/internal/nlretry"
	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// A vrrp_sync_group against a real keepalived (2.2.7 on the test machine).
//
// Two namespaces: "node K" runs keepalived with VI_A only (priority 200),
// "node X" runs this package's VRRP with VI_A and VI_B (priority 100).
// Two veth pairs join them, one per instance, so VI_A has a better peer and
// VI_B has none. VRRP reads interfaces and netlink in its own namespace from
// many goroutines (the trackers), so the node X half runs as a child test
// process started with `ip netns exec`, like a daemon on its own host.

const (
	syncChildEnv = "XLB_SYNCGROUP_TEST_KEEPALIVED_NS" // set in the child: node K's namespace
	syncVRIDA    = 51
	syncVRIDB    = 52
)

var (
	syncVIPA = netip.MustParsePrefix("10.98.1.100/24")
	syncVIPB = netip.MustParsePrefix("10.98.2.100/24")
)

func TestSyncGroupAgainstKeepalived(t *testing.T) {
	againstKeepalived(t, syncChildEnv, "xlbsg", 2, syncGroupNodeX)
}

// againstKeepalived runs the calling test's node X half (nodeX, given
// node K's namespace) in a child process in node X's namespace (env
// names node K's there), with links links between the two (twoNodes).
// nodeX is given netlink handles in node K's namespace and its own.
func againstKeepalived(t *testing.T, env, prefix string, links int, nodeX func(t *testing.T, kaNS string, kaH, xH *netlink.Handle)) {
	if kaNS := os.Getenv(env); kaNS != "" {
		kh, err := netns.GetFromName(kaNS)
		require.NoError(t, err)
		defer kh.Close()
		kaH, err := netlink.NewHandleAt(kh)
		require.NoError(t, err)
		defer kaH.Close()
		xH, err := netlink.NewHandle()
		require.NoError(t, err)
		defer xH.Close()
		nodeX(t, kaNS, kaH, xH)
		return
	}
	if testing.Short() {
		t.Skip("namespace test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	nsK, nsX := twoNodes(t, prefix, links)
	runNodeX(t, t.Name(), env, nsK, nsX)
}

// twoNodes makes node K's and node X's namespaces (named from prefix)
// joined by links veth pairs, vkaN (10.98.N.1/24) in K to vxN
// (10.98.N.2/24) in X, and removes them at the test's end.
func twoNodes(t *testing.T, prefix string, links int) (nsK, nsX string) {
	for _, c := range []struct{ bin, pkg string }{{"ip", "iproute2"}, {"keepalived", "keepalived"}} {
		if _, err := exec.LookPath(c.bin); err != nil {
			t.Fatalf("needs %s, which tools/deps.sh test installs (apt-get install %s): %v", c.bin, c.pkg, err)
		}
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	nsK, nsX = prefix+"k-"+suffix, prefix+"x-"+suffix
	for _, ns := range []string{nsK, nsX} {
		syncRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Logf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	for i := 1; i <= links; i++ {
		k, x, net := fmt.Sprintf("vka%d", i), fmt.Sprintf("vx%d", i), fmt.Sprintf("10.98.%d", i)
		syncRun(t, "ip", "-n", nsK, "link", "add", k, "type", "veth", "peer", "name", x, "netns", nsX)
		syncRun(t, "ip", "-n", nsK, "addr", "add", net+".1/24", "dev", k)
		syncRun(t, "ip", "-n", nsX, "addr", "add", net+".2/24", "dev", x)
		syncRun(t, "ip", "-n", nsK, "link", "set", k, "up")
		syncRun(t, "ip", "-n", nsX, "link", "set", x, "up")
	}
	syncRun(t, "ip", "-n", nsK, "link", "set", "lo", "up")
	syncRun(t, "ip", "-n", nsX, "link", "set", "lo", "up")
	return nsK, nsX
}

// runNodeX runs the test name again as node X, a child process in nsX
// (env set to nsK), as a daemon runs on its own host: VRRP reads
// interfaces and netlink in its own namespace from many goroutines.
func runNodeX(t *testing.T, name, env, nsK, nsX string) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", nsX, os.Args[0],
		"-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+nsK)
	out, err := cmd.CombinedOutput()
	t.Logf("node X (child test in %s):\n%s", nsX, out)
	require.NoError(t, err, "node X failed")
	require.Contains(t, string(out), "--- PASS: "+name, "the child ran the test")
}

func syncRun(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
}

const syncKeepalivedConf = `global_defs {
    router_id node_k
}
vrrp_instance VI_A {
    state BACKUP
    interface vka1
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {
        10.98.1.100/24
    }
}
`

const syncInstances = `
vrrp_instance VI_A {
    state BACKUP
    interface vx1
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.98.1.100/24
    }
}
vrrp_instance VI_B {
    state BACKUP
    interface vx2
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.98.2.100/24
    }
}
`

const syncGroupConf = `
vrrp_sync_group G {
    group {
        VI_A
        VI_B
    }
    notify_master "/bin/true"
    notify_backup "/bin/true"
}
`

// syncKeepalived is keepalived on node K: VRRP only (-P), no respawn (-R).
type syncKeepalived struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *testutil.LockedBuffer
	pid    int // the VRRP child
	once   sync.Once
}

func startSyncKeepalived(t *testing.T, ns, config string) *syncKeepalived {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(conf, []byte(config), 0o644))
	vrrpPid := filepath.Join(dir, "vrrp.pid")
	k := &syncKeepalived{exited: make(chan struct{}), out: &testutil.LockedBuffer{}}
	k.cmd = exec.Command("ip", "netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-P", "-R",
		"-f", conf, "-p", filepath.Join(dir, "keepalived.pid"), "-r", vrrpPid)
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	require.NoError(t, k.cmd.Start())
	go func() { k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		k.stop()
		t.Logf("keepalived output:\n%s", k.out.String())
	})
	syncWaitFor(t, 5*time.Second, "keepalived's VRRP pid file", func() bool {
		b, err := os.ReadFile(vrrpPid)
		if err != nil {
			return false
		}
		k.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && k.pid > 0
	})
	return k
}

// stop is systemd's stop: SIGTERM, on which keepalived's master sends
// priority 0.
func (k *syncKeepalived) stop() {
	k.once.Do(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(5 * time.Second):
			k.cmd.Process.Kill()
			<-k.exited
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k.pid)); err == nil && strings.TrimSpace(string(comm)) == "keepalived" {
			syscall.Kill(k.pid, syscall.SIGKILL)
		}
	})
}

func syncWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasVIP(t *testing.T, h *netlink.Handle, ifname string, vip netip.Prefix) bool {
	t.Helper()
	link, err := h.LinkByName(ifname)
	require.NoError(t, err)
	addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	require.NoError(t, err)
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip.Addr() {
			return true
		}
	}
	return false
}

func states(v *Supervisor) map[string]string {
	out := map[string]string{}
	for _, s := range v.Instances() {
		out[s.Name] = s.State
	}
	return out
}

// syncGroupNodeX is node X, in the child process.
func syncGroupNodeX(t *testing.T, kaNS string, kaH, xH *netlink.Handle) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mdi := vrrp.MasterDownInterval(vrrp.Version2, 100, time.Second, vrrp.DefaultDownTimerAdverts)

	ka := startSyncKeepalived(t, kaNS, syncKeepalivedConf)
	syncWaitFor(t, 10*time.Second, "keepalived MASTER for VI_A", func() bool { return hasVIP(t, kaH, "vka1", syncVIPA) })

	// Without a group, VI_B, alone on its link, goes MASTER while VI_A
	// stays BACKUP under keepalived: the split a sync group exists to
	// avoid.
	split := New(Options{Logger: log})
	split.Load(parse(t, syncInstances))
	syncWaitFor(t, mdi+3*time.Second, "VI_B MASTER without a group", func() bool { return states(split)["VI_B"] == "MASTER" })
	assert.Equal(t, "BACKUP", states(split)["VI_A"])
	assert.True(t, hasVIP(t, xH, "vx2", syncVIPB))
	assert.False(t, hasVIP(t, xH, "vx1", syncVIPA))
	split.Stop()
	require.False(t, hasVIP(t, xH, "vx2", syncVIPB), "Stop removes the VIPs")

	// With the group, VI_B's down timer runs out again and again, but it
	// stays BACKUP: VI_A hears keepalived and does not want MASTER.
	var mu sync.Mutex
	var ran []string
	scripts := func(_ *config.Script, why string) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, why)
	}
	// lastRun is where why last is in ran, -1 if nowhere.
	lastRun := func(why string) int {
		mu.Lock()
		defer mu.Unlock()
		for i := len(ran) - 1; i >= 0; i-- {
			if ran[i] == why {
				return i
			}
		}
		return -1
	}
	v := New(Options{Logger: log, Scripts: scripts})
	v.Load(parse(t, syncGroupConf+syncInstances))
	t.Cleanup(v.Stop)
	hold := func(d time.Duration, what string) {
		t.Helper()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			st := states(v)
			require.Equal(t, map[string]string{"VI_A": "BACKUP", "VI_B": "BACKUP"}, st, what)
			require.False(t, hasVIP(t, xH, "vx2", syncVIPB), what)
			time.Sleep(20 * time.Millisecond)
		}
	}
	hold(2*mdi+time.Second, "held by the group while VI_A hears a better master")
	require.True(t, hasVIP(t, kaH, "vka1", syncVIPA), "keepalived is still MASTER")

	// keepalived stops (priority 0): VI_A wants MASTER after Skew_Time,
	// VI_B has wanted it all along, and they go MASTER together.
	stopped := time.Now()
	ka.stop()
	var atA, atB time.Time
	syncWaitFor(t, 3*time.Second, "both MASTER", func() bool {
		st := states(v)
		if atA.IsZero() && st["VI_A"] == "MASTER" {
			atA = time.Now()
		}
		if atB.IsZero() && st["VI_B"] == "MASTER" {
			atB = time.Now()
		}
		return !atA.IsZero() && !atB.IsZero()
	})
	t.Logf("after keepalived's priority 0: VI_A MASTER in %v, VI_B in %v", atA.Sub(stopped), atB.Sub(stopped))
	assert.Less(t, atB.Sub(atA).Abs(), 200*time.Millisecond, "together")
	assert.Less(t, atA.Sub(stopped), mdi, "VI_A took over after Skew_Time, not a full down interval")
	assert.True(t, hasVIP(t, xH, "vx1", syncVIPA))
	assert.True(t, hasVIP(t, xH, "vx2", syncVIPB))
	syncWaitFor(t, 2*time.Second, "the group's notify_master", func() bool { return lastRun("notify group G MASTER") >= 0 })

	// keepalived is back, with a better priority than VI_A: it preempts,
	// VI_A goes BACKUP, and takes VI_B with it.
	back := time.Now()
	startSyncKeepalived(t, kaNS, syncKeepalivedConf)
	syncWaitFor(t, mdi+5*time.Second, "VI_A BACKUP under keepalived", func() bool { return states(v)["VI_A"] == "BACKUP" })
	atA = time.Now()
	syncWaitFor(t, time.Second, "VI_B forced to BACKUP", func() bool { return states(v)["VI_B"] == "BACKUP" })
	t.Logf("after keepalived came back: VI_A BACKUP in %v, VI_B %v later", atA.Sub(back), time.Since(atA))
	syncWaitFor(t, time.Second, "keepalived MASTER again", func() bool { return hasVIP(t, kaH, "vka1", syncVIPA) })
	assert.False(t, hasVIP(t, xH, "vx1", syncVIPA))
	assert.False(t, hasVIP(t, xH, "vx2", syncVIPB))
	syncWaitFor(t, 2*time.Second, "the group's notify_backup", func() bool {
		return lastRun("notify group G BACKUP") > lastRun("notify group G MASTER")
	})
	hold(mdi+time.Second, "VI_B stays BACKUP past its down interval")
	v.Stop() // before keepalived's cleanup, whose priority 0 would make the group MASTER again
}
