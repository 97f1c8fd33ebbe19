package xdp

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Real HTTP and UDP through FULLNAT to reals that have no route to the
// client's network at all (no default route; the client is on another
// subnet): the reals see the director's local address, and their answers
// reach the client as the VIP's. Native and generic XDP.
func TestFULLNATEndToEnd(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			local := netip.MustParseAddr("10.77.0.50")
			for _, ns := range topo.Reals {
				require.NoError(t, ns.IP("route", "del", "default"))
				out, err := ns.Command("ip", "route", "get", topo.ClientAddr.String()).CombinedOutput()
				require.Error(t, err, "the real must have no route to the client: %s", out)
			}
			// The local address is the director's (it answers ARP for it,
			// as DPVS's laddrs are configured on its device).
			require.NoError(t, topo.Director.IP("addr", "add", local.String()+"/24", "dev", "eth0"))
			require.NoError(t, topo.ServeHTTP(8080))
			require.NoError(t, topo.ServeUDP(5300))
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode,
				url: fmt.Sprintf("http://%s:80/", topo.VIP), svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, log: quiet}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			// TOA on: the reals' kernels (no toa module) take the
			// handshake's ACK with option 254 as any unknown option.
			web, dns := fnatServices(topo.VIP, local, topo.RealAddrs)
			web.TOA = true
			r.apply(t, web, dns)
			r.waitResolved(t)

			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, r.get(t, 4))

			// The real sees the local address, from a port below the
			// ephemeral range.
			c := topo.HTTPClient()
			c.Timeout = 60 * time.Second
			peer := peerOf(t, c, fmt.Sprintf("http://%s/", topo.VIP))
			assert.Equal(t, local, peer.Addr(), "the real's peer is the local address, not the client")
			assert.Less(t, peer.Port(), uint16(32768))

			// An 8 MiB download arrives whole.
			const size = 8 << 20
			downloadChecked(t, c, fmt.Sprintf("http://%s/", topo.VIP), size)

			// UDP request/response, a new flow per socket, answers from
			// the VIP.
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r1:q2", "r2:q3"}, udpAnswers(t, topo, 4))

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			assert.Zero(t, st.Reasons["fnat_no_port"])
			var out uint64
			for _, s := range st.Services {
				out += s.OutBytes
			}
			assert.Greater(t, out, uint64(size), "the download counts as the reals' output")
		})
	}
}

// Path MTU discovery through FULLNAT (issue 13): the real sits two routers
// away, behind a 1400-byte hop (director -1500- r1 -1400- r2 -1500-
// real), so neither end's own link says the path is smaller. An 8 MiB
// upload's full-size segments reach r1, which sends "fragmentation
// needed" to the local address they came from; xlb gives it to the client
// about the VIP, the client learns the path MTU and the upload completes.
// An 8 MiB download completes too (r2 tells the real). Native and generic.
func TestFULLNATPathMTU(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			lowHopReal(t, topo, false)

			local := netip.MustParseAddr("10.77.0.50")
			require.NoError(t, topo.Director.IP("addr", "add", local.String()+"/24", "dev", "eth0"))
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode,
				svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, log: quiet}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			r.apply(t, dataplane.Service{ServiceKey: r.svc, Scheduler: "rr", LocalAddrs: []netip.Addr{local},
				Reals: []dataplane.Real{{Addr: farReal, Port: 8080, Weight: 1, Forward: lvs.FNAT}}})
			r.waitResolved(t)

			c := topo.HTTPClient()
			c.Timeout = 60 * time.Second
			const size = 8 << 20
			want := sha256.New()
			_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), size))
			resp, err := c.Post(fmt.Sprintf("http://%s/sha256", topo.VIP), "application/octet-stream", io.LimitReader(testutil.Pattern(), size))
			require.NoError(t, err, "the upload")
			ans, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("far %x", want.Sum(nil)), string(ans), "the upload arrived whole")
			out, err := topo.Client.Command("ip", "route", "get", topo.VIP.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), "mtu 1400", "the client learnt the path's MTU from the translated error: %s", out)

			downloadChecked(t, c, fmt.Sprintf("http://%s/", topo.VIP), size)
		})
	}
}

// farReal and farReal6 are lowHopReal's real, in each family.
var farReal, farReal6 = netip.MustParseAddr("10.78.0.10"), netip.MustParseAddr("fd78::10")

