package health

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// pingTopology is two network namespaces on a veth pair: the director
// (where the checks run) and a real server, 10.78.0.1 and 10.78.0.2, with
// fd78::1 and fd78::2.
type pingTopology struct {
	director, real *testutil.NS
	realAddr       netip.Addr
	realAddr6      netip.Addr
}

func newPingTopology(t *testing.T) *pingTopology {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	id := testutil.Suffix()
	dir, err := testutil.NewNS("xlb-hc-" + id + "-d")
	require.NoError(t, err)
	t.Cleanup(func() { _ = dir.Close() })
	rs, err := testutil.NewNS("xlb-hc-" + id + "-r")
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	require.NoError(t, dir.IP("link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", rs.Name))
	for _, c := range []struct {
		ns     *testutil.NS
		v4, v6 string
	}{{dir, "10.78.0.1/24", "fd78::1/64"}, {rs, "10.78.0.2/24", "fd78::2/64"}} {
		require.NoError(t, c.ns.IP("addr", "add", c.v4, "dev", "eth0"))
		require.NoError(t, c.ns.IP("addr", "add", c.v6, "dev", "eth0", "nodad"))
		require.NoError(t, c.ns.IP("link", "set", "eth0", "up"))
	}
	return &pingTopology{director: dir, real: rs,
		realAddr: netip.MustParseAddr("10.78.0.2"), realAddr6: netip.MustParseAddr("fd78::2")}
}

// inDirector is c run from the director's namespace.
func (p *pingTopology) inDirector(c Checker) Checker {
	return CheckerFunc(func(ctx context.Context) Result {
		var r Result
		if err := p.director.Do(func() error { r = c.Check(ctx); return nil }); err != nil {
			return down(err)
		}
		return r
	})
}

// allowPing sets ping_group_range in the director's namespace: open to
// every group (datagram ICMP sockets for all), or closed ("1 0", the
// kernel's default: raw sockets only).
func (p *pingTopology) allowPing(t *testing.T, open bool) {
	t.Helper()
	v := "1 0"
	if open {
		v = "0 2147483647"
	}
	require.NoError(t, p.director.Sysctl("net.ipv4.ping_group_range", v))
}

func TestPingSocketKind(t *testing.T) {
	p := newPingTopology(t)
	for _, open := range []bool{true, false} {
		p.allowPing(t, open)
		for _, six := range []bool{false, true} {
			var raw bool
			require.NoError(t, p.director.Do(func() error {
				pg, err := listenICMP(six)
				if err != nil {
					return err
				}
				raw = pg.raw
				return pg.conn.Close()
			}))
			assert.Equal(t, !open, raw, "ping_group_range open %v, IPv6 %v: a datagram socket where allowed, raw otherwise", open, six)
		}
	}
}

func TestPingCheck(t *testing.T) {
	p := newPingTopology(t)
	for _, open := range []bool{true, false} {
		p.allowPing(t, open)
		for _, a := range []netip.Addr{p.realAddr, p.realAddr6} {
			c := p.inDirector(&PingCheck{Addr: a, Timeout: 2 * time.Second})
			r := c.Check(context.Background())
			assert.True(t, r.Up, "datagram socket %v, %v: %v", open, a, r.Err)
		}
		// An address nobody holds on the link: no reply.
		r := p.inDirector(&PingCheck{Addr: netip.MustParseAddr("10.78.0.3"), Timeout: 300 * time.Millisecond}).Check(context.Background())
		assert.False(t, r.Up)
		assert.ErrorIs(t, r.Err, ErrTimeout)
	}
}

// TestPingRealLeavesAndRejoins runs PING_CHECK on the Monitor against a
// real server in its own namespace: the real goes down when its address
// goes away and when its link goes down, and comes back with them.
func TestPingRealLeavesAndRejoins(t *testing.T) {
	p := newPingTopology(t)
	p.allowPing(t, true)
	out := make(chan Transition, 10)
	m := NewMonitor(MonitorConfig{Real: "10.78.0.100:0/10.78.0.2:0", Probes: []Probe{{Name: "PING_CHECK 10.78.0.2",
		Checker: p.inDirector(&PingCheck{Addr: p.realAddr, Timeout: 300 * time.Millisecond}),
		Policy:  Policy{DelayLoop: 100 * time.Millisecond, Retry: 1, DelayBeforeRetry: 50 * time.Millisecond}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, out) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(300 * time.Millisecond)
	up, _ := m.State()
	require.True(t, up, "the real answers pings")
	assert.Empty(t, drain(out))

	require.NoError(t, p.real.IP("addr", "del", "10.78.0.2/24", "dev", "eth0"))
	tr := nextTransition(t, out, 5*time.Second)
	assert.False(t, tr.Up, "its address gone: down")
	assert.Contains(t, tr.Reason, "no echo reply from 10.78.0.2")

	require.NoError(t, p.real.IP("addr", "add", "10.78.0.2/24", "dev", "eth0"))
	tr = nextTransition(t, out, 5*time.Second)
	assert.True(t, tr.Up, "its address back: up")

	require.NoError(t, p.real.IP("link", "set", "eth0", "down"))
	tr = nextTransition(t, out, 5*time.Second)
	assert.False(t, tr.Up, "its link down: down")

	require.NoError(t, p.real.IP("link", "set", "eth0", "up"))
	tr = nextTransition(t, out, 5*time.Second)
	assert.True(t, tr.Up, "its link up: up")
}
