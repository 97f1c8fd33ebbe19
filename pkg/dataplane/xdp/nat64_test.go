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

// newNAT64Test is a director serving [vip6]:80/TCP and [vip6]:5301/UDP
// from IPv4 real 10.0.0.11 (8080, 5300) by FULLNAT from IPv4 local
// address laddr1: DPVS's NAT64.
func newNAT64Test(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 5301, Protocol: lvs.UDP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 5300, Weight: 1, Forward: lvs.FNAT}}},
	)
	return ns, x
}

// NAT64 by FULLNAT (issue 13): a client's IPv6 packet to the VIP leaves
// as IPv4 from the local address and a port of the flow's own to the
// real (RFC 7915's translation: traffic class to TOS, hop limit to TTL,
// DF set, ID 0; IPv4's header checksum and the TCP checksum computed here
// independently); the real's IPv4 reply comes back as IPv6 from the VIP
// to the client (TTL to hop limit, less the hop the director routes it),
// an 802.1Q tag kept; a UDP reply without a checksum, which IPv6 cannot
// carry, is a counted drop; the sweep gives ports back.
func TestNAT64GoldenPackets(t *testing.T) {
	ns, x := newNAT64Test(t)

	in := segment6(t, client6, vip6, 41000, 80, false, synFlags, "GET / HTTP/1.0\r\n\r\n")
	in[14] = 0x6b // traffic class 0xb0 (DSCP 44)
	in[15] = 0x00
	// (the traffic class is not in the TCP checksum: the frame stays valid)
	v, out := run(t, ns, x, in)
	require.EqualValues(t, xdpTX, v)
	require.Len(t, out, len(in)-20, "IPv6's 40-byte header became IPv4's 20")
	verifyChecksums(t, out)
	d := decode(t, out)
	require.NotNil(t, d.tcp)
	assert.Equal(t, layers.EthernetTypeIPv4, d.eth.EthernetType)
	assert.Equal(t, realMAC(1).String(), d.eth.DstMAC.String())
	assert.Equal(t, srcMAC.String(), d.eth.SrcMAC.String())
	assert.Equal(t, laddr1, ip4Of(d.ip.SrcIP), "from the IPv4 local address")
	assert.Equal(t, realAddr(1), ip4Of(d.ip.DstIP))
	assert.EqualValues(t, 0xb0, d.ip.TOS, "TOS: the traffic class")
	assert.EqualValues(t, 64, d.ip.TTL, "TTL: the hop limit")
	assert.Equal(t, layers.IPv4DontFragment, d.ip.Flags)
	assert.Zero(t, d.ip.Id)
	lport := uint16(d.tcp.SrcPort)
	assert.GreaterOrEqual(t, lport, uint16(1024))
	assert.LessOrEqual(t, lport, uint16(32767))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.True(t, d.tcp.SYN)
	assert.Equal(t, []byte("GET / HTTP/1.0\r\n\r\n"), d.tcp.Payload)

	v, out = run(t, ns, x, segment6(t, client6, vip6, 41000, 80, false, ackFlags, ""))
	require.EqualValues(t, xdpTX, v)
	verifyChecksums(t, out)
	d2 := decode(t, out)
	assert.Equal(t, laddr1, ip4Of(d2.ip.SrcIP))
	assert.EqualValues(t, lport, d2.tcp.SrcPort, "the flow keeps its port")

	// The real's reply (802.1Q-tagged here) to laddr1:lport: IPv6 from
	// [vip6]:80 to client:41000 (no route to the client in this
	// namespace: the kernel gets it, translated).
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, VLAN: 42, Src: realAddr(1), Dst: laddr1, Proto: 6,
		SrcPort: 8080, DstPort: lport, TCPFlags: testutil.TCPSyn | testutil.TCPAck, Payload: []byte("hello"), TTL: 61, TOS: 0x28}
	rb := reply.Bytes()
	before := reasons(t, x)
	v, out = run(t, ns, x, rb)
	assert.EqualValues(t, xdpPass, v)
	out = out[:len(rb)+20]
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "%v", pkt)
	dot1q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	require.True(t, ok, "the tag stays")
	assert.EqualValues(t, 42, dot1q.VLANIdentifier)
	assert.Equal(t, layers.EthernetTypeIPv6, dot1q.Type)
	dr := decode6(t, out)
	assert.True(t, dr.sumOK, "the TCP checksum over IPv6's pseudo-header, recomputed")
	assert.Equal(t, vip6, ip6Of(dr.ip.SrcIP), "from the VIP")
	assert.Equal(t, client6, ip6Of(dr.ip.DstIP), "to the client")
	assert.EqualValues(t, 80, dr.tcp.SrcPort)
	assert.EqualValues(t, 41000, dr.tcp.DstPort)
	assert.EqualValues(t, 60, dr.ip.HopLimit, "the TTL less the director's hop")
	assert.EqualValues(t, 0x28, dr.ip.TrafficClass)
	assert.Zero(t, dr.ip.FlowLabel)
	assert.Equal(t, []byte("hello"), dr.tcp.Payload)
	assert.EqualValues(t, 1, reasons(t, x)["nat_reply"]-before["nat_reply"])

	// UDP, both ways; a reply without a checksum cannot become IPv6.
	v, out = run(t, ns, x, segment6(t, client6, vip6, 5000, 5301, true, nil, "query"))
	require.EqualValues(t, xdpTX, v)
	verifyChecksums(t, out)
	du := decode(t, out)
	require.NotNil(t, du.udp)
	assert.Equal(t, laddr1, ip4Of(du.ip.SrcIP))
	assert.EqualValues(t, 5300, du.udp.DstPort)
	uport := uint16(du.udp.SrcPort)
	answer := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: laddr1, Proto: 17,
		SrcPort: 5300, DstPort: uport, Payload: []byte("answer")}
	v, out = run(t, ns, x, answer.Bytes())
	assert.EqualValues(t, xdpPass, v)
	dua := decode6(t, out[:len(answer.Bytes())+20])
	require.NotNil(t, dua.udp)
	assert.True(t, dua.sumOK, "the UDP checksum over IPv6's pseudo-header, recomputed")
	assert.Equal(t, vip6, ip6Of(dua.ip.SrcIP))
	assert.EqualValues(t, 5301, dua.udp.SrcPort)
	assert.Equal(t, client6, ip6Of(dua.ip.DstIP))
	assert.EqualValues(t, 5000, dua.udp.DstPort)
	nocsum := answer.Bytes()
	binary.BigEndian.PutUint16(nocsum[14+20+6:], 0)
	before = reasons(t, x)
	v, _ = run(t, ns, x, nocsum)
	assert.EqualValues(t, xdpDrop, v)
	assert.EqualValues(t, 1, reasons(t, x)["nat64_udp_no_csum"]-before["nat64_udp_no_csum"])

	// The flows are listed as IPv6 clients of the IPv6 VIP, served by the
	// IPv4 real.
	conns, err := x.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 2)
	for _, c := range conns {
		assert.Equal(t, client6, c.Client.Addr())
		assert.Equal(t, vip6, c.Virtual.Addr())
		assert.Equal(t, realAddr(1), c.Real.Addr())
	}

	// The sweep gives a NAT64 flow's port back once the flow is gone.
	k := xlbConnKey{Src: ip4(realAddr(1)), Dst: ip4(laddr1), Sport: port16(8080), Dport: port16(lport), Proto: 6}
	var e xlbFnatPort
	require.NoError(t, x.objs.FnatPorts.Lookup(&k, &e), "the port is in IPv4's table, which FULLNAT's IPv4 flows share")
	assert.EqualValues(t, 10, e.Nr.Family, "an IPv6 VIP's entry")
	e.Taken = 1
	require.NoError(t, x.objs.FnatPorts.Update(&k, &e, ebpf.UpdateExist))
	require.NoError(t, ns.Do(x.Sweep))
	require.NoError(t, x.objs.FnatPorts.Lookup(&k, &e), "a live flow keeps its port")
	e.Taken = 1
	require.NoError(t, x.objs.FnatPorts.Update(&k, &e, ebpf.UpdateExist))
	ck := xlbConnKey6{Src: words6(client6), Dst: words6(vip6), Sport: port16(41000), Dport: port16(80), Proto: 6}
	require.NoError(t, x.objs.Conns6.Delete(&ck), "(the ACK proved the flow)")
	require.NoError(t, ns.Do(x.Sweep))
	assert.ErrorIs(t, x.objs.FnatPorts.Lookup(&k, &e), ebpf.ErrKeyNotExist, "the evicted flow's port is back")
}