// lowHopReal puts a real two routers away from the director, behind a
// 1400-byte hop in the middle (director -1500- r1 -1400- r2 -1500- real,
// farReal, serving HTTP on 8080 as "far"), so that neither end's own link
// says the path is smaller: only the routers' ICMP does. With v6 the
// routers and the real are IPv6 only (farReal6; the director's LAN
// fd77::/64, the director fd77::2).
func lowHopReal(t *testing.T, topo *testutil.DR, v6 bool) {
	t.Helper()
	id := testutil.Suffix()
	mk := func(role string) *testutil.NS {
		ns, err := testutil.NewNS("xlb-" + id + "-" + role)
		require.NoError(t, err)
		t.Cleanup(func() { ns.Close() })
		return ns
	}
	r1, r2, far := mk("r1"), mk("r2"), mk("far")
	// The addresses: r1 on the director's LAN; r1 -1400- r2; r2 -1500- the real.
	// r1's address on the LAN and on the hop, r2's on the hop, r2's
	// toward the real, the real's network.
	r1LAN, r1Hop, r2Hop, r2Real, realNet, lanLen, hopLen, realLen := "10.77.0.253", "10.79.0.1", "10.79.0.2", "10.78.0.1", "10.78.0.0/24", "/24", "/30", "/24"
	realAddr, serve := farReal, "tcp4"
	ip := func(ns *testutil.NS, args ...string) error { return ns.IP(args...) }
	if v6 {
		r1LAN, r1Hop, r2Hop, r2Real, realNet, lanLen, hopLen, realLen = "fd77::253", "fd79::1", "fd79::2", "fd78::1", "fd78::/64", "/64", "/64", "/64"
		realAddr, serve = farReal6, "tcp6"
		require.NoError(t, testutil.EnableIPv6(topo.Switch, "br0"))
		require.NoError(t, testutil.EnableIPv6(topo.Director, "eth0"))
		require.NoError(t, topo.Director.IP("addr", "add", "fd77::2/64", "dev", "eth0", "nodad"))
		for _, ns := range []*testutil.NS{r1, r2, far} {
			require.NoError(t, testutil.EnableIPv6(ns))
		}
		ip = func(ns *testutil.NS, args ...string) error {
			if args[0] == "addr" {
				args = append(args, "nodad")
			}
			return ns.IP(append([]string{"-6"}, args...)...)
		}
	}
	require.NoError(t, r1.IP("link", "add", "eth0", "type", "veth", "peer", "name", "p-router", "netns", topo.Switch.Name))
	require.NoError(t, topo.Switch.IP("link", "set", "p-router", "master", "br0", "up"))
	require.NoError(t, ip(r1, "addr", "add", r1LAN+lanLen, "dev", "eth0"))
	require.NoError(t, r1.IP("link", "set", "eth0", "up"))
	link := func(a *testutil.NS, aIf, aAddr string, b *testutil.NS, bIf, bAddr, mtu string) {
		require.NoError(t, a.IP("link", "add", aIf, "mtu", mtu, "type", "veth", "peer", "name", bIf, "mtu", mtu, "netns", b.Name))
		require.NoError(t, ip(a, "addr", "add", aAddr, "dev", aIf))
		require.NoError(t, ip(b, "addr", "add", bAddr, "dev", bIf))
		require.NoError(t, a.IP("link", "set", aIf, "up"))
		require.NoError(t, b.IP("link", "set", bIf, "up"))
	}
	link(r1, "to2", r1Hop+hopLen, r2, "to1", r2Hop+hopLen, "1400")
	link(r2, "toreal", r2Real+realLen, far, "eth0", realAddr.String()+realLen, "1500")
	for _, ns := range []*testutil.NS{r1, r2} {
		require.NoError(t, ns.Sysctl("net.ipv4.ip_forward", "1"))
		if v6 {
			require.NoError(t, ns.Sysctl("net.ipv6.conf.all.forwarding", "1"))
		}
	}
	require.NoError(t, ip(r1, "route", "add", realNet, "via", r2Hop))
	require.NoError(t, ip(r2, "route", "add", "default", "via", r1Hop))
	require.NoError(t, ip(far, "route", "add", "default", "via", r2Real))
	require.NoError(t, ip(topo.Director, "route", "add", realNet, "via", r1LAN))
	// The real's frames cross XDP on the director: no checksum
	// offload (a veth would leave them partial; a NIC does not).
	require.NoError(t, far.Exec("ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off"))
	testutil.ServeHTTPIn(t, far, serve, "far", 8080)
}
