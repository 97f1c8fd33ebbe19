package xdp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// tunSrc is the director's address toward the TUN reals in these tests.
var tunSrc = netip.MustParseAddr("10.0.0.1")

// decodedTunnel is a TUN frame taken apart by gopacket (and, for GUE,
// whose header gopacket does not know, by hand from RFC draft's layout).
type decodedTunnel struct {
	eth   *layers.Ethernet
	dot1q *layers.Dot1Q
	outer *layers.IPv4
	udp   *layers.UDP
	gre   *layers.GRE
	gue   []byte // the 4-byte GUE header
	inner []byte // the encapsulated IP packet
}

func decodeTunnel(t *testing.T, frame []byte) decodedTunnel {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var d decodedTunnel
	var ok bool
	d.eth, ok = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	require.True(t, ok, "no Ethernet layer: %v", pkt)
	if l := pkt.Layer(layers.LayerTypeDot1Q); l != nil {
		d.dot1q = l.(*layers.Dot1Q)
	}
	// The first IPv4 layer is the outer header.
	for _, l := range pkt.Layers() {
		if ip, isIP := l.(*layers.IPv4); isIP {
			d.outer = ip
			break
		}
	}
	require.NotNil(t, d.outer, "no IPv4 layer: %v", pkt)
	// The outer header's checksum, computed here (RFC 1071) over the
	// bytes on the wire.
	hdr := d.outer.Contents
	require.Len(t, hdr, 20, "the outer header has no options")
	assert.EqualValues(t, 0, testutil.Checksum(hdr, 0), "outer IPv4 header checksum")
	assert.Equal(t, len(d.outer.Contents)+len(d.outer.Payload), int(d.outer.Length), "outer total length")
	switch d.outer.Protocol {
	case layers.IPProtocolIPv4, layers.IPProtocolIPv6: // (IPv6 in IPv4: a tunnel across families)
		d.inner = d.outer.Payload
	case layers.IPProtocolUDP:
		d.udp = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		require.GreaterOrEqual(t, len(d.udp.Payload), 4)
		d.gue, d.inner = d.udp.Payload[:4], d.udp.Payload[4:]
	case layers.IPProtocolGRE:
		d.gre = pkt.Layer(layers.LayerTypeGRE).(*layers.GRE)
		d.inner = d.gre.Payload
	default:
		t.Fatalf("outer protocol %v", d.outer.Protocol)
	}
	return d
}