// NAT64 end to end: an IPv6-only client (fd75::1) reaches an IPv6 VIP
// served by IPv4 reals that know nothing of IPv6 or of the client: real
// HTTP (requests in turn, the real's peer the director's IPv4 local
// address, an 8 MiB download checked byte for byte) and UDP. Native and
// generic XDP.
func TestNAT64EndToEnd(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			vip := netip.MustParseAddr("fd77:1::100")
			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode, log: quiet,
				svc: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			// IPv6 on the client's side alone: the client fd75::1 routes
			// everything via the director's fd75::2.
			enableIPv6(t, topo.Switch, "br0")
			enableIPv6(t, topo.Client, "eth0")
			addrNoDAD(t, topo.Client, "fd75::1/64")
			require.NoError(t, topo.Client.IP("-6", "route", "add", "default", "via", "fd75::2"))
			enableIPv6(t, topo.Director, "eth0")
			addrNoDAD(t, topo.Director, "fd75::2/64")
			require.NoError(t, topo.Director.Sysctl("net.ipv6.conf.all.forwarding", "1"))
			// The reals: IPv4 only, no route off their LAN.
			for _, ns := range topo.Reals {
				require.NoError(t, ns.IP("route", "del", "default"))
			}
			local := netip.MustParseAddr("10.77.0.50")
			require.NoError(t, topo.Director.IP("addr", "add", local.String()+"/24", "dev", "eth0"))
			require.NoError(t, topo.ServeHTTP(8080))
			require.NoError(t, topo.ServeUDP(5300))
			web, dns := fnatServices(vip, local, topo.RealAddrs)
			r.apply(t, web, dns)
			r.waitResolved(t)

			c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
			url := "http://" + netip.AddrPortFrom(vip, 80).String() + "/"
			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, getN(t, c, url, 4))

			peer := peerOf(t, c, url)
			assert.Equal(t, local, peer.Addr(), "the IPv4 real's peer is the director's IPv4 local address")

			downloadChecked(t, c, url, 8<<20)
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r1:q2", "r2:q3"}, udpAnswersFrom(t, topo, vip, 4))

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			assert.Zero(t, st.Reasons["fnat_no_port"])
			assert.Zero(t, st.Reasons["nat64_udp_no_csum"])
		})
	}
}

