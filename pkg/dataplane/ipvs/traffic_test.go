package ipvs

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/dptest"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Waits are generous: the VM runs 15-30 times slower than hardware.
const (
	waitEcho = 10 * time.Second
	waitDrop = 2 * time.Second
)

func statsOf(t *testing.T, v *Dataplane, key dataplane.ServiceKey) dataplane.ServiceStats {
	t.Helper()
	st, err := v.Stats()
	require.NoError(t, err)
	for _, s := range st.Services {
		if s.ServiceKey == key {
			return s
		}
	}
	t.Fatalf("service %s not in Stats", key)
	return dataplane.ServiceStats{}
}

// settledStats waits for IPVS's counters to catch up and returns them.
// The kernel folds its per-CPU counters into what netlink reports only when
// its rate estimator runs, every 2 s, so a read right after traffic may lag.
// It returns once cond holds and the counters have held still for longer
// than an estimator period.
func settledStats(t *testing.T, v *Dataplane, key dataplane.ServiceKey, cond func(dataplane.ServiceStats) bool) dataplane.ServiceStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var prev dataplane.ServiceStats
	since := time.Now()
	for {
		s := statsOf(t, v, key)
		switch {
		case !cond(s) || !reflect.DeepEqual(s, prev):
			prev, since = s, time.Now()
		case time.Since(since) > 2500*time.Millisecond:
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: counters did not settle: %+v", key, s)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func realOf(s dataplane.ServiceStats, a netip.Addr) (dataplane.RealStats, bool) {
	for _, r := range s.Reals {
		if r.Addr == a {
			return r, true
		}
	}
	return dataplane.RealStats{}, false
}

func localAddr(c net.Conn) netip.AddrPort {
	a := c.LocalAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// connOf finds a connection's entry in the table by its client address.
func connOf(table []dataplane.Conn, client netip.AddrPort) (dataplane.Conn, bool) {
	for _, c := range table {
		if c.Client == client {
			return c, true
		}
	}
	return dataplane.Conn{}, false
}

// TestTraffic sends TCP connections through IPVS in NAT and DR mode and
// checks what Stats and Conns say about them, then edits a weight under
// live connections, removes a real that has some, and closes the rest.
func TestTraffic(t *testing.T) {
	for _, mode := range []struct {
		name string
		dr   bool
	}{{"NAT", false}, {"DR", true}} {
		t.Run(mode.name, func(t *testing.T) { testTraffic(t, mode.dr) })
	}
}

func testTraffic(t *testing.T, dr bool) {
	requireIPVS(t)
	l := newLab(t, 2, dr)
	e := envIn(t, l.director)
	v, cc := e.open(t, Options{})
	fwd, port := lvs.NAT, uint16(8080)
	if dr {
		fwd, port = lvs.DR, 80
	}
	l.serve(t, port)
	key := dataplane.ServiceKey{Addr: l.vip, Port: 80, Protocol: lvs.TCP}
	svc := dataplane.Service{ServiceKey: key, Scheduler: "rr", Reals: []dataplane.Real{
		{Addr: l.realAddrs[0], Port: port, Weight: 1, Forward: fwd},
		{Addr: l.realAddrs[1], Port: port, Weight: 1, Forward: fwd},
	}}
	services := []dataplane.Service{svc}
	require.NoError(t, v.Apply(services))
	cc.take()

	var conns []*echoConn
	perReal := []int{0, 0}
	for range 4 {
		c := l.dial(t, 80)
		require.NoError(t, c.echo("hello", waitEcho))
		conns = append(conns, c)
		perReal[c.real]++
	}
	assert.Equal(t, []int{2, 2}, perReal, "rr alternates")
	// The kernel inserts a new dest at the head of the list and rr starts
	// at the head: the first connection goes to the real added last.
	assert.Equal(t, 1, conns[0].real, "rr's first pick")

	s := settledStats(t, v, key, func(s dataplane.ServiceStats) bool { return s.Conns == 4 })
	assert.NotZero(t, s.Packets)
	assert.NotZero(t, s.Bytes)
	if dr {
		assert.Zero(t, s.OutPackets, "DR replies bypass the director")
	} else {
		assert.NotZero(t, s.OutPackets, "NAT replies cross the director")
		assert.NotZero(t, s.OutBytes)
	}
	require.Len(t, s.Reals, 2)
	assert.Equal(t, l.realAddrs[1], s.Reals[0].Addr, "Stats lists reals in the kernel's order, newest first")
	for _, r := range s.Reals {
		assert.EqualValues(t, 2, r.Conns, "real %s", r)
		assert.EqualValues(t, 2, r.ActiveConns, "real %s", r)
		assert.Zero(t, r.InactConns, "real %s", r)
		assert.True(t, r.Resolved)
	}

	table, err := v.Conns()
	require.NoError(t, err)
	assert.Len(t, table, 4)
	for _, c := range conns {
		ent, ok := connOf(table, localAddr(c))
		if assert.True(t, ok, "connection %s in Conns", localAddr(c)) {
			assert.Equal(t, "ESTABLISHED", ent.State)
			assert.Equal(t, lvs.TCP, ent.Protocol)
			assert.Equal(t, netip.AddrPortFrom(l.vip, 80), ent.Virtual)
			assert.Equal(t, netip.AddrPortFrom(l.realAddrs[c.real], port), ent.Real)
			assert.Greater(t, ent.Expires, 800*time.Second)
		}
	}
	compareIpvsadm(t, e, v, services, "-Ln")
	compareIpvsadm(t, e, v, services, "-Ln", "--stats")
	compareIpvsadm(t, e, v, services, "-Lnc")

	// A weight edit keeps the dest, its counters and its connections.
	before, _ := realOf(s, l.realAddrs[0])
	require.EqualValues(t, 2, before.Conns)
	svc.Reals[0].Weight = 0
	services = []dataplane.Service{svc}
	require.NoError(t, v.Apply(services))
	assert.Equal(t, []string{fmt.Sprintf("edit-real TCP %s:80 %s:%d", l.vip, l.realAddrs[0], port)}, cc.take())
	after, ok := realOf(statsOf(t, v, key), l.realAddrs[0])
	require.True(t, ok)
	assert.Equal(t, before.Counters, after.Counters, "counters survive a weight edit")
	assert.EqualValues(t, 2, after.ActiveConns)
	assert.Zero(t, after.Weight)
	for _, c := range conns {
		require.NoError(t, c.echo("still here", waitEcho), "connection to real%d after its weight changed", c.real)
	}
	c := l.dial(t, 80)
	assert.Equal(t, 1, c.real, "weight 0 takes no new connections")
	conns = append(conns, c)

	// Removing a real with live connections: IPVS keeps their entries (to
	// time out) but drops their packets (expire_nodest_conn=0).
	svc.Reals = svc.Reals[1:]
	services = []dataplane.Service{svc}
	require.NoError(t, v.Apply(services))
	assert.Equal(t, []string{fmt.Sprintf("del-real TCP %s:80 %s:%d", l.vip, l.realAddrs[0], port)}, cc.take())
	s = settledStats(t, v, key, func(s dataplane.ServiceStats) bool { return s.Conns == 5 })
	assert.Len(t, s.Reals, 1, "the service keeps the removed real's counts")
	table, err = v.Conns()
	require.NoError(t, err)
	for _, c := range conns {
		ent, ok := connOf(table, localAddr(c))
		if assert.True(t, ok, "connection %s in Conns", localAddr(c)) {
			assert.Equal(t, netip.AddrPortFrom(l.realAddrs[c.real], port), ent.Real)
		}
		if c.real == 0 {
			err := c.echo("gone", waitDrop)
			assert.True(t, isTimeout(err), "a removed real's connection is dropped, got %v", err)
		} else {
			assert.NoError(t, c.echo("stays", waitEcho))
		}
	}

	for _, c := range conns {
		c.Close()
	}
	dptest.Eventually(t, 20*time.Second, "connections to real1 closing", func() (bool, string) {
		r, _ := realOf(statsOf(t, v, key), l.realAddrs[1])
		return r.ActiveConns == 0 && r.InactConns == 3, fmt.Sprintf("ActiveConn %d InActConn %d", r.ActiveConns, r.InactConns)
	})
	compareIpvsadm(t, e, v, services, "-Ln", "--stats")
	table, err = v.Conns()
	require.NoError(t, err)
	t.Logf("connection table after close: %+v", table)

	require.NoError(t, v.Close())
	assert.Empty(t, e.view(t))
}

// TestTrafficPersistence: a client's connections share a real through a
// persistence template, which Conns lists; quiescing the real keeps the
// template in use, removing it does not.
func TestTrafficPersistence(t *testing.T) {
	requireIPVS(t)
	l := newLab(t, 2, false)
	e := envIn(t, l.director)
	v, _ := e.open(t, Options{})
	l.serve(t, 8080)
	key := dataplane.ServiceKey{Addr: l.vip, Port: 80, Protocol: lvs.TCP}
	svc := dataplane.Service{ServiceKey: key, Scheduler: "rr", Persistence: time.Minute, PersistenceMask: 0xffffff00, Reals: []dataplane.Real{
		{Addr: l.realAddrs[0], Port: 8080, Weight: 1, Forward: lvs.NAT},
		{Addr: l.realAddrs[1], Port: 8080, Weight: 1, Forward: lvs.NAT},
	}}
	require.NoError(t, v.Apply([]dataplane.Service{svc}))

	first := l.dial(t, 80)
	second := l.dial(t, 80)
	assert.Equal(t, first.real, second.real, "persistence keeps the client on one real")
	table, err := v.Conns()
	require.NoError(t, err)
	t.Logf("/proc/net/ip_vs_conn:\n%s", e.ns.run(t, "cat", "/proc/net/ip_vs_conn"))
	tmpl, ok := connOf(table, netip.AddrPortFrom(netip.MustParseAddr("10.78.1.0"), 0))
	if assert.True(t, ok, "the template (client masked to /24, port 0) is in Conns") {
		// A template is NONE until a connection it controls is
		// established, then ASSURED; its protocol is the service's.
		assert.Equal(t, "ASSURED", tmpl.State)
		assert.Equal(t, lvs.TCP, tmpl.Protocol)
		assert.Equal(t, netip.AddrPortFrom(l.vip, 80), tmpl.Virtual)
		assert.Equal(t, netip.AddrPortFrom(l.realAddrs[first.real], 8080), tmpl.Real)
		assert.Greater(t, tmpl.Expires, 30*time.Second)
	}
	compareIpvsadm(t, e, v, []dataplane.Service{svc}, "-Lnc")
	s := settledStats(t, v, key, func(s dataplane.ServiceStats) bool { return s.Conns == 2 })
	r, _ := realOf(s, l.realAddrs[first.real])
	assert.EqualValues(t, 2, r.Conns, "the template is not a connection in the counters")
	assert.EqualValues(t, 2, r.ActiveConns)

	// Weight 0 does not break persistence (expire_quiescent_template=0).
	svc.Reals[first.real].Weight = 0
	require.NoError(t, v.Apply([]dataplane.Service{svc}))
	third := l.dial(t, 80)
	assert.Equal(t, first.real, third.real, "a quiesced real keeps its persistent clients")

	// A removed real's template is void: the client moves.
	svc.Reals = append(svc.Reals[:first.real:first.real], svc.Reals[first.real+1:]...)
	require.NoError(t, v.Apply([]dataplane.Service{svc}))
	fourth := l.dial(t, 80)
	assert.NotEqual(t, first.real, fourth.real, "a removed real's persistent clients go elsewhere")
}

// TestTrafficSHFallback: sh sends a client whose bucket's real is quiesced
// nowhere (IPVS answers the SYN with ICMP port unreachable: connection
// refused) unless sh-fallback lets it probe on to another bucket.
func TestTrafficSHFallback(t *testing.T) {
	requireIPVS(t)
	l := newLab(t, 2, false)
	e := envIn(t, l.director)
	v, _ := e.open(t, Options{})
	l.serve(t, 8080)
	key := dataplane.ServiceKey{Addr: l.vip, Port: 80, Protocol: lvs.TCP}
	svc := dataplane.Service{ServiceKey: key, Scheduler: "sh", Reals: []dataplane.Real{
		{Addr: l.realAddrs[0], Port: 8080, Weight: 1, Forward: lvs.NAT},
		{Addr: l.realAddrs[1], Port: 8080, Weight: 1, Forward: lvs.NAT},
	}}
	require.NoError(t, v.Apply([]dataplane.Service{svc}))
	first := l.dial(t, 80)
	again := l.dial(t, 80)
	assert.Equal(t, first.real, again.real, "sh hashes the client to one real")

	// IPVS fills sh's buckets walking its dest list, newest first:
	// pkg/sched's reference predicts the pick over the kernel's order, and
	// predicts the other real over the order the reals were given in.
	var order []int // input index of each real, in the kernel's order
	for _, r := range statsOf(t, v, key).Reals {
		order = append(order, slices.IndexFunc(svc.Reals, func(x dataplane.Real) bool { return x.Addr == r.Addr }))
	}
	ds := []sched.Dest{{Weight: 1}, {Weight: 1}}
	tab := sched.SHTable(ds)
	pick := sched.SHPick(&tab, ds, sched.SHKey(l.clientAddr, 0), false)
	assert.Equal(t, []int{1, 0}, order)
	assert.Equal(t, first.real, order[pick], "pkg/sched over the kernel's dest order")
	assert.NotEqual(t, first.real, pick, "pkg/sched over the input order")

	svc.Reals[first.real].Weight = 0
	require.NoError(t, v.Apply([]dataplane.Service{svc}))
	err := l.client.do(func() error {
		d := net.Dialer{Timeout: waitEcho}
		c, err := d.Dial("tcp4", netip.AddrPortFrom(l.vip, 80).String())
		if err == nil {
			c.Close()
		}
		return err
	})
	require.Error(t, err, "without sh-fallback the client's bucket has no real")
	assert.ErrorContains(t, err, "connection refused")

	svc.Flags = lvs.Sched1
	require.NoError(t, v.Apply([]dataplane.Service{svc}))
	moved := l.dial(t, 80)
	assert.NotEqual(t, first.real, moved.real, "sh-fallback finds the other real")
}
