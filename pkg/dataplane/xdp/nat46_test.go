package xdp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// newNAT46Test is a director serving VIP:80/TCP and VIP:5301/UDP (IPv4)
// from IPv6 real real6(1) (8080, 5300) by FULLNAT from IPv6 local
// address laddr6a: NAT46, NAT64's reverse.
func newNAT46Test(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{real6(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr6a},
			Reals:      []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 5301, Protocol: lvs.UDP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr6a},
			Reals:      []dataplane.Real{{Addr: real6(1), Port: 5300, Weight: 1, Forward: lvs.FNAT}}},
	)
	return ns, x
}

// tagged is frame with an 802.1Q tag (VLAN id) after its MAC addresses.
func tagged(frame []byte, id uint16) []byte {
	out := append([]byte{}, frame[:12]...)
	out = binary.BigEndian.AppendUint16(out, 0x8100)
	out = binary.BigEndian.AppendUint16(out, id)
	return append(out, frame[12:]...)
}

// NAT46 by FULLNAT (issue 13: "and the reverse" of NAT64): a client's
// IPv4 packet to an IPv4 VIP leaves as IPv6 from the IPv6 local address
// and a port of the flow's own to the IPv6 real (TOS to traffic class,
// TTL to hop limit, flow label 0; the TCP and UDP checksums recomputed
// by gopacket over IPv6's pseudo-header); the real's IPv6 reply comes
// back as IPv4 from the VIP to the client (hop limit to TTL less the
// director's hop, DF, ID 0; the IPv4 header and TCP checksums recomputed
// by testutil), an 802.1Q tag kept. A client's UDP datagram without a
// checksum, which IPv6 cannot carry, and a reply with an extension header
// are counted drops; the flows are listed as IPv4 clients served by the
// IPv6 real; the sweep gives ports back.
func TestNAT46GoldenPackets(t *testing.T) {
	ns, x := newNAT46Test(t)

	in := syn(41000)
	in.Payload = []byte("GET / HTTP/1.0\r\n\r\n")
	in.TOS, in.TTL = 0xb8, 64
	v, out := run(t, ns, x, in.Bytes())
	require.EqualValues(t, xdpTX, v)
	require.Len(t, out, len(in.Bytes())+20, "IPv4's 20-byte header became IPv6's 40")
	d := decode6(t, out)
	require.NotNil(t, d.tcp)
	assert.True(t, d.sumOK, "the TCP checksum over IPv6's pseudo-header, recomputed")
	eth := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default).LinkLayer().(*layers.Ethernet)
	assert.Equal(t, layers.EthernetTypeIPv6, eth.EthernetType)
	assert.Equal(t, realMAC(1).String(), eth.DstMAC.String())
	assert.Equal(t, srcMAC.String(), eth.SrcMAC.String())
	assert.Equal(t, laddr6a, ip6Of(d.ip.SrcIP), "from the IPv6 local address")
	assert.Equal(t, real6(1), ip6Of(d.ip.DstIP))
	assert.EqualValues(t, 0xb8, d.ip.TrafficClass, "traffic class: the TOS")
	assert.EqualValues(t, 64, d.ip.HopLimit, "hop limit: the TTL")
	assert.Zero(t, d.ip.FlowLabel)
	lport := uint16(d.tcp.SrcPort)
	assert.GreaterOrEqual(t, lport, uint16(1024))
	assert.LessOrEqual(t, lport, uint16(32767))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.True(t, d.tcp.SYN)
	assert.Equal(t, in.Payload, d.tcp.Payload)

	ack := syn(41000)
	ack.TCPFlags = testutil.TCPAck
	v, out = run(t, ns, x, ack.Bytes())
	require.EqualValues(t, xdpTX, v)
	d2 := decode6(t, out)
	assert.True(t, d2.sumOK)
	assert.Equal(t, laddr6a, ip6Of(d2.ip.SrcIP))
	assert.EqualValues(t, lport, d2.tcp.SrcPort, "the flow keeps its port")

	// The real's reply (802.1Q-tagged here) to [laddr6a]:lport: IPv4
	// from VIP:80 to client:41000 (no route to the client in this
	// namespace: the kernel gets it, translated).
	reply := segment6(t, real6(1), laddr6a, 8080, lport, false, func(tcp *layers.TCP) { tcp.SYN, tcp.ACK = true, true }, "hello")
	reply[14+1] = 0x80 // traffic class 0x28 (its low nibble in the next byte: the checksum is not over it)
	reply[14] = 0x62
	reply[14+7] = 61 // hop limit
	rb := tagged(reply, 42)
	before := reasons(t, x)
	v, out = run(t, ns, x, rb)
	assert.EqualValues(t, xdpPass, v)
	out = out[:len(rb)-20]
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "%v", pkt)
	dot1q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	require.True(t, ok, "the tag stays")
	assert.EqualValues(t, 42, dot1q.VLANIdentifier)
	assert.Equal(t, layers.EthernetTypeIPv4, dot1q.Type)
	verifyChecksums(t, append(append([]byte{}, out[:12]...), out[16:]...)) // (untagged)
	dr := decode(t, out)
	require.NotNil(t, dr.tcp)
	assert.Equal(t, vip, ip4Of(dr.ip.SrcIP), "from the VIP")
	assert.Equal(t, client, ip4Of(dr.ip.DstIP), "to the client")
	assert.EqualValues(t, 80, dr.tcp.SrcPort)
	assert.EqualValues(t, 41000, dr.tcp.DstPort)
	assert.EqualValues(t, 60, dr.ip.TTL, "the hop limit less the director's hop")
	assert.EqualValues(t, 0x28, dr.ip.TOS)
	assert.Equal(t, layers.IPv4DontFragment, dr.ip.Flags)
	assert.Zero(t, dr.ip.Id)
	assert.True(t, dr.tcp.SYN && dr.tcp.ACK)
	assert.Equal(t, []byte("hello"), dr.tcp.Payload)
	assert.EqualValues(t, 1, reasons(t, x)["nat_reply"]-before["nat_reply"])

	// The flow: an IPv4 client's, served by the IPv6 real.
	conns, err := x.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 1)
	assert.Equal(t, netip.AddrPortFrom(client, 41000), conns[0].Client)
	assert.Equal(t, netip.AddrPortFrom(vip, 80), conns[0].Virtual)
	assert.Equal(t, netip.AddrPortFrom(real6(1), 8080), conns[0].Real)

	// UDP, both ways; a client's datagram without a checksum cannot
	// become IPv6.
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5000, DstPort: 5301, Payload: []byte("query")}
	v, out = run(t, ns, x, q.Bytes())
	require.EqualValues(t, xdpTX, v)
	du := decode6(t, out)
	require.NotNil(t, du.udp)
	assert.True(t, du.sumOK, "the UDP checksum over IPv6's pseudo-header, recomputed")
	assert.Equal(t, laddr6a, ip6Of(du.ip.SrcIP))
	assert.Equal(t, real6(1), ip6Of(du.ip.DstIP))
	assert.EqualValues(t, 5300, du.udp.DstPort)
	assert.Equal(t, []byte("query"), du.udp.Payload)
	uport := uint16(du.udp.SrcPort)
	v, out = run(t, ns, x, segment6(t, real6(1), laddr6a, 5300, uport, true, nil, "answer"))
	assert.EqualValues(t, xdpPass, v)
	verifyChecksums(t, out)
	dua := decode(t, out)
	require.NotNil(t, dua.udp)
	assert.Equal(t, vip, ip4Of(dua.ip.SrcIP))
	assert.EqualValues(t, 5301, dua.udp.SrcPort)
	assert.Equal(t, client, ip4Of(dua.ip.DstIP))
	assert.EqualValues(t, 5000, dua.udp.DstPort)
	assert.Equal(t, []byte("answer"), dua.udp.Payload)
	nocsum := q.Bytes()
	binary.BigEndian.PutUint16(nocsum[14+20+6:], 0)
	before = reasons(t, x)
	v, _ = run(t, ns, x, nocsum)
	assert.EqualValues(t, xdpDrop, v)
	assert.EqualValues(t, 1, reasons(t, x)["nat64_udp_no_csum"]-before["nat64_udp_no_csum"])

	// A reply with an extension header (destination options) is not
	// translated: a counted drop.
	ext := segment6(t, real6(1), laddr6a, 8080, lport, false, ackFlags, "")
	opts := []byte{6, 0, 1, 4, 0, 0, 0, 0} // next header TCP, PadN
	ext = append(ext[:14+40], append(opts, ext[14+40:]...)...)
	ext[14+6] = 60                                                 // next header: destination options
	binary.BigEndian.PutUint16(ext[14+4:], uint16(len(ext)-14-40)) // payload length
	before = reasons(t, x)
	v, _ = run(t, ns, x, ext)
	assert.EqualValues(t, xdpDrop, v)
	assert.EqualValues(t, 1, reasons(t, x)["truncated"]-before["truncated"])

	// The sweep gives a NAT46 flow's port back once the flow is gone:
	// the port is in IPv6's table, the flow in IPv4's.
	k := xlbConnKey6{Src: words6(real6(1)), Dst: words6(laddr6a), Sport: port16(8080), Dport: port16(lport), Proto: 6}
	var e xlbFnatPort
	require.NoError(t, x.objs.FnatPorts6.Lookup(&k, &e))
	assert.EqualValues(t, 2, e.Nr.Family, "an IPv4 VIP's entry")
	e.Taken = 1
	require.NoError(t, x.objs.FnatPorts6.Update(&k, &e, ebpf.UpdateExist))
	require.NoError(t, ns.Do(x.Sweep))
	require.NoError(t, x.objs.FnatPorts6.Lookup(&k, &e), "a live flow keeps its port")
	e.Taken = 1
	require.NoError(t, x.objs.FnatPorts6.Update(&k, &e, ebpf.UpdateExist))
	ck := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(41000), Dport: port16(80), Proto: 6}
	require.NoError(t, x.flows4().Delete(&ck), "(the ACK proved the flow)")
	require.NoError(t, ns.Do(x.Sweep))
	assert.ErrorIs(t, x.objs.FnatPorts6.Lookup(&k, &e), ebpf.ErrKeyNotExist, "the evicted flow's port is back")
}