// ICMP errors about a NAT64 flow cross the families (RFC 7915 4.2 and
// 5.2), so that path MTU discovery works on either side of the director:
// an IPv4 router's error about the director's packet to the real reaches
// the client as ICMPv6 from the VIP, quoting the client's packet as it
// sent it (Packet Too Big's MTU 20 more, at least 1280); the client
// side's ICMPv6 error about the VIP's packet reaches the real as ICMP
// from the local address, quoting the real's packet as it sent it
// (fragmentation needed's MTU 20 less). Every type and code the RFC maps;
// one it does not is a counted drop. Each output is decoded by gopacket,
// its checksums recomputed by testutil's RFC 1071 routine, its quote
// compared byte for byte past the headers.
func TestNAT64ICMPErrors(t *testing.T) {
	ns, x := newNAT64Test(t)
	v, out := run(t, ns, x, segment6(t, client6, vip6, 41000, 80, false, synFlags, ""))
	require.EqualValues(t, xdpTX, v)
	lport := uint16(decode(t, out).tcp.SrcPort)
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(i * 7)
	}

	// 4 -> 6. What the director sent the real, quoted as an IPv4 router
	// quotes it (576 bytes at most).
	sent := testutil.Frame{SrcMAC: srcMAC, DstMAC: realMAC(1), Src: laddr1, Dst: realAddr(1), Proto: 6, SrcPort: lport,
		DstPort: 8080, TCPFlags: testutil.TCPAck, Payload: payload, TTL: 63}
	quote4 := ipOf(sent.Bytes())[:20+20+200]
	icmp4 := func(typ, code uint8, rest uint32) []byte {
		f := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: netip.MustParseAddr("10.0.0.254"), Dst: laddr1,
			Proto: 1, Payload: icmpErrorQuoting(typ, code, rest, quote4), TTL: 60, TOS: 0xc0}
		return f.Bytes()
	}
	for _, tc := range []struct {
		name        string
		typ, code   uint8
		rest        uint32
		typ6, code6 uint8
		field6      uint32
		dropped     bool
	}{
		{"fragmentation needed, MTU 1300", 3, 4, 1300, 2, 0, 1320, false},
		{"fragmentation needed, MTU 1000: IPv6's least", 3, 4, 1000, 2, 0, 1280, false},
		{"fragmentation needed, no MTU (RFC 1191's zero)", 3, 4, 0, 2, 0, 1280, false},
		{"port unreachable", 3, 3, 0, 1, 4, 0, false},
		{"host unreachable", 3, 1, 0, 1, 0, 0, false},
		{"communication administratively prohibited", 3, 13, 0, 1, 1, 0, false},
		{"protocol unreachable: parameter problem at the next header", 3, 2, 0, 4, 1, 6, false},
		{"time exceeded in transit", 11, 0, 0, 3, 0, 0, false},
		{"precedence violation: not translated", 3, 14, 0, 0, 0, 0, true},
	} {
		t.Run("to the client: "+tc.name, func(t *testing.T) {
			in := icmp4(tc.typ, tc.code, tc.rest)
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
			out = out[:len(in)+40]
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			require.True(t, ok, "%v", pkt)
			icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			require.True(t, ok, "%v", pkt)
			assert.Equal(t, vip6, ip6Of(ip6.SrcIP), "from the VIP")
			assert.Equal(t, client6, ip6Of(ip6.DstIP), "to the client")
			assert.EqualValues(t, 59, ip6.HopLimit, "the TTL less the director's hop")
			assert.EqualValues(t, 0xc0, ip6.TrafficClass)
			assert.EqualValues(t, len(in)-14-20+20, ip6.Length)
			assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
			assert.Equal(t, layers.CreateICMPv6TypeCode(tc.typ6, tc.code6), icmp.TypeCode)
			assert.Equal(t, tc.field6, binary.BigEndian.Uint32(out[14+40+4:]))
			// The quote: the client's packet as it sent it.
			q := gopacket.NewPacket(out[14+40+8:], layers.LayerTypeIPv6, gopacket.Default)
			qip, ok := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			require.True(t, ok, "%v", q)
			assert.Equal(t, client6, ip6Of(qip.SrcIP))
			assert.Equal(t, vip6, ip6Of(qip.DstIP))
			assert.EqualValues(t, 20+1400, qip.Length, "the whole datagram's length, as IPv4's total less its header")
			assert.EqualValues(t, 63, qip.HopLimit)
			assert.Equal(t, layers.IPProtocolTCP, qip.NextHeader)
			assert.Equal(t, []byte{0xa0, 0x28, 0, 80}, out[14+40+8+40:14+40+8+44], "ports: the client's and the VIP's")
			assert.Equal(t, quote4[24:], out[14+40+8+44:], "the rest of the quote, as it was")
		})
	}

	// 6 -> 4. What the client side saw: the VIP's packet to the client.
	quote6b := quote6(t, vip6, client6, 80, 41000, 300)
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
		{"no route", 1, 0, 0, 3, 1, 0, false},
		{"administratively prohibited", 1, 1, 0, 3, 10, 0, false},
		{"address unreachable", 1, 3, 0, 3, 1, 0, false},
		{"hop limit exceeded", 3, 0, 0, 11, 0, 0, false},
		{"unrecognised next header", 4, 1, 40, 3, 2, 0, false},
		{"erroneous header field: not translated", 4, 0, 4, 0, 0, 0, true},
	} {
		t.Run("to the real: "+tc.name, func(t *testing.T) {
			in := icmp6Frame(t, netip.MustParseAddr("2001:db8:ff::1"), vip6, tc.typ, tc.code, tc.field, quote6b)
			before := reasons(t, x)
			v, out := run(t, ns, x, in)
			if tc.dropped {
				assert.EqualValues(t, xdpDrop, v)
				assert.EqualValues(t, 1, reasons(t, x)["nat64_icmp_drop"]-before["nat64_icmp_drop"])
				return
			}
			require.EqualValues(t, xdpTX, v)
			require.Len(t, out, len(in)-40, "IPv6's two headers became IPv4's")
			d := decode(t, out)
			require.NotNil(t, d.icmp)
			ip := ipOf(out)
			assert.Zero(t, testutil.Checksum(ip[:20], 0), "IPv4 header checksum")
			assert.Zero(t, testutil.Checksum(ip[20:], 0), "ICMP checksum")
			assert.Equal(t, realMAC(1).String(), d.eth.DstMAC.String())
			assert.Equal(t, laddr1, ip4Of(d.ip.SrcIP), "from the local address")
			assert.Equal(t, realAddr(1), ip4Of(d.ip.DstIP), "to the real")
			assert.EqualValues(t, 64, d.ip.TTL)
			assert.Equal(t, layers.CreateICMPv4TypeCode(tc.typ4, tc.code4), d.icmp.TypeCode)
			assert.Equal(t, tc.mtu4, binary.BigEndian.Uint16(ip[20+6:]), "the next-hop MTU")
			// The quote: the real's packet as it sent it.
			q := ip[28:]
			assert.Zero(t, testutil.Checksum(q[:20], 0), "the quote's IPv4 header checksum")
			qp := gopacket.NewPacket(q, layers.LayerTypeIPv4, gopacket.Default)
			qip, ok := qp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			require.True(t, ok, "%v", qp)
			assert.Equal(t, realAddr(1), ip4Of(qip.SrcIP))
			assert.Equal(t, laddr1, ip4Of(qip.DstIP))
			assert.EqualValues(t, 20+20+300, qip.Length)
			assert.Equal(t, layers.IPProtocolTCP, qip.Protocol)
			assert.Equal(t, binary.BigEndian.AppendUint16([]byte{0x1f, 0x90}, lport), []byte(q[20:24]), "ports: the real's and the local one")
			assert.Equal(t, quote6b[44:], []byte(q[24:]), "the rest of the quote, as it was")
		})
	}
}