func TestTunnelGoldenPackets(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	const mtu = 1500
	hop := func(i int) NextHop {
		return NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC, Src: tunSrc, MTU: mtu}
	}
	res := staticResolver{realAddr(3): hop(3), realAddr(4): hop(4), realAddr(5): hop(5)}
	x := openTest(t, ns, res)
	svc := func(port uint16, proto lvs.Protocol, real int, tun lvs.Tunnel) dataplane.Service {
		return dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: port, Protocol: proto}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(real), Port: port, Weight: 1, Forward: lvs.TUN, Tunnel: tun}}}
	}
	apply(t, ns, x,
		svc(80, lvs.TCP, 3, lvs.Tunnel{}),
		svc(53, lvs.UDP, 3, lvs.Tunnel{}),
		svc(81, lvs.TCP, 4, lvs.Tunnel{Type: lvs.TunGUE, Port: 6080}),
		svc(82, lvs.TCP, 5, lvs.Tunnel{Type: lvs.TunGRE}),
	)

	frame := func(port uint16, sport uint16) testutil.Frame {
		f := syn(sport)
		f.DstPort = port
		f.TTL, f.TOS, f.FragOff = 57, 0x28, 0x4000 // DF, as Linux sends TCP
		return f
	}
	udp := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5353, DstPort: 53,
		Payload: []byte("query"), TTL: 63}
	tagged := frame(80, 3001)
	tagged.VLAN = 42

	for _, tc := range []struct {
		name  string
		in    testutil.Frame
		real  int
		proto layers.IPProtocol
		check func(t *testing.T, d decodedTunnel)
	}{
		{"TCP by ipip", frame(80, 3000), 3, layers.IPProtocolIPv4, nil},
		{"802.1Q-tagged TCP by ipip: the tag stays", tagged, 3, layers.IPProtocolIPv4, func(t *testing.T, d decodedTunnel) {
			require.NotNil(t, d.dot1q)
			assert.EqualValues(t, 42, d.dot1q.VLANIdentifier)
		}},
		{"UDP by ipip, DF clear", udp, 3, layers.IPProtocolIPv4, nil},
		{"TCP by gue to port 6080", frame(81, 3002), 4, layers.IPProtocolUDP, func(t *testing.T, d decodedTunnel) {
			assert.EqualValues(t, 6080, d.udp.DstPort)
			assert.GreaterOrEqual(t, int(d.udp.SrcPort), 32768)
			assert.LessOrEqual(t, int(d.udp.SrcPort), 60999)
			assert.Equal(t, len(d.udp.Contents)+len(d.udp.Payload), int(d.udp.Length))
			assert.Zero(t, d.udp.Checksum, "nocsum: no UDP checksum, as IPVS sends by default")
			// GUE version 0, no flags, proto_ctype 4 (IPIP).
			assert.Equal(t, []byte{0, 4, 0, 0}, d.gue)
		}},
		{"TCP by gre", frame(82, 3003), 5, layers.IPProtocolGRE, func(t *testing.T, d decodedTunnel) {
			assert.Equal(t, layers.EthernetTypeIPv4, d.gre.Protocol)
			assert.False(t, d.gre.ChecksumPresent || d.gre.KeyPresent || d.gre.SeqPresent || d.gre.RoutingPresent)
			assert.Zero(t, d.gre.Version)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in.Bytes()
			l2 := 14
			if tc.in.VLAN != 0 {
				l2 = 18
			}
			verdict, out := run(t, ns, x, in)
			require.EqualValues(t, xdpTX, verdict)
			d := decodeTunnel(t, out)
			assert.Equal(t, net.HardwareAddr(realMAC(tc.real)), d.eth.DstMAC)
			assert.Equal(t, srcMAC, d.eth.SrcMAC)
			o := d.outer
			assert.Equal(t, tc.proto, o.Protocol)
			assert.Equal(t, tunSrc.AsSlice(), []byte(o.SrcIP.To4()), "outer source: the director's address toward the real")
			assert.Equal(t, realAddr(tc.real).AsSlice(), []byte(o.DstIP.To4()))
			// ip_vs_prepare_tunneled_skb: TTL, TOS and DF from the inner header.
			assert.Equal(t, in[l2+8], o.TTL, "outer TTL")
			assert.Equal(t, in[l2+1], o.TOS, "outer TOS")
			assert.Equal(t, in[l2+6]&0x40 != 0, o.Flags&layers.IPv4DontFragment != 0, "outer DF")
			assert.Zero(t, o.FragOffset)
			// The client's IP packet, byte for byte.
			assert.Equal(t, in[l2:], d.inner)
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}

	// An ICMP error about a TUN flow (a router's fragmentation needed
	// about the real's answer, VIP:80 -> client:3100) goes to the flow's
	// real through its tunnel, as IPVS tunnels it (ip_vs_in_icmp).
	t.Run("ICMP error about a TUN flow: tunnelled to its real", func(t *testing.T) {
		v, _ := run(t, ns, x, frame(80, 3100).Bytes())
		require.EqualValues(t, xdpTX, v, "the flow")
		seen := testutil.Frame{SrcMAC: dirMAC, DstMAC: clientMC, Src: vip, Dst: client, Proto: 6, SrcPort: 80, DstPort: 3100,
			TCPFlags: testutil.TCPAck, Payload: make([]byte, 1400)}
		icmp := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: netip.MustParseAddr("192.0.2.254"), Dst: vip, Proto: 1,
			Payload: icmpError(3, 4, 1300, ipOf(seen.Bytes()))}
		in := icmp.Bytes()
		verdict, out := run(t, ns, x, in)
		require.EqualValues(t, xdpTX, verdict)
		d := decodeTunnel(t, out)
		assert.Equal(t, layers.IPProtocolIPv4, d.outer.Protocol)
		assert.Equal(t, realAddr(3).AsSlice(), []byte(d.outer.DstIP.To4()))
		assert.Equal(t, in[14:], d.inner, "the error, unchanged inside")
	})

	// A packet that does not fit once wrapped: with DF, ICMP fragmentation
	// needed back to the client from the VIP with the MTU less the
	// tunnel's overhead (ensure_mtu_is_adequate); without, dropped.
	big := func(port, sport uint16, df bool) testutil.Frame {
		f := frame(port, sport)
		if !df {
			f.FragOff = 0
		}
		f.Payload = bytes.Repeat([]byte{0xab}, mtu-20-20-10) // 1490 bytes: fits 1500, not once wrapped
		return f
	}
	for _, tc := range []struct {
		name     string
		port     uint16
		overhead int
	}{{"ipip", 80, 20}, {"gue", 81, 32}, {"gre", 82, 24}} {
		t.Run("too big for "+tc.name+", DF: ICMP fragmentation needed", func(t *testing.T) {
			f := big(tc.port, 4000+tc.port, true)
			in := f.Bytes()
			before := reasons(t, x)
			verdict, out := run(t, ns, x, in)
			require.EqualValues(t, xdpTX, verdict)
			assert.EqualValues(t, 1, reasons(t, x)["tun_frag_needed"]-before["tun_frag_needed"])
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			assert.Equal(t, clientMC, eth.DstMAC)
			assert.Equal(t, dirMAC, eth.SrcMAC)
			ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			require.True(t, ok)
			assert.Equal(t, vip.AsSlice(), []byte(ip.SrcIP.To4()))
			assert.Equal(t, client.AsSlice(), []byte(ip.DstIP.To4()))
			assert.EqualValues(t, 0, testutil.Checksum(ip.Contents, 0), "IPv4 header checksum")
			assert.Equal(t, len(ip.Contents)+len(ip.Payload), int(ip.Length))
			icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			require.True(t, ok, "%v", pkt)
			assert.Equal(t, layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), icmp.TypeCode)
			assert.EqualValues(t, 0, testutil.Checksum(append(append([]byte{}, icmp.Contents...), icmp.Payload...), 0), "ICMP checksum")
			// RFC 1191: the next-hop MTU in the low 16 bits of the second word.
			assert.EqualValues(t, mtu-tc.overhead, icmp.Seq)
			// The quote: the client's IP header and its first 8 bytes.
			assert.Equal(t, in[14:14+28], icmp.Payload)
			assert.Len(t, out, 14+20+8+28, "the frame is cut to the reply")
		})
	}
	t.Run("too big, DF clear: dropped and counted (XDP cannot fragment)", func(t *testing.T) {
		before := reasons(t, x)
		verdict, _ := run(t, ns, x, big(80, 4100, false).Bytes())
		assert.EqualValues(t, xdpDrop, verdict)
		assert.EqualValues(t, 1, reasons(t, x)["tun_too_big"]-before["tun_too_big"])
	})
	t.Run("exactly the MTU once wrapped: forwarded", func(t *testing.T) {
		f := big(80, 4200, true)
		f.Payload = f.Payload[:mtu-20-20-20] // 1480-byte packet, 1500 wrapped
		verdict, out := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpTX, verdict)
		assert.EqualValues(t, mtu, binary.BigEndian.Uint16(out[14+2:]))
	})
}
