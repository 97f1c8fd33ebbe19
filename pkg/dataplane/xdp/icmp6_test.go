package xdp

import (
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

// quote6 is an IPv6 TCP segment src:sport -> dst:dport with n bytes of
// payload, as an ICMPv6 error quotes it (gopacket's own checksums).
func quote6(t *testing.T, src, dst netip.Addr, sport, dport uint16, n int) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), ACK: true, Seq: 7, Ack: 9, Window: 512}
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	b := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(b, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ip, tcp, gopacket.Payload(make([]byte, n))))
	return b.Bytes()
}

// icmp6Frame is an ICMPv6 error (type, code, its 4-byte field) from src to
// dst quoting quote, built and checksummed by gopacket.
func icmp6Frame(t *testing.T, src, dst netip.Addr, typ, code uint8, field uint32, quote []byte) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	require.NoError(t, icmp.SetNetworkLayerForChecksum(ip))
	rest := binary.BigEndian.AppendUint32(nil, field)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6}
	b := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(b, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, icmp, gopacket.Payload(append(rest, quote...))))
	return b.Bytes()
}

// icmp6SumOK recomputes an ICMPv6 message's checksum over its
// pseudo-header (RFC 4443 2.3) with testutil's RFC 1071 routine.
func icmp6SumOK(frame []byte) bool {
	ip := frame[14:]
	plen := int(binary.BigEndian.Uint16(ip[4:]))
	msg := ip[40 : 40+plen]
	var pseudo uint32
	for i := 8; i < 40; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	pseudo += uint32(plen) + uint32(layers.IPProtocolICMPv6)
	return testutil.Checksum(msg, pseudo) == 0
}

// ICMPv6 errors about IPv6 flows go with the flows: Packet Too Big about
// what the VIP sent reaches the flow's real (NAT66: the quote made what
// the real sent, the outer destination the real); a NAT66 real's error
// about a client's packet goes back as from the VIP, quoting what the
// client sent; DR's reaches its real untouched but for the MACs; errors
// about no flow, and informational ICMPv6, are the kernel's.
func TestIPv6ICMPErrors(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	res := staticResolver{real6(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}, real6(2): {Ifindex: 1, MAC: realMAC(2), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.NAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 443, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: real6(2), Port: 443, Weight: 1, Forward: lvs.DR}}},
	)
	v, _ := run(t, ns, x, frame6(t, vip6, 42000, true, false, 0, nil))
	require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
	router := netip.MustParseAddr("2001:db8:5::fe")

	// Packet Too Big about VIP:80 -> client:42000, from a router on the
	// client's side.
	seen := quote6(t, vip6, client6, 80, 42000, 1400)
	ptb := icmp6Frame(t, router, vip6, 2, 0, 1280, seen)
	v, out := run(t, ns, x, ptb)
	require.Contains(t, []uint32{xdpTX, xdpRedirect}, v, "to the flow's real")
	out = out[:len(ptb)]
	assert.Equal(t, []byte(realMAC(1)), out[:6])
	sent := quote6(t, real6(1), client6, 8080, 42000, 1400)
	want := icmp6Frame(t, router, real6(1), 2, 0, 1280, sent)
	// Only addresses, ports and checksums may differ from gopacket's own
	// frame: the quoted TCP checksum is left as the client saw it.
	copy(want[:12], out[:12])
	qsum := 14 + 40 + 8 + 40 + 16
	copy(want[qsum:qsum+2], seen[40+16:40+18])
	assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
	want[14+40+2], want[14+40+3] = out[14+40+2], out[14+40+3]
	assert.Equal(t, want, out, "the quote is what the real sent; to the real")
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer())
	icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	assert.Equal(t, layers.CreateICMPv6TypeCode(2, 0), icmp.TypeCode)

	// The same about no flow (another client port): the kernel's.
	stray := icmp6Frame(t, router, vip6, 2, 0, 1280, quote6(t, vip6, client6, 80, 42999, 100))
	v, out = run(t, ns, x, stray)
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, stray, out[:len(stray)])
	// An echo request to the VIP: the kernel's.
	echo := icmp6Frame(t, client6, vip6, 128, 0, 0x00010001, []byte("ping"))
	v, _ = run(t, ns, x, echo)
	assert.EqualValues(t, xdpPass, v)

	// Destination unreachable (port) from the NAT66 real about the
	// client's segment client:42000 -> real:8080: back as from VIP:80.
	arrived := quote6(t, client6, real6(1), 42000, 8080, 20)
	unreach := icmp6Frame(t, real6(1), client6, 1, 4, 0, arrived)
	v, out = run(t, ns, x, unreach)
	assert.Contains(t, []uint32{xdpPass, xdpTX, xdpRedirect}, v)
	out = out[:len(unreach)]
	assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
	asSent := quote6(t, client6, vip6, 42000, 80, 20)
	wantU := icmp6Frame(t, vip6, client6, 1, 4, 0, asSent)
	copy(wantU[:12], out[:12])
	wantU[14+7] = out[14+7] // the hop limit, decremented when routed
	copy(wantU[qsum:qsum+2], arrived[40+16:40+18])
	wantU[14+40+2], wantU[14+40+3] = out[14+40+2], out[14+40+3]
	assert.Equal(t, wantU, out, "from the VIP, quoting the segment as the client sent it")

	// DR: Packet Too Big about VIP:443 -> client goes to the real as it is.
	v, _ = run(t, ns, x, frame6To(t, vip6, 443, 42001))
	require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
	ptbDR := icmp6Frame(t, router, vip6, 2, 0, 1280, quote6(t, vip6, client6, 443, 42001, 1400))
	v, out = run(t, ns, x, ptbDR)
	require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
	assert.Equal(t, []byte(realMAC(2)), out[:6])
	assert.Equal(t, ptbDR[12:], out[12:len(ptbDR)], "DR: only the MACs change")
}

// frame6To is a client's SYN to dst:dport from sport.
func frame6To(t *testing.T, dst netip.Addr, dport, sport uint16) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(client6.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Seq: 1000, Window: 4096}
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6}
	b := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(b, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, tcp))
	return b.Bytes()
}