// NAT46 end to end: an IPv4 client (the topology's) reaches an IPv4 VIP
// served by IPv6-only reals that have no route to any IPv4 network (nor
// to the client's IPv6 one): real HTTP (requests in turn, the real's
// peer the director's IPv6 local address, an 8 MiB download checked byte
// for byte) and UDP. Native and generic XDP.
func TestNAT46EndToEnd(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			vip := netip.MustParseAddr("10.77.1.100")
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode, log: quiet,
				svc: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			realAddrs := ipv6NATTopology(t, topo)
			for _, ns := range topo.Reals {
				require.NoError(t, ns.IP("-6", "route", "del", "default"))
				require.NoError(t, ns.IP("-4", "addr", "flush", "dev", "eth0"))
				out, err := ns.Command("ip", "-4", "route", "get", "10.77.0.1").CombinedOutput()
				require.Error(t, err, "the real must have no IPv4 at all: %s", out)
			}
			local := netip.MustParseAddr("fd77::50")
			addrNoDAD(t, topo.Director, local.String()+"/64")
			require.NoError(t, topo.ServeUDPOn(netip.IPv6Unspecified(), 5300))
			web, dns := fnatServices(vip, local, realAddrs)
			r.apply(t, web, dns)
			r.waitResolved(t)

			c := topo.HTTPClient()
			url := "http://" + netip.AddrPortFrom(vip, 80).String() + "/"
			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, getN(t, c, url, 4))

			peer := peerOf(t, c, url)
			assert.Equal(t, local, peer.Addr(), "the IPv6 real's peer is the director's IPv6 local address")
			assert.Less(t, peer.Port(), uint16(32768))

			c = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
			downloadChecked(t, c, url, 8<<20)
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r1:q2", "r2:q3"}, udpAnswersFrom(t, topo, vip, 4))

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			assert.Zero(t, st.Reasons["fnat_no_port"])
			assert.Zero(t, st.Reasons["nat64_udp_no_csum"])
			assert.Zero(t, st.Reasons["truncated"])
		})
	}
}

