package xdp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// A port-0 service is IPVS's catch-all for its VIP (ip_vs_service_find
// looks it up when no service of the packet's port exists): a service of
// the port itself is preferred; any other port goes to the port-0
// service's reals, a NAT real without a port keeping the client's port
// (dest->port ? dest->port : vport), and its persistence templates have
// port 0, so a client keeps its real across ports.
func TestAllPortsService(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.Sysctl("net.ipv4.ip_forward", "1"))
	res := staticResolver{}
	for i := 1; i <= 3; i++ {
		res[realAddr(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
	}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(3), Port: 80, Weight: 1, Forward: lvs.DR}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 0, Protocol: lvs.TCP}, Scheduler: "rr",
			Persistence: time.Minute,
			Reals: []dataplane.Real{
				{Addr: realAddr(1), Port: 0, Weight: 1, Forward: lvs.NAT},
				{Addr: realAddr(2), Port: 0, Weight: 1, Forward: lvs.NAT},
			}},
	)

	// Port 80 has a service of its own.
	in := syn(42000)
	v, out := run(t, ns, x, in.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.EqualValues(t, 3, out[5], "port 80: its own service's real")

	// Port 443: the catch-all; NAT to the real, the port kept.
	in = syn(42001)
	in.DstPort = 443
	v, out = run(t, ns, x, in.Bytes())
	require.EqualValues(t, xdpTX, v)
	first := int(out[5])
	want := in
	want.Dst, want.DstMAC, want.SrcMAC = realAddr(first), realMAC(first), srcMAC
	assert.Equal(t, want.Bytes(), out, "DNAT to the real, destination port 443 unchanged")
	verifyChecksums(t, out)

	// The reply from real:443 goes back as from VIP:443.
	reply := testutil.Frame{SrcMAC: realMAC(first), DstMAC: srcMAC, Src: realAddr(first), Dst: client,
		Proto: 6, SrcPort: 443, DstPort: 42001, TCPFlags: testutil.TCPSyn | testutil.TCPAck}
	v, out = run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v)
	wantReply := reply
	wantReply.Src = vip
	assert.Equal(t, wantReply.Bytes(), out, "SNAT back to VIP:443")

	// The same client on another port: the template (port 0) keeps its
	// real, where rr alone would move on.
	for _, port := range []uint16{8443, 22, 9000} {
		in = syn(42100 + port%100)
		in.DstPort = port
		v, out = run(t, ns, x, in.Bytes())
		require.EqualValues(t, xdpTX, v)
		assert.EqualValues(t, first, out[5], "port %d: persistence across ports", port)
	}
}
