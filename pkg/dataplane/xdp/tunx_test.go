package xdp

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Tunnels across families (issue 13), as IPVS wraps a packet of the
// service's family for a real of the other (ip_vs_prepare_tunneled_skb):
// an IPv4 client's packet behind an outer IPv6 header for an IPv6 real
// (next header 4, GUE proto_ctype 4, GRE 0x0800; traffic class the TOS,
// hop limit the TTL), an IPv6 client's behind an outer IPv4 header for an
// IPv4 real (protocol 41, GUE 41, GRE 0x86dd; TOS the traffic class, TTL
// the hop limit, DF clear as IPVS leaves it for an IPv6 packet), each
// whole and unchanged; what would not fit the path once wrapped gets the
// client's family's error (fragmentation needed with DF, Packet Too Big)
// with the MTU less the outer headers. Decoded by gopacket, the outer
// IPv4 header's checksum and the ICMP ones recomputed.
func TestTunnelAcrossFamilies(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	hop4 := func(i, mtu int) NextHop {
		return NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC, Src: tunSrc, MTU: mtu}
	}
	hop6 := func(i, mtu int) NextHop {
		return NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC, Src: tunSrc6, MTU: mtu}
	}
	res := staticResolver{real6(3): hop6(3, 1500), real6(4): hop6(4, 1500), real6(5): hop6(5, 1500), real6(6): hop6(6, 1300),
		realAddr(3): hop4(3, 1500), realAddr(4): hop4(4, 1500), realAddr(5): hop4(5, 1500), realAddr(6): hop4(6, 1300)}
	x := openTest(t, ns, res)
	tuns := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}, {}}
	var svcs []dataplane.Service
	for i, tun := range tuns {
		port := uint16(80 + i)
		svcs = append(svcs,
			dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: port, Protocol: lvs.TCP}, Scheduler: "rr",
				Reals: []dataplane.Real{{Addr: real6(3 + i), Port: port, Weight: 1, Forward: lvs.TUN, Tunnel: tun}}},
			dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: port, Protocol: lvs.TCP}, Scheduler: "rr",
				Reals: []dataplane.Real{{Addr: realAddr(3 + i), Port: port, Weight: 1, Forward: lvs.TUN, Tunnel: tun}}})
	}
	apply(t, ns, x, svcs...)

	// IPv4 in IPv6.
	v4 := func(sport, dport uint16, payload int, df bool) []byte {
		f := syn(sport)
		f.DstPort, f.TTL, f.TOS, f.Payload = dport, 57, 0x28, make([]byte, payload)
		if df {
			f.FragOff = 0x4000
		}
		return f.Bytes()
	}
	for i, tc := range []struct {
		name string
		next layers.IPProtocol
		gue  []byte
		gre  bool
	}{
		{"IPv4 in IPv6 (ipip)", layers.IPProtocolIPv4, nil, false},
		{"IPv4 in IPv6 by gue", layers.IPProtocolUDP, []byte{0, 4, 0, 0}, false},
		{"IPv4 in IPv6 by gre", layers.IPProtocolGRE, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := v4(uint16(5000+i), uint16(80+i), 100, true)
			v, out := run(t, ns, x, in)
			require.EqualValues(t, xdpTX, v)
			d := decodeTunnel6(t, out)
			assert.Equal(t, net.HardwareAddr(realMAC(3+i)), d.eth.DstMAC)
			assert.Equal(t, tc.next, d.outer.NextHeader)
			assert.Equal(t, tunSrc6.AsSlice(), []byte(d.outer.SrcIP), "outer source: the director's IPv6 address toward the real")
			assert.Equal(t, real6(3+i).AsSlice(), []byte(d.outer.DstIP))
			assert.EqualValues(t, 57, d.outer.HopLimit, "hop limit: the TTL")
			assert.EqualValues(t, 0x28, d.outer.TrafficClass, "traffic class: the TOS")
			assert.Zero(t, d.outer.FlowLabel)
			assert.Equal(t, in[14:], d.inner, "the client's IPv4 packet, byte for byte")
			if tc.gue != nil {
				assert.EqualValues(t, 6080, d.udp.DstPort)
				assert.Zero(t, d.udp.Checksum)
				assert.Equal(t, tc.gue, d.gue, "GUE proto_ctype 4 (IPv4)")
			}
			if tc.gre {
				assert.Equal(t, layers.EthernetTypeIPv4, d.gre.Protocol)
			}
		})
	}
	t.Run("IPv4 in IPv6, too big with DF: fragmentation needed, the MTU less 40", func(t *testing.T) {
		v, out := run(t, ns, x, v4(5010, 83, 1300, true))
		require.EqualValues(t, xdpTX, v)
		d := decode(t, out)
		require.NotNil(t, d.icmp)
		assert.Equal(t, layers.CreateICMPv4TypeCode(3, 4), d.icmp.TypeCode)
		ip := ipOf(out)
		assert.Zero(t, testutil.Checksum(ip[20:int(binary.BigEndian.Uint16(ip[2:]))], 0), "ICMP checksum")
		assert.EqualValues(t, 1300-40, binary.BigEndian.Uint16(ip[26:]))
		assert.Equal(t, client, ip4Of(d.ip.DstIP))
	})
	t.Run("IPv4 in IPv6, too big without DF: dropped and counted", func(t *testing.T) {
		before := reasons(t, x)
		v, _ := run(t, ns, x, v4(5011, 83, 1300, false))
		assert.EqualValues(t, xdpDrop, v)
		assert.EqualValues(t, 1, reasons(t, x)["tun_too_big"]-before["tun_too_big"])
	})

	// IPv6 in IPv4.
	for i, tc := range []struct {
		name  string
		proto layers.IPProtocol
		gue   []byte
		gre   bool
	}{
		{"IPv6 in IPv4 (sit)", layers.IPProtocolIPv6, nil, false},
		{"IPv6 in IPv4 by gue", layers.IPProtocolUDP, []byte{0, 41, 0, 0}, false},
		{"IPv6 in IPv4 by gre", layers.IPProtocolGRE, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tun6Frame(t, layers.IPProtocolTCP, uint16(6000+i), uint16(80+i), 100)
			v, out := run(t, ns, x, in)
			require.EqualValues(t, xdpTX, v)
			d := decodeTunnel(t, out)
			assert.Equal(t, net.HardwareAddr(realMAC(3+i)), d.eth.DstMAC)
			assert.Equal(t, tc.proto, d.outer.Protocol)
			assert.Equal(t, tunSrc, ip4Of(d.outer.SrcIP), "outer source: the director's IPv4 address toward the real")
			assert.Equal(t, realAddr(3+i), ip4Of(d.outer.DstIP))
			assert.EqualValues(t, 57, d.outer.TTL, "TTL: the hop limit")
			assert.EqualValues(t, 0x28, d.outer.TOS, "TOS: the traffic class")
			assert.Zero(t, d.outer.Flags&layers.IPv4DontFragment, "DF clear, as IPVS sends an IPv6 packet")
			assert.Equal(t, in[14:], d.inner, "the client's IPv6 packet, byte for byte")
			if tc.gue != nil {
				assert.EqualValues(t, 6080, d.udp.DstPort)
				assert.Zero(t, d.udp.Checksum)
				assert.Equal(t, tc.gue, d.gue, "GUE proto_ctype 41 (IPv6)")
			}
			if tc.gre {
				assert.Equal(t, layers.EthernetTypeIPv6, d.gre.Protocol)
			}
		})
	}
	t.Run("IPv6 in IPv4, too big: Packet Too Big, the MTU less 20", func(t *testing.T) {
		v, out := run(t, ns, x, tun6Frame(t, layers.IPProtocolTCP, 6010, 83, 1300))
		require.EqualValues(t, xdpTX, v)
		pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
		icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		require.True(t, ok, "%v", pkt)
		assert.Equal(t, layers.CreateICMPv6TypeCode(2, 0), icmp.TypeCode)
		assert.EqualValues(t, 1300-20, binary.BigEndian.Uint32(out[14+40+4:]))
		assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
	})
}