// ICMP errors about a NAT46 flow cross the families as NAT64's do (RFC
// 7915 4.2 and 5.2): an IPv6 router's error about the director's packet
// to the real reaches the client as ICMP from the VIP, quoting the
// client's packet as it sent it (Packet Too Big's MTU 20 less); the
// client side's ICMP error about the VIP's packet reaches the real as
// ICMPv6 from the local address, quoting the real's packet as it sent it
// (fragmentation needed's MTU 20 more). An error the RFC does not
// translate is a counted drop. Each output decoded by gopacket, its
// checksums recomputed by testutil's RFC 1071 routine.
func TestNAT46ICMPErrors(t *testing.T) {
	ns, x := newNAT46Test(t)
	v, out := run(t, ns, x, syn(41000).Bytes())
	require.EqualValues(t, xdpTX, v)
	lport := uint16(decode6(t, out).tcp.SrcPort)

	// 6 -> 4. What the director sent the real, quoted by an IPv6 router.
	quote := quote6(t, laddr6a, real6(1), lport, 8080, 300)
	for _, tc := range []struct {
		name        string
		typ, code   uint8
		field       uint32
		typ4, code4 uint8
		mtu4        uint16
		dropped     bool
	}{
		{"packet too big, MTU 1300", 2, 0, 1300, 3, 4, 1280, false},
		{"port unreachable", 1, 4, 0, 3, 3, 0, false},
		{"hop limit exceeded", 3, 0, 0, 11, 0, 0, false},
		{"erroneous header field: not translated", 4, 0, 4, 0, 0, 0, true},
	} {
		t.Run("to the client: "+tc.name, func(t *testing.T) {
			in := icmp6Frame(t, netip.MustParseAddr("2001:db8:ff::1"), laddr6a, tc.typ, tc.code, tc.field, quote)
			before := reasons(t, x)
			v, out := run(t, ns, x, in)
			if tc.dropped {
				assert.EqualValues(t, xdpDrop, v)
				assert.EqualValues(t, 1, reasons(t, x)["nat64_icmp_drop"]-before["nat64_icmp_drop"])
				return
			}
			// (no route to the client in this namespace: the kernel
			// gets it, translated)
			assert.EqualValues(t, xdpPass, v)
			require.Len(t, out, len(in)-40, "IPv6's two headers became IPv4's")
			d := decode(t, out)
			require.NotNil(t, d.icmp)
			ip := ipOf(out)
			assert.Zero(t, testutil.Checksum(ip[:20], 0), "IPv4 header checksum")
			assert.Zero(t, testutil.Checksum(ip[20:], 0), "ICMP checksum")
			assert.Equal(t, vip, ip4Of(d.ip.SrcIP), "from the VIP")
			assert.Equal(t, client, ip4Of(d.ip.DstIP), "to the client")
			assert.EqualValues(t, 63, d.ip.TTL, "the hop limit less the director's hop")
			assert.Equal(t, layers.CreateICMPv4TypeCode(tc.typ4, tc.code4), d.icmp.TypeCode)
			assert.Equal(t, tc.mtu4, binary.BigEndian.Uint16(ip[20+6:]), "the next-hop MTU")
			// The quote: the client's packet as it sent it.
			q := ip[28:]
			assert.Zero(t, testutil.Checksum(q[:20], 0), "the quote's IPv4 header checksum")
			qp := gopacket.NewPacket(q, layers.LayerTypeIPv4, gopacket.Default)
			qip, ok := qp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			require.True(t, ok, "%v", qp)
			assert.Equal(t, client, ip4Of(qip.SrcIP))
			assert.Equal(t, vip, ip4Of(qip.DstIP))
			assert.EqualValues(t, 20+20+300, qip.Length)
			assert.Equal(t, []byte{0xa0, 0x28, 0, 80}, []byte(q[20:24]), "ports: the client's and the VIP's")
			assert.Equal(t, quote[44:], []byte(q[24:]), "the rest of the quote, as it was")
		})
	}

	// 4 -> 6. What the client saw: the VIP's packet to the client, quoted
	// by an IPv4 router on the client's side.
	seen := testutil.Frame{SrcMAC: dirMAC, DstMAC: clientMC, Src: vip, Dst: client, Proto: 6, SrcPort: 80, DstPort: 41000,
		TCPFlags: testutil.TCPAck, Payload: make([]byte, 1400), TTL: 61}
	quote4 := ipOf(seen.Bytes())[:20+20+200]
	for _, tc := range []struct {
		name        string
		typ, code   uint8
		rest        uint32
		typ6, code6 uint8
		field6      uint32
		dropped     bool
	}{
		{"fragmentation needed, MTU 1300", 3, 4, 1300, 2, 0, 1320, false},
		{"port unreachable", 3, 3, 0, 1, 4, 0, false},
		{"time exceeded in transit", 11, 0, 0, 3, 0, 0, false},
		{"precedence violation: not translated", 3, 14, 0, 0, 0, 0, true},
	} {
		t.Run("to the real: "+tc.name, func(t *testing.T) {
			in := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: netip.MustParseAddr("192.0.2.254"), Dst: vip,
				Proto: 1, Payload: icmpErrorQuoting(tc.typ, tc.code, tc.rest, quote4), TTL: 60, TOS: 0xc0}.Bytes()
			before := reasons(t, x)
			v, out := run(t, ns, x, in)
			if tc.dropped {
				assert.EqualValues(t, xdpDrop, v)
				assert.EqualValues(t, 1, reasons(t, x)["nat64_icmp_drop"]-before["nat64_icmp_drop"])
				return
			}
			require.EqualValues(t, xdpTX, v)
			require.Len(t, out, len(in)+40, "IPv4's two headers became IPv6's")
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.LinkLayer().(*layers.Ethernet)
			assert.Equal(t, realMAC(1).String(), eth.DstMAC.String())
			ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			require.True(t, ok, "%v", pkt)
			icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			require.True(t, ok, "%v", pkt)
			assert.Equal(t, laddr6a, ip6Of(ip6.SrcIP), "from the local address")
			assert.Equal(t, real6(1), ip6Of(ip6.DstIP), "to the real")
			assert.EqualValues(t, 60, ip6.HopLimit, "the TTL, as packets to reals keep it")
			assert.EqualValues(t, 0xc0, ip6.TrafficClass)
			assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
			assert.Equal(t, layers.CreateICMPv6TypeCode(tc.typ6, tc.code6), icmp.TypeCode)
			assert.Equal(t, tc.field6, binary.BigEndian.Uint32(out[14+40+4:]))
			// The quote: the real's packet as it sent it.
			q := gopacket.NewPacket(out[14+40+8:], layers.LayerTypeIPv6, gopacket.Default)
			qip, ok := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			require.True(t, ok, "%v", q)
			assert.Equal(t, real6(1), ip6Of(qip.SrcIP))
			assert.Equal(t, laddr6a, ip6Of(qip.DstIP))
			assert.EqualValues(t, 20+1400, qip.Length)
			assert.EqualValues(t, 61, qip.HopLimit)
			assert.Equal(t, binary.BigEndian.AppendUint16([]byte{0x1f, 0x90}, lport), out[14+40+8+40:14+40+8+44], "ports: the real's and the local one")
			assert.Equal(t, quote4[24:], out[14+40+8+44:], "the rest of the quote, as it was")
		})
	}
}

