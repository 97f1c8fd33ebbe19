package vrrpd

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/vrrp"
)

// A hitless restart's bridge against a real keepalived (the BACKUP of a
// pair, priority 100, on node K): node X's instance (priority 150) is
// MASTER and hands off; the bridge keeps keepalived BACKUP for two of
// its master-down intervals (without it keepalived takes over after
// one: the data plane's load is that gap); the next Supervisor resumes
// MASTER from it. Then, handed off again, a keepalived of priority 200
// comes up while the bridge advertises: it takes MASTER, the bridge gives
// the VIP up at once, and the next Supervisor starts BACKUP.

const bridgeChildEnv = "XLB_BRIDGE_TEST_KEEPALIVED_NS" // set in the child: node K's namespace

func TestBridgeAgainstKeepalived(t *testing.T) {
	againstKeepalived(t, bridgeChildEnv, "xlbbr", 1, bridgeNodeX)
}

func bridgeKeepalivedConf(prio int) string {
	return fmt.Sprintf(`global_defs {
    router_id node_k
}
vrrp_instance VI_A {
    state BACKUP
    interface vka1
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.98.1.100/24
    }
}
`, prio)
}

const bridgeInstance = `
vrrp_instance VI_A {
    state BACKUP
    interface vx1
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.98.1.100/24
    }
}
`

func bridgeNodeX(t *testing.T, kaNS string, kaH, xH *netlink.Handle) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// keepalived's (priority 100) and that of 200.
	mdi := vrrp.MasterDownInterval(vrrp.Version2, 100, time.Second, vrrp.DefaultDownTimerAdverts)
	mdi200 := vrrp.MasterDownInterval(vrrp.Version2, 200, time.Second, vrrp.DefaultDownTimerAdverts)
	kaHolds := func() bool { return hasVIP(t, kaH, "vka1", syncVIPA) }
	xHolds := func() bool { return hasVIP(t, xH, "vx1", syncVIPA) }
	cfg := parse(t, bridgeInstance)
	resume := map[string]bool{"VI_A": true}

	ka := startSyncKeepalived(t, kaNS, bridgeKeepalivedConf(100))
	syncWaitFor(t, 10*time.Second, "keepalived MASTER alone", kaHolds)
	v := New(Options{Logger: log})
	v.Load(cfg)
	syncWaitFor(t, mdi+3*time.Second, "node X MASTER, keepalived preempted", func() bool {
		return states(v)["VI_A"] == "MASTER" && xHolds() && !kaHolds()
	})

	require.Equal(t, []string{"VI_A"}, v.Handoff())
	handed := time.Now()
	b := NewBridge(cfg, resume, log)
	for time.Since(handed) < 2*mdi {
		require.False(t, kaHolds(), "keepalived took MASTER %v after the handoff, under the bridge", time.Since(handed))
		require.True(t, xHolds(), "the VIP left node X under the bridge")
		time.Sleep(20 * time.Millisecond)
	}
	v2 := New(Options{Logger: log, Resume: resume, Bridge: b})
	v2.Load(cfg)
	require.Equal(t, "MASTER", states(v2)["VI_A"], "resumed from the bridge")
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		require.False(t, kaHolds(), "keepalived took MASTER from the resumed instance")
		require.Equal(t, "MASTER", states(v2)["VI_A"])
	}

	// Handed off again; keepalived comes back with priority 200 while
	// the bridge advertises.
	require.Equal(t, []string{"VI_A"}, v2.Handoff())
	b = NewBridge(cfg, resume, log)
	t.Cleanup(b.Close)
	ka.stop()
	back := time.Now()
	startSyncKeepalived(t, kaNS, bridgeKeepalivedConf(200))
	syncWaitFor(t, mdi200+5*time.Second, "keepalived (priority 200) MASTER over the bridge", kaHolds)
	syncWaitFor(t, 2*time.Second, "the bridge gave the VIP up", func() bool { return !xHolds() })
	t.Logf("keepalived of priority 200 MASTER and the bridge's VIP gone %v after it started", time.Since(back))
	v3 := New(Options{Logger: log, Resume: resume, Bridge: b})
	v3.Load(cfg)
	t.Cleanup(v3.Stop)
	require.Equal(t, "BACKUP", states(v3)["VI_A"], "a peer took MASTER during the bridge: the instance starts BACKUP")
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		require.True(t, kaHolds(), "keepalived lost MASTER")
		require.False(t, xHolds(), "node X took the VIP back")
	}
}
