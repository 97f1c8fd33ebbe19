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

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// tunSrc6 is the director's address toward the IPv6 TUN reals in these
// tests.
var tunSrc6 = netip.MustParseAddr("2001:db8::1")

// tun6Frame is an IPv6 frame from the client to vip6:dport built by
// gopacket: TCP (a SYN, with payload bytes if asked) or UDP, with
// traffic class 0x28, flow label 0x12345 and hop limit 57, so that what
// the tunnel takes from it shows.
func tun6Frame(t *testing.T, proto layers.IPProtocol, sport, dport uint16, payload int) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, TrafficClass: 0x28, FlowLabel: 0x12345, HopLimit: 57, NextHeader: proto,
		SrcIP: net.IP(client6.AsSlice()), DstIP: net.IP(vip6.AsSlice())}
	var l4 gopacket.SerializableLayer
	if proto == layers.IPProtocolUDP {
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
		l4 = udp
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Seq: 1000, Window: 4096}
		require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
		l4 = tcp
	}
	eth := &layers.Ethernet{SrcMAC: clientMC, DstMAC: dirMAC, EthernetType: layers.EthernetTypeIPv6}
	b := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(b, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, l4, gopacket.Payload(bytes.Repeat([]byte{0xab}, payload))))
	return b.Bytes()
}

// decodedTunnel6 is an IPv6 TUN frame taken apart by gopacket (GUE's
// header, which gopacket does not know, by its draft's layout).
type decodedTunnel6 struct {
	eth   *layers.Ethernet
	outer *layers.IPv6
	udp   *layers.UDP
	gre   *layers.GRE
	gue   []byte
	inner []byte // the encapsulated IPv6 packet
}

func decodeTunnel6(t *testing.T, frame []byte) decodedTunnel6 {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var d decodedTunnel6
	var ok bool
	d.eth, ok = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	require.True(t, ok, "no Ethernet layer: %v", pkt)
	require.Equal(t, layers.EthernetTypeIPv6, d.eth.EthernetType)
	d.outer, ok = pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	require.True(t, ok, "no IPv6 layer: %v", pkt)
	assert.Len(t, d.outer.Contents, 40, "the outer header has no extension headers")
	assert.Equal(t, len(d.outer.Payload), int(d.outer.Length), "outer payload length")
	switch d.outer.NextHeader {
	case layers.IPProtocolIPv6, layers.IPProtocolIPv4: // (IPv4 in IPv6: a tunnel across families)
		d.inner = d.outer.Payload
	case layers.IPProtocolUDP:
		d.udp = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		require.GreaterOrEqual(t, len(d.udp.Payload), 4)
		d.gue, d.inner = d.udp.Payload[:4], d.udp.Payload[4:]
	case layers.IPProtocolGRE:
		d.gre = pkt.Layer(layers.LayerTypeGRE).(*layers.GRE)
		d.inner = d.gre.Payload
	default:
		t.Fatalf("outer next header %v", d.outer.NextHeader)
	}
	return d
}

