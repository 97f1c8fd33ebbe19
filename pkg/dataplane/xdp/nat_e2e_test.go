package xdp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Real HTTP and UDP through NAT, with port mapping (VIP:80 -> real:8080,
// VIP:53 -> real:5353), to reals whose default route is the director.
func TestNATEndToEnd(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			require.NoError(t, topo.ServeHTTP(8080))
			require.NoError(t, topo.ServeUDP(5353))
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode,
				url: fmt.Sprintf("http://%s:80/", topo.VIP), svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, log: quiet}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			var web, dns dataplane.Service
			web = dataplane.Service{ServiceKey: r.svc, Scheduler: "rr"}
			dns = dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: topo.VIP, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr"}
			for _, a := range topo.RealAddrs {
				web.Reals = append(web.Reals, dataplane.Real{Addr: a, Port: 8080, Weight: 1, Forward: lvs.NAT})
				dns.Reals = append(dns.Reals, dataplane.Real{Addr: a, Port: 5353, Weight: 1, Forward: lvs.NAT})
			}
			r.apply(t, web, dns)
			r.waitResolved(t)

			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, r.get(t, 4))

			// A large download arrives whole.
			const size = 8 << 20
			c := topo.HTTPClient()
			c.Timeout = 60 * time.Second
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("http://%s/bytes/%d", topo.VIP, size), nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			got := sha256.New()
			n, err := io.Copy(got, resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.EqualValues(t, size, n)
			want := sha256.New()
			_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), size))
			assert.Equal(t, want.Sum(nil), got.Sum(nil), "body checksum")

			// UDP request/response, a new flow per socket.
			answers := udpAnswers(t, topo, 4)
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r1:q2", "r2:q3"}, answers)

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			var out uint64
			for _, s := range st.Services {
				out += s.OutBytes
			}
			assert.Greater(t, out, uint64(size), "the download counts as the reals' output")
		})
	}
}

// retransSegs is the TCP segments the namespace's stack has retransmitted
// (/proc/net/snmp's Tcp RetransSegs).
func retransSegs(t *testing.T, ns *testutil.NS) int {
	t.Helper()
	out, err := ns.Command("cat", "/proc/net/snmp").Output()
	require.NoError(t, err)
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RetransSegs" {
				v, err := strconv.Atoi(f[i])
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatal("no Tcp RetransSegs in /proc/net/snmp")
	return 0
}

// A NAT director that has never met the client at the Ethernet layer (a
// new VRRP master, a sync backup, the first reply after the neighbour
// entry expired): the real's replies still reach the client at once. XDP
// cannot wait for ARP; the kernel's forwarding would drop the translated
// reply (its source, the VIP, is local); xlb_tc_neigh hands it to the
// kernel's neighbour resolution, which queues it until ARP answers. The
// real retransmits nothing: every first reply got through.
func TestNATReplyWaitsForARP(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			require.NoError(t, topo.ServeHTTP(8080))
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode,
				url: fmt.Sprintf("http://%s:80/", topo.VIP), svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}, log: quiet}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			r.apply(t, dataplane.Service{ServiceKey: r.svc, Scheduler: "rr",
				Reals: []dataplane.Real{{Addr: topo.RealAddrs[0], Port: 8080, Weight: 1, Forward: lvs.NAT}}})
			r.waitResolved(t)

			// The VIP is the director's address, as VRRP makes it. The
			// client knows the director's MAC without asking (so the
			// director does not learn the client's from an ARP
			// request), and the director has no entry for the client.
			require.NoError(t, topo.Director.IP("addr", "add", topo.VIP.String()+"/32", "dev", "eth0"))
			var dirMAC net.HardwareAddr
			require.NoError(t, topo.Director.Do(func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err == nil {
					dirMAC = ifi.HardwareAddr
				}
				return err
			}))
			require.NoError(t, topo.Client.IP("neigh", "replace", "10.77.5.2", "lladdr", dirMAC.String(), "dev", "eth0", "nud", "permanent"))
			_ = topo.Director.IP("neigh", "del", topo.ClientAddr.String(), "dev", "eth0")

			before := reasons(t, r.x)
			retrans := retransSegs(t, topo.Reals[0])
			assert.Equal(t, []string{"r1", "r1", "r1"}, r.get(t, 3))
			after := reasons(t, r.x)
			assert.Positive(t, after["nat_reply_kernel"]-before["nat_reply_kernel"], "replies went through the kernel's neighbour resolution")
			assert.Zero(t, retransSegs(t, topo.Reals[0])-retrans, "the real retransmitted: a reply was lost waiting for ARP")
			neigh, err := topo.Director.Command("ip", "neigh", "show", topo.ClientAddr.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(neigh), "lladdr", "the director resolved the client")
		})
	}
}

// udpAnswers sends n datagrams to VIP:53 from the client, each from a
// socket of its own (a new flow), and returns the answers, each of which
// must come from VIP:53, as the client asked.
func udpAnswers(t *testing.T, topo *testutil.DR, n int) []string {
	t.Helper()
	return udpAnswersFrom(t, topo, topo.VIP, n)
}

// udpAnswersFrom is udpAnswers for a VIP of either family.
func udpAnswersFrom(t *testing.T, topo *testutil.DR, vip netip.Addr, n int) []string {
	t.Helper()
	var answers []string
	to := netip.AddrPortFrom(vip, 53).String()
	for i := range n {
		conn, err := topo.Client.DialContext(context.Background(), "udp", to)
		require.NoError(t, err)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write([]byte(fmt.Sprintf("q%d", i)))
		require.NoError(t, err)
		buf := make([]byte, 64)
		m, err := conn.Read(buf)
		require.NoError(t, err, "UDP answer %d", i)
		answers = append(answers, string(buf[:m]))
		assert.Equal(t, to, conn.RemoteAddr().String())
		conn.Close()
	}
	return answers
}
