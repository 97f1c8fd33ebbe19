package xdp

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
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
			require.NoError(t, topo.ServeUDP(5353))
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode,
				url: fmt.Sprintf("http://%s:80/", topo.VIP), svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, log: quiet}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			// TOA on: the reals' kernels (no toa module) take the
			// handshake's ACK with option 254 as any unknown option.
			web := dataplane.Service{ServiceKey: r.svc, Scheduler: "rr", LocalAddrs: []netip.Addr{local}, TOA: true}
			dns := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: topo.VIP, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
				LocalAddrs: []netip.Addr{local}}
			for _, a := range topo.RealAddrs {
				web.Reals = append(web.Reals, dataplane.Real{Addr: a, Port: 8080, Weight: 1, Forward: lvs.FNAT})
				dns.Reals = append(dns.Reals, dataplane.Real{Addr: a, Port: 5353, Weight: 1, Forward: lvs.FNAT})
			}
			r.apply(t, web, dns)
			r.waitResolved(t)

			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, r.get(t, 4))

			// The real sees the local address, from a port below the
			// ephemeral range.
			c := topo.HTTPClient()
			c.Timeout = 60 * time.Second
			resp, err := c.Get(fmt.Sprintf("http://%s/peer", topo.VIP))
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			f := strings.Fields(string(body))
			require.Len(t, f, 2, "%q", body)
			peer, err := netip.ParseAddrPort(f[1])
			require.NoError(t, err)
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