// IPv6 TUN in XDP, as ip_vs_tunnel_xmit_v6 sends it: the client's IPv6
// packet, whole and unchanged, behind an outer IPv6 header from the
// director's address toward the real (traffic class and hop limit the
// inner's, flow label 0), next header 41 (ip6ip6), or UDP with GUE
// (proto_ctype 41, UDP checksum 0) or GRE (0x86dd); what would not fit
// the path once wrapped gets ICMPv6 Packet Too Big from the VIP with the
// MTU less the tunnel's headers, quoting the packet's first 1232 bytes.
// Every output is decoded by gopacket, the ICMPv6 checksum recomputed.
func TestIPv6TunnelGoldenPackets(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	const mtu = 1500
	hop := func(i, mtu int) NextHop {
		return NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC, Src: tunSrc6, MTU: mtu}
	}
	res := staticResolver{real6(3): hop(3, mtu), real6(4): hop(4, mtu), real6(5): hop(5, mtu), real6(6): hop(6, 1300)}
	x := openTest(t, ns, res)
	svc := func(port uint16, proto lvs.Protocol, real int, tun lvs.Tunnel) dataplane.Service {
		return dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: port, Protocol: proto}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: real6(real), Port: port, Weight: 1, Forward: lvs.TUN, Tunnel: tun}}}
	}
	apply(t, ns, x,
		svc(80, lvs.TCP, 3, lvs.Tunnel{}),
		svc(53, lvs.UDP, 3, lvs.Tunnel{}),
		svc(81, lvs.TCP, 4, lvs.Tunnel{Type: lvs.TunGUE, Port: 6080}),
		svc(82, lvs.TCP, 5, lvs.Tunnel{Type: lvs.TunGRE}),
		svc(83, lvs.TCP, 6, lvs.Tunnel{}), // a path of 1300: 1260 once wrapped, below IPv6's minimum
	)

	for _, tc := range []struct {
		name  string
		in    []byte
		real  int
		next  layers.IPProtocol
		check func(t *testing.T, d decodedTunnel6)
	}{
		{"TCP by ip6ip6", tun6Frame(t, layers.IPProtocolTCP, 3000, 80, 0), 3, layers.IPProtocolIPv6, nil},
		{"UDP by ip6ip6", tun6Frame(t, layers.IPProtocolUDP, 3001, 53, 5), 3, layers.IPProtocolIPv6, nil},
		{"TCP by gue to port 6080", tun6Frame(t, layers.IPProtocolTCP, 3002, 81, 0), 4, layers.IPProtocolUDP, func(t *testing.T, d decodedTunnel6) {
			assert.EqualValues(t, 6080, d.udp.DstPort)
			assert.GreaterOrEqual(t, int(d.udp.SrcPort), 32768)
			assert.LessOrEqual(t, int(d.udp.SrcPort), 60999)
			assert.Equal(t, len(d.udp.Contents)+len(d.udp.Payload), int(d.udp.Length))
			assert.Zero(t, d.udp.Checksum, "nocsum: no UDP checksum, as IPVS sends by default (RFC 6935)")
			assert.Equal(t, []byte{0, 41, 0, 0}, d.gue, "GUE version 0, no flags, proto_ctype 41 (IPv6)")
		}},
		{"TCP by gre", tun6Frame(t, layers.IPProtocolTCP, 3003, 82, 0), 5, layers.IPProtocolGRE, func(t *testing.T, d decodedTunnel6) {
			assert.Equal(t, layers.EthernetTypeIPv6, d.gre.Protocol)
			assert.False(t, d.gre.ChecksumPresent || d.gre.KeyPresent || d.gre.SeqPresent || d.gre.RoutingPresent)
			assert.Zero(t, d.gre.Version)
		}},
		{"small enough for a path below 1280 once wrapped: forwarded", tun6Frame(t, layers.IPProtocolTCP, 3004, 83, 0), 6, layers.IPProtocolIPv6, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verdict, out := run(t, ns, x, tc.in)
			require.EqualValues(t, xdpTX, verdict)
			d := decodeTunnel6(t, out)
			assert.Equal(t, net.HardwareAddr(realMAC(tc.real)), d.eth.DstMAC)
			assert.Equal(t, srcMAC, d.eth.SrcMAC)
			o := d.outer
			assert.Equal(t, tc.next, o.NextHeader)
			assert.Equal(t, tunSrc6.AsSlice(), []byte(o.SrcIP), "outer source: the director's address toward the real")
			assert.Equal(t, real6(tc.real).AsSlice(), []byte(o.DstIP))
			assert.EqualValues(t, 57, o.HopLimit, "outer hop limit: the inner's")
			assert.EqualValues(t, 0x28, o.TrafficClass, "outer traffic class: the inner's")
			assert.Zero(t, o.FlowLabel, "outer flow label 0")
			assert.Equal(t, tc.in[14:], d.inner, "the client's IPv6 packet, byte for byte")
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}

	t.Run("ICMPv6 error about a TUN flow: tunnelled to its real", func(t *testing.T) {
		v, _ := run(t, ns, x, tun6Frame(t, layers.IPProtocolTCP, 3100, 80, 0))
		require.EqualValues(t, xdpTX, v, "the flow")
		in := icmp6Frame(t, netip.MustParseAddr("2001:db8:5::fe"), vip6, 2, 0, 1400, quote6(t, vip6, client6, 80, 3100, 1300))
		verdict, out := run(t, ns, x, in)
		require.EqualValues(t, xdpTX, verdict)
		d := decodeTunnel6(t, out)
		assert.Equal(t, layers.IPProtocolIPv6, d.outer.NextHeader)
		assert.Equal(t, real6(3).AsSlice(), []byte(d.outer.DstIP))
		assert.Equal(t, in[14:], d.inner, "the error, unchanged inside")
	})

	// Too big once wrapped: Packet Too Big with the path's MTU less the
	// tunnel's headers (ensure_mtu_is_adequate; IPv6 has no DF).
	for _, tc := range []struct {
		name     string
		port     uint16
		overhead int
	}{{"ip6ip6", 80, 40}, {"gue", 81, 52}, {"gre", 82, 44}} {
		t.Run("too big for "+tc.name+": ICMPv6 Packet Too Big", func(t *testing.T) {
			in := tun6Frame(t, layers.IPProtocolTCP, 4000+tc.port, tc.port, mtu-40-20-20) // 1480 bytes: fits 1500, not once wrapped
			before := reasons(t, x)
			verdict, out := run(t, ns, x, in)
			require.EqualValues(t, xdpTX, verdict)
			assert.EqualValues(t, 1, reasons(t, x)["tun_frag_needed"]-before["tun_frag_needed"])
			require.Len(t, out, 14+1280, "the frame is cut to IPv6's minimum MTU")
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			assert.Equal(t, clientMC, eth.DstMAC)
			assert.Equal(t, dirMAC, eth.SrcMAC)
			ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			require.True(t, ok, "%v", pkt)
			assert.Equal(t, vip6.AsSlice(), []byte(ip.SrcIP), "from the VIP")
			assert.Equal(t, client6.AsSlice(), []byte(ip.DstIP), "to the client")
			assert.Equal(t, layers.IPProtocolICMPv6, ip.NextHeader)
			assert.EqualValues(t, 64, ip.HopLimit)
			assert.EqualValues(t, 1240, ip.Length)
			icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			require.True(t, ok, "%v", pkt)
			assert.Equal(t, layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0), icmp.TypeCode)
			assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
			// RFC 4443 3.2: the MTU, then as much of the packet as fits.
			assert.EqualValues(t, mtu-tc.overhead, binary.BigEndian.Uint32(out[14+40+4:]))
			assert.Equal(t, in[14:14+1232], out[14+48:], "the quote: the packet's first 1232 bytes")
		})
	}
	t.Run("too big for a path below 1280 once wrapped: dropped and counted", func(t *testing.T) {
		before := reasons(t, x)
		verdict, _ := run(t, ns, x, tun6Frame(t, layers.IPProtocolTCP, 4200, 83, 1300))
		assert.EqualValues(t, xdpDrop, verdict)
		assert.EqualValues(t, 1, reasons(t, x)["tun_too_big"]-before["tun_too_big"])
	})
	t.Run("exactly the MTU once wrapped: forwarded", func(t *testing.T) {
		in := tun6Frame(t, layers.IPProtocolTCP, 4300, 80, mtu-40-40-20) // 1460 bytes, 1500 wrapped
		verdict, out := run(t, ns, x, in)
		require.EqualValues(t, xdpTX, verdict)
		d := decodeTunnel6(t, out)
		assert.Equal(t, mtu, len(d.outer.Contents)+len(d.outer.Payload))
		assert.Equal(t, in[14:], d.inner)
	})

	// The flows are listed with their IPv6 reals.
	conns, err := x.Conns()
	require.NoError(t, err)
	require.NotEmpty(t, conns)
	for _, c := range conns {
		assert.Equal(t, client6, c.Client.Addr())
		assert.Contains(t, []netip.Addr{real6(3), real6(4), real6(5), real6(6)}, c.Real.Addr(), "%v", c)
	}
}
