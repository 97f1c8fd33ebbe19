package xdp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

var (
	vip      = netip.MustParseAddr("10.0.0.100")
	client   = netip.MustParseAddr("192.0.2.7")
	clientMC = net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x01}
	dirMAC   = net.HardwareAddr{0x02, 0xd1, 0, 0, 0, 0x02}
)

func realAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}) }

func syn(sport uint16) testutil.Frame {
	return testutil.Frame{
		SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip,
		Proto: 6, SrcPort: sport, DstPort: 80, TCPFlags: testutil.TCPSyn,
	}
}

// rewritten is what DR makes of a frame: new MACs, the rest unchanged.
func rewritten(in []byte, dst, src net.HardwareAddr) []byte {
	out := append([]byte(nil), in...)
	copy(out[0:6], dst)
	copy(out[6:12], src)
	return out
}

func TestGoldenPackets(t *testing.T) {
	requireRoot(t)
	ns, dummy := testNS(t)
	res := staticResolver{
		realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC},     // on the ingress link
		realAddr(2): {Ifindex: dummy, MAC: realMAC(2), SrcMAC: srcMAC}, // behind another interface
	}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 53, Weight: 1, Forward: lvs.DR}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 8080, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(2), Port: 8080, Weight: 1, Forward: lvs.DR}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 9000, Protocol: lvs.TCP}, Scheduler: "wrr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 9000, Weight: 0, Forward: lvs.DR}}},
	)

	forwarded := func(f testutil.Frame) []byte { return rewritten(f.Bytes(), realMAC(1), srcMAC) }
	tagged := syn(1001)
	tagged.VLAN = 42
	withOpts := syn(1002)
	withOpts.IPOptions = []byte{0x94, 0x04, 0, 0} // router alert
	udp := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5353, DstPort: 53, Payload: []byte("query")}
	otherHost := syn(1003)
	otherHost.Dst = netip.MustParseAddr("10.0.0.200")
	otherPort := syn(1004)
	otherPort.DstPort = 443
	firstFrag := syn(1005)
	firstFrag.FragOff = 0x2000
	laterFrag := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 6, FragOff: 0x0010, Payload: make([]byte, 40)}
	fragElsewhere := laterFrag
	fragElsewhere.Dst = netip.MustParseAddr("10.0.0.200")
	icmp := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 1, Payload: []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0}}
	ack := syn(1006)
	ack.TCPFlags = testutil.TCPAck
	synRst := syn(1007)
	synRst.TCPFlags = testutil.TCPSyn | testutil.TCPRst
	redirect := syn(1008)
	redirect.DstPort = 8080
	quiesced := syn(1009)
	quiesced.DstPort = 9000
	arp := append(append(append([]byte{}, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}...), clientMC...), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	truncTCP := syn(1010).Bytes()[:14+20+10]
	truncTCPElsewhere := otherHost.Bytes()[:14+20+10]
	truncIP := syn(1011).Bytes()[:14+12]

	for _, tc := range []struct {
		name    string
		in      []byte
		verdict uint32
		out     []byte // nil: output must equal input
		stat    string // reason counter that must go up by one
	}{
		{"TCP SYN to a VIP: MACs rewritten, IP packet unchanged, sent back out", syn(1000).Bytes(), xdpTX, forwarded(syn(1000)), ""},
		{"802.1Q-tagged SYN to a VIP: forwarded with its tag", tagged.Bytes(), xdpTX, forwarded(tagged), ""},
		{"IPv4 options: parsed past, forwarded untouched", withOpts.Bytes(), xdpTX, forwarded(withOpts), ""},
		{"UDP to a VIP service: forwarded", udp.Bytes(), xdpTX, forwarded(udp), ""},
		{"real behind another interface: redirected", redirect.Bytes(), xdpRedirect, rewritten(redirect.Bytes(), realMAC(2), srcMAC), ""},
		{"not a VIP: passed byte-identical", otherHost.Bytes(), xdpPass, nil, ""},
		{"VIP, port with no service: passed byte-identical", otherPort.Bytes(), xdpPass, nil, ""},
		{"ARP: passed byte-identical", arp, xdpPass, nil, ""},
		{"ICMP to a VIP: passed (not a service)", icmp.Bytes(), xdpPass, nil, ""},
		{"first fragment to a VIP: dropped", firstFrag.Bytes(), xdpDrop, nil, "fragment"},
		{"later fragment to a VIP: dropped", laterFrag.Bytes(), xdpDrop, nil, "fragment"},
		{"fragment to another host: passed", fragElsewhere.Bytes(), xdpPass, nil, ""},
		{"TCP header cut short, to a VIP: dropped", truncTCP, xdpDrop, nil, "truncated"},
		{"TCP header cut short, to another host: passed", truncTCPElsewhere, xdpPass, nil, ""},
		{"IP header cut short: passed", truncIP, xdpPass, nil, ""},
		{"ACK with no flow: passed to the kernel (IPVS schedules SYN only)", ack.Bytes(), xdpPass, nil, "not_syn"},
		{"SYN+RST with no flow: passed", synRst.Bytes(), xdpPass, nil, "not_syn"},
		{"SYN to a service whose only real has weight 0: dropped", quiesced.Bytes(), xdpDrop, nil, "no_dest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reasons(t, x)
			verdict, out := run(t, ns, x, tc.in)
			assert.Equal(t, tc.verdict, verdict)
			want := tc.out
			if want == nil {
				want = tc.in
			}
			assert.Equal(t, want, out)
			after := reasons(t, x)
			for k := range after {
				d := after[k] - before[k]
				if k == tc.stat {
					assert.EqualValues(t, 1, d, "reason %s", k)
				} else {
					assert.Zero(t, d, "reason %s", k)
				}
			}
		})
	}

	t.Run("ACK of an established flow follows it", func(t *testing.T) {
		f := syn(2000)
		v, _ := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
		f.TCPFlags = testutil.TCPAck
		v, out := run(t, ns, x, f.Bytes())
		assert.EqualValues(t, xdpTX, v)
		assert.Equal(t, forwarded(f), out)
	})

	t.Run("counters per service and real", func(t *testing.T) {
		st, err := x.Stats()
		require.NoError(t, err)
		var web dataplane.ServiceStats
		for _, s := range st.Services {
			if s.Port == 80 && s.Protocol == lvs.TCP {
				web = s
			}
		}
		// SYNs 1000, 1001, 1002, 2000 made flows; the ACK of 2000 did not.
		assert.EqualValues(t, 4, web.Conns)
		assert.EqualValues(t, 5, web.Packets)
		assert.Equal(t, web.Counters, web.Reals[0].Counters)
		assert.NotZero(t, web.Bytes)
	})
}

func reasons(t *testing.T, x *Dataplane) map[string]uint64 {
	t.Helper()
	st, err := x.Stats()
	require.NoError(t, err)
	return st.Reasons
}
