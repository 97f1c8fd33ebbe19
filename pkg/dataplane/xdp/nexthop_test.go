package xdp

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// Native XDP refused (a bridge has no driver XDP): the loader falls back
// to generic mode and says why. (Generic mode's forwarding is tested in
// TestDRHTTP.)
func TestNativeRefusedFallsBackToGeneric(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.IP("link", "add", "br0", "type", "bridge"))
	require.NoError(t, ns.IP("link", "set", "br0", "up"))
	var logs testutil.LockedBuffer
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{
			Interfaces: []string{"br0"},
			PinDir:     "/sys/fs/bpf/xlb-test-" + testutil.Suffix(),
			MaxConns:   4096,
			Resolver:   staticResolver{},
			Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		})
		return err
	}))
	t.Cleanup(func() { assert.NoError(t, x.Close()) })
	assert.Equal(t, map[string]dataplane.XDPMode{"br0": dataplane.XDPGeneric}, x.Modes())
	assert.Contains(t, logs.String(), "native xdp refused, falling back to generic mode")
	assert.Contains(t, logs.String(), "interface=br0")

	// Forced native mode fails with the reason instead.
	require.NoError(t, ns.IP("link", "add", "br1", "type", "bridge"))
	err := ns.Do(func() error {
		_, err := Open(Config{Interfaces: []string{"br1"}, Mode: dataplane.XDPNative, PinDir: "/sys/fs/bpf/xlb-test-" + testutil.Suffix(), Resolver: staticResolver{}, MaxConns: 4096})
		return err
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "attach xdp br1")
}

// A real whose MAC is unknown gets no new flows, says so in the log and in
// Stats, and starts getting flows once it answers ARP.
func TestUnresolvedRealGetsNoFlowsUntilResolved(t *testing.T) {
	var logs testutil.LockedBuffer
	r := newDRRig(t, 2, dataplane.XDPGeneric)
	r.x.log = slog.New(slog.NewTextHandler(&logs, nil))
	ghost := netip.MustParseAddr("10.77.0.99") // nobody has it yet
	svc := r.service("rr", 1)
	svc.Reals = append(svc.Reals, dataplane.Real{Addr: ghost, Port: 80, Weight: 1, Forward: lvs.DR})
	r.apply(t, svc)

	st, err := r.x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services[0].Reals, 2)
	assert.True(t, st.Services[0].Reals[0].Resolved)
	assert.False(t, st.Services[0].Reals[1].Resolved)
	assert.Contains(t, logs.String(), "real has no next hop; it gets no new flows until it resolves")
	assert.Contains(t, logs.String(), "real=10.77.0.99 ")

	assert.Equal(t, []string{"r1", "r1", "r1"}, r.get(t, 3))
	assert.EqualValues(t, 0, r.realConns(t)[1])

	// Real 2 takes the address: the resolver's retry finds its MAC.
	require.NoError(t, r.topo.Reals[1].IP("addr", "add", ghost.String()+"/24", "dev", "eth0"))
	require.Eventually(t, func() bool {
		st, err := r.x.Stats()
		require.NoError(t, err)
		return st.Services[0].Reals[1].Resolved
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, logs.String(), "real resolved")
	got := r.get(t, 4)
	assert.Contains(t, got, "r2", "the resolved real gets new flows")
	assert.Contains(t, got, "r1")
}

// A real's address moves to another host, which says so with a gratuitous
// ARP: the director's neighbour entry changes, and the data plane follows
// the event at once (the resolve loop is an hour away here), where it
// waited for its next full refresh before (about 16 s of failed requests).
func TestRealMACChangeFollowed(t *testing.T) {
	r := newDRRig(t, 2, dataplane.XDPGeneric)
	require.NoError(t, r.x.Close())
	r.resolveInterval = time.Hour
	r.x = r.open(t)
	moving := r.topo.RealAddrs[0]
	r.apply(t, dataplane.Service{ServiceKey: r.svc, Scheduler: "rr",
		Reals: []dataplane.Real{{Addr: moving, Port: 80, Weight: 1, Forward: lvs.DR}}})
	assert.Equal(t, []string{"r1", "r1"}, r.get(t, 2))

	require.NoError(t, r.topo.Reals[0].IP("addr", "del", moving.String()+"/24", "dev", "eth0"))
	require.NoError(t, r.topo.Reals[1].IP("addr", "add", moving.String()+"/24", "dev", "eth0"))
	sent := time.Now()
	require.NoError(t, r.topo.Reals[1].Do(func() error {
		g, err := vrrp.NewGARP("eth0")
		if err != nil {
			return err
		}
		defer g.Close()
		return g.SendGARP(moving)
	}))
	require.Eventually(t, func() bool {
		st, err := r.x.Stats()
		require.NoError(t, err)
		return st.NextHopChanges > 0
	}, time.Second, 5*time.Millisecond, "the neighbour event was not followed")
	t.Logf("following the new MAC took %v", time.Since(sent))
	assert.Equal(t, []string{"r2", "r2", "r2"}, r.get(t, 3), "the real's address is on r2's host now")
}

// A TUN real may be anywhere the routes reach: its next hop is the route's
// gateway (its MAC, the interface), with the route's source address for
// the outer header and its MTU (the route's own, else the interface's). A
// DR real behind a gateway is refused, as before.
func TestResolveTunnelThroughGateway(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.IP("link", "add", "up0", "type", "veth", "peer", "name", "up1"))
	require.NoError(t, ns.IP("link", "set", "up0", "mtu", "1400", "up"))
	require.NoError(t, ns.IP("link", "set", "up1", "up"))
	require.NoError(t, ns.IP("addr", "add", "10.66.0.1/24", "dev", "up0"))
	gwMAC := "02:66:00:00:00:fe"
	require.NoError(t, ns.IP("neigh", "replace", "10.66.0.254", "lladdr", gwMAC, "dev", "up0", "nud", "permanent"))
	require.NoError(t, ns.IP("route", "add", "10.200.0.0/24", "via", "10.66.0.254"))
	require.NoError(t, ns.IP("route", "add", "10.201.0.0/24", "via", "10.66.0.254", "mtu", "1300"))
	h, err := ns.Netlink()
	require.NoError(t, err)
	t.Cleanup(h.Close)
	res := NeighResolver{Handle: h}

	nh, err := res.Resolve(netip.MustParseAddr("10.200.0.5"), true)
	require.NoError(t, err)
	assert.Equal(t, gwMAC, nh.MAC.String(), "the gateway's MAC")
	assert.Equal(t, netip.MustParseAddr("10.66.0.254"), nh.Gateway)
	assert.Equal(t, netip.MustParseAddr("10.66.0.1"), nh.Src, "the outer source: the route's")
	assert.Equal(t, 1400, nh.MTU, "the interface's MTU")
	nh, err = res.Resolve(netip.MustParseAddr("10.201.0.5"), true)
	require.NoError(t, err)
	assert.Equal(t, 1300, nh.MTU, "the route's own MTU")

	_, err = res.Resolve(netip.MustParseAddr("10.200.0.5"), false)
	assert.ErrorContains(t, err, "DR needs the real on a directly connected network")
}