// Path MTU discovery through NAT64 (issue 13): an IPv6-only client, an
// IPv4-only real two routers away behind a 1400-byte hop (director -1500-
// r1 -1400- r2 -1500- real). The client's full-size segments become
// 1480-byte IPv4 packets that r1 cannot pass; its "fragmentation needed"
// to the local address reaches the client as ICMPv6 Packet Too Big from
// the VIP with MTU 1420 (IPv6's header is 20 bytes longer), the client's
// route cache shows it, and an 8 MiB upload completes; an 8 MiB download
// too. Native and generic.
func TestNAT64PathMTU(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPNative, dataplane.XDPGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			requireRoot(t)
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 1, Native: mode == dataplane.XDPNative, NAT: true})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			lowHopReal(t, topo, false)

			// IPv6 on the client's side alone.
			vip := netip.MustParseAddr("fd77:1::100")
			enableIPv6(t, topo.Switch, "br0")
			enableIPv6(t, topo.Client, "eth0")
			addrNoDAD(t, topo.Client, "fd75::1/64")
			require.NoError(t, topo.Client.IP("-6", "route", "add", "default", "via", "fd75::2"))
			enableIPv6(t, topo.Director, "eth0")
			addrNoDAD(t, topo.Director, "fd75::2/64")
			require.NoError(t, topo.Director.Sysctl("net.ipv6.conf.all.forwarding", "1"))
			local := netip.MustParseAddr("10.77.0.50")
			require.NoError(t, topo.Director.IP("addr", "add", local.String()+"/24", "dev", "eth0"))

			r := &drRig{topo: topo, pin: "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(), mode: mode, log: quiet,
				svc: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}}
			r.x = r.open(t)
			t.Cleanup(func() { assert.NoError(t, r.x.Close()) })
			r.apply(t, dataplane.Service{ServiceKey: r.svc, Scheduler: "rr", LocalAddrs: []netip.Addr{local},
				Reals: []dataplane.Real{{Addr: farReal, Port: 8080, Weight: 1, Forward: lvs.FNAT}}})
			r.waitResolved(t)

			c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
			base := "http://" + netip.AddrPortFrom(vip, 80).String()
			const size = 8 << 20
			want := sha256.New()
			_, _ = io.Copy(want, io.LimitReader(testutil.Pattern(), size))
			resp, err := c.Post(base+"/sha256", "application/octet-stream", io.LimitReader(testutil.Pattern(), size))
			require.NoError(t, err, "the upload")
			ans, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("far %x", want.Sum(nil)), string(ans), "the upload arrived whole")
			out, err := topo.Client.Command("ip", "-6", "route", "get", vip.String()).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), "mtu 1420", "the client learnt the path's MTU from the translated error: %s", out)

			downloadChecked(t, c, base+"/", size)
			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.Zero(t, st.Reasons["nat64_icmp_drop"])
		})
	}
}
