package xdp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// IPv6 DR through real veths: the DR topology given IPv6 addresses
// (fd77::/64, the VIP fd77:1::100 on each real's lo, the client routing
// it via the director), real TCP from the client's kernel to the reals'
// HTTP servers through xlb, the reals' MACs found by the director's
// neighbour discovery. rr over two reals; a 4 MiB download checked byte
// by byte; the flows listed with their IPv6 addresses.
func TestIPv6DRHTTP(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPGeneric, dataplane.XDPNative} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, 2, mode)
			vip := netip.MustParseAddr("fd77:1::100")
			realAddrs := ipv6Topology(t, r.topo, vip)
			svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
			for _, a := range realAddrs {
				svc.Reals = append(svc.Reals, dataplane.Real{Addr: a, Port: 80, Weight: 1, Forward: lvs.DR})
			}
			r.apply(t, svc)
			r.waitResolved(t)

			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: r.topo.Client.DialContext, DisableKeepAlives: true}}
			url := "http://[" + vip.String() + "]:80/"
			assert.Equal(t, []string{"r1", "r2", "r1", "r2", "r1", "r2"}, getN(t, c, url, 6))

			downloadChecked(t, c, url, 4<<20)

			conns, err := r.x.Conns()
			require.NoError(t, err)
			require.NotEmpty(t, conns)
			for _, cn := range conns {
				assert.Equal(t, netip.MustParseAddr("fd77::1"), cn.Client.Addr())
				assert.Equal(t, netip.AddrPortFrom(vip, 80), cn.Virtual)
				assert.Contains(t, realAddrs, cn.Real.Addr())
			}
			st, err := r.x.Stats()
			require.NoError(t, err)
			require.Len(t, st.Services, 1)
			assert.EqualValues(t, 7, st.Services[0].Conns)
		})
	}
}

// NAT66 through real veths: the NAT topology given IPv6 (the client on
// fd75::/64 behind the director, the reals on fd77::/64 with the director
// as their default route, the director forwarding IPv6 as an LVS-NAT
// director must), real TCP from the client to the VIP, the reals'
// replies translated back by XDP and routed to the client by the FIB.
func TestNAT66HTTP(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPGeneric, dataplane.XDPNative} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			vip := netip.MustParseAddr("fd77:1::100")
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode, log: quiet,
				svc: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			realAddrs := ipv6NATTopology(t, topo)
			svc := dataplane.Service{ServiceKey: r.svc, Scheduler: "rr"}
			for _, a := range realAddrs {
				svc.Reals = append(svc.Reals, dataplane.Real{Addr: a, Port: 8080, Weight: 1, Forward: lvs.NAT})
			}
			r.apply(t, svc)
			r.waitResolved(t)

			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
			url := "http://[" + vip.String() + "]:80/"
			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, getN(t, c, url, 4))
			downloadChecked(t, c, url, 4<<20)

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			assert.Greater(t, st.Services[0].OutBytes, uint64(4<<20), "the download counts as the reals' output")
		})
	}
}

// ipv6NATTopology gives a NAT topology IPv6: the client fd75::1/64 routing
// everything via the director's fd75::2, the reals fd77::11... with the
// director's fd77::2 as their default route, the director forwarding;
// each real serves HTTP over IPv6 on port 8080.
func ipv6NATTopology(t *testing.T, topo *testutil.DR) []netip.Addr {
	t.Helper()
	enableIPv6(t, topo.Switch, "br0")
	enableIPv6(t, topo.Client, "eth0")
	addrNoDAD(t, topo.Client, "fd75::1/64")
	require.NoError(t, topo.Client.IP("-6", "route", "add", "default", "via", "fd75::2"))
	enableIPv6(t, topo.Director, "eth0")
	addrNoDAD(t, topo.Director, "fd77::2/64")
	addrNoDAD(t, topo.Director, "fd75::2/64")
	require.NoError(t, topo.Director.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	var reals []netip.Addr
	for i, ns := range topo.Reals {
		enableIPv6(t, ns, "eth0")
		a := testutil.RealAddr6(i)
		addrNoDAD(t, ns, a.String()+"/64")
		require.NoError(t, ns.IP("-6", "route", "add", "default", "via", "fd77::2"))
		reals = append(reals, a)
	}
	require.NoError(t, topo.ServeHTTP6(8080))
	require.NoError(t, topo.WarmNeighbours6(reals, 8080))
	return reals
}

// downloadChecked fetches n bytes of testutil.Pattern from url's server
// and checks every one.
func downloadChecked(t *testing.T, c *http.Client, url string, n int) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("%sbytes/%d", url, n))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	want := make([]byte, n)
	_, _ = io.ReadFull(testutil.Pattern(), want)
	assert.True(t, bytes.Equal(want, body), "the download, byte for byte (%d bytes)", len(body))
}

// enableIPv6 turns IPv6 on in ns (testutil's topologies turn it off),
// for all interfaces and the ones named.
func enableIPv6(t *testing.T, ns *testutil.NS, ifs ...string) {
	t.Helper()
	require.NoError(t, testutil.EnableIPv6(ns, ifs...))
}

// addrNoDAD adds address a to ns's eth0, usable at once (no duplicate
// address detection).
func addrNoDAD(t *testing.T, ns *testutil.NS, a string) {
	t.Helper()
	require.NoError(t, ns.IP("addr", "add", a, "dev", "eth0", "nodad"))
}

// ipv6Topology gives topo's namespaces IPv6 (addresses without duplicate
// address detection, so usable at once), puts vip on each real's lo and
// routes it from the client via the director, and serves HTTP over IPv6
// on each real (its name, and /bytes/N of testutil.Pattern). It returns
// the reals' addresses.
func ipv6Topology(t *testing.T, topo *testutil.DR, vip netip.Addr) []netip.Addr {
	t.Helper()
	reals, err := topo.AddIPv6(vip)
	require.NoError(t, err)
	require.NoError(t, topo.ServeHTTP6(80))
	require.NoError(t, topo.WarmNeighbours6(reals, 80))
	return reals
}