// Path MTU discovery through NAT46: an IPv4 client, an IPv6-only real
// two routers away behind a 1400-byte hop (director -1500- r1 -1400- r2
// -1500- real). The client's full-size segments become 1500-byte IPv6
// packets that r1 cannot pass; its Packet Too Big to the local address
// reaches the client as "fragmentation needed" from the VIP with MTU 1380
// (IPv4's header is 20 bytes shorter), the client's route cache shows
// it, and an 8 MiB upload completes; an 8 MiB download too. Native and
// generic.
func TestNAT46PathMTU(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			lowHopReal(t, topo, true)
			local := netip.MustParseAddr("fd77::50")
			addrNoDAD(t, topo.Director, local.String()+"/64")

			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode, log: quiet,
				svc: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			r.apply(t, dataplane.Service{ServiceKey: r.svc, Scheduler: "rr", LocalAddrs: []netip.Addr{local},
				Reals: []dataplane.Real{{Addr: farReal6, Port: 8080, Weight: 1, Forward: lvs.FNAT}}})
			r.waitResolved(t)

			c := topo.HTTPClient()
			c.Timeout = 60 * time.Second
			base := "http://" + netip.AddrPortFrom(topo.VIP, 80).String()
			const size = 8 << 20
			want := sha256.New()
			_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), size))
			resp, err := c.Post(base+"/sha256", "application/octet-stream", io.LimitReader(testutil.Pattern(), size))
			require.NoError(t, err, "the upload")
			ans, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("far %x", want.Sum(nil)), string(ans), "the upload arrived whole")
			out, err := topo.Client.Command("ip", "route", "get", topo.VIP.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), "mtu 1380", "the client learnt the path's MTU from the translated error: %s", out)

			downloadChecked(t, c, base+"/", size)
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.Zero(t, st.Reasons["nat64_icmp_drop"])
		})
	}
}
