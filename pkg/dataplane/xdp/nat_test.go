package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// verifyChecksums recomputes the IPv4 header and TCP/UDP checksums of an
// Ethernet frame with testutil's own routine (RFC 1071), independent of
// the program's incremental updates. A correct checksum sums to zero.
func verifyChecksums(t *testing.T, frame []byte) {
	t.Helper()
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	assert.Zero(t, testutil.Checksum(ip[:ihl], 0), "IPv4 header checksum")
	total := int(binary.BigEndian.Uint16(ip[2:]))
	l4 := ip[ihl:total]
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	pseudo += uint32(ip[9]) + uint32(len(l4))
	if ip[9] == 17 && binary.BigEndian.Uint16(l4[6:]) == 0 {
		return
	}
	assert.Zero(t, testutil.Checksum(l4, pseudo), "L4 checksum")
}

// newNATTest is a director forwarding VIP:80/TCP to 10.0.0.11:8080 and
// VIP:53/UDP to 10.0.0.11:5353 by NAT.
func newNATTest(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.Sysctl("net.ipv4.ip_forward", "1"))
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.NAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 5353, Weight: 1, Forward: lvs.NAT}}},
	)
	return ns, x
}

func TestNATGoldenPackets(t *testing.T) {
	ns, x := newNATTest(t)

	in := syn(41000)
	in.Payload = []byte("GET / HTTP/1.0\r\n\r\n")
	v, out := run(t, ns, x, in.Bytes())
	require.EqualValues(t, xdpTX, v)
	want := in
	want.Dst, want.DstPort = realAddr(1), 8080
	want.DstMAC, want.SrcMAC = realMAC(1), srcMAC
	assert.Equal(t, want.Bytes(), out, "DNAT 10.0.0.100:80 -> 10.0.0.11:8080, checksums recomputed")
	verifyChecksums(t, out)

	// The reply, real -> client: the source becomes the VIP:80 again. No
	// route to the client here: the kernel decides (TestNATReplyNextHop
	// has one).
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client,
		Proto: 6, SrcPort: 8080, DstPort: 41000, TCPFlags: testutil.TCPSyn | testutil.TCPAck, Payload: []byte("hello")}
	before := reasons(t, x)
	v, out = run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v)
	wantReply := reply
	wantReply.Src, wantReply.SrcPort = vip, 80
	assert.Equal(t, wantReply.Bytes(), out, "SNAT back to the VIP, left to the kernel to route")
	verifyChecksums(t, out)
	after := reasons(t, x)
	assert.EqualValues(t, 1, after["nat_reply"]-before["nat_reply"])
	assert.EqualValues(t, 1, after["nat_reply_kernel"]-before["nat_reply_kernel"])

	// A reply of no NAT flow passes untouched.
	stray := reply
	stray.DstPort = 41999
	v, out = run(t, ns, x, stray.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, stray.Bytes(), out)

	// UDP with a checksum, and without one (0 stays 0).
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5000, DstPort: 53, Payload: []byte("query")}
	v, out = run(t, ns, x, q.Bytes())
	require.EqualValues(t, xdpTX, v)
	wq := q
	wq.Dst, wq.DstPort, wq.DstMAC, wq.SrcMAC = realAddr(1), 5353, realMAC(1), srcMAC
	assert.Equal(t, wq.Bytes(), out)
	verifyChecksums(t, out)
	noSum := q.Bytes()
	binary.BigEndian.PutUint16(noSum[14+20+6:], 0)
	v, out = run(t, ns, x, noSum)
	require.EqualValues(t, xdpTX, v)
	assert.Zero(t, binary.BigEndian.Uint16(out[14+20+6:]), "a UDP datagram without checksum keeps none")
	assert.Equal(t, net.IP(realAddr(1).AsSlice()).To4(), net.IP(out[14+16:14+20]))
	verifyChecksums(t, out)
}

// A NAT reply is routed to the client like the kernel's forwarding would:
// to the neighbour's MAC, TTL decremented. When the client's next hop has
// no neighbour entry yet, the kernel's forwarding would drop the
// translated packet (its source, the VIP, is a local address): it goes up
// with metadata that sends xlb_tc_neigh's bpf_redirect_neigh to the
// interface the FIB chose (what reaches the client that way:
// TestNATReplyWaitsForARP).
func TestNATReplyNextHop(t *testing.T) {
	ns, x := newNATTest(t)
	require.NoError(t, ns.IP("link", "set", "dummy1", "up"))
	require.NoError(t, ns.IP("addr", "add", "192.0.2.1/24", "dev", "dummy0"))
	var dummy0 int
	require.NoError(t, ns.Do(func() error {
		ifi, err := net.InterfaceByName("dummy0")
		dummy0 = ifi.Index
		return err
	}))
	v, _ := run(t, ns, x, syn(41000).Bytes())
	require.EqualValues(t, xdpTX, v)
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client,
		Proto: 6, SrcPort: 8080, DstPort: 41000, TCPFlags: testutil.TCPSyn | testutil.TCPAck, TTL: 64}
	want := reply
	want.Src, want.SrcPort, want.TTL = vip, 80, 63

	before := reasons(t, x)
	v, out := run(t, ns, x, reply.Bytes())
	require.EqualValues(t, xdpPass, v)
	require.Len(t, out, 8+len(want.Bytes()), "8 bytes of metadata before the frame")
	assert.EqualValues(t, 0x786c626e, binary.LittleEndian.Uint32(out[0:4]), "XLB_META_NEIGH")
	assert.EqualValues(t, dummy0, binary.LittleEndian.Uint32(out[4:8]), "the interface towards the client")
	assert.Equal(t, want.Bytes(), out[8:], "translated, TTL decremented")
	verifyChecksums(t, out[8:])
	assert.EqualValues(t, 1, reasons(t, x)["nat_reply_kernel"]-before["nat_reply_kernel"])

	// With the client's MAC known: straight out of dummy0 to it.
	clientMAC := net.HardwareAddr{0x02, 0xc1, 0, 0, 0, 0x07}
	require.NoError(t, ns.IP("neigh", "add", client.String(), "lladdr", clientMAC.String(), "dev", "dummy0"))
	before = reasons(t, x)
	v, out = run(t, ns, x, reply.Bytes())
	require.EqualValues(t, xdpRedirect, v)
	var dummy0MAC net.HardwareAddr
	require.NoError(t, ns.Do(func() error {
		ifi, err := net.InterfaceByName("dummy0")
		dummy0MAC = ifi.HardwareAddr
		return err
	}))
	want.DstMAC, want.SrcMAC = clientMAC, dummy0MAC
	assert.Equal(t, want.Bytes(), out)
	assert.Zero(t, reasons(t, x)["nat_reply_kernel"]-before["nat_reply_kernel"])
}

// DR and NAT services on one director.
func TestDRAndNATCoexist(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}, realAddr(2): {Ifindex: 1, MAC: realMAC(2), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	vip2 := netip.MustParseAddr("10.0.0.101")
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr", Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip2, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr", Reals: []dataplane.Real{{Addr: realAddr(2), Port: 80, Weight: 1, Forward: lvs.NAT}}},
	)
	dr := syn(42000)
	v, out := run(t, ns, x, dr.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, rewritten(dr.Bytes(), realMAC(1), srcMAC), out, "DR: only MACs")
	// An ICMP error about the DR flow reaches the flow's real, untouched.
	seen := testutil.Frame{SrcMAC: dirMAC, DstMAC: clientMC, Src: vip, Dst: client, Proto: 6, SrcPort: 80, DstPort: 42000, Payload: make([]byte, 100)}
	icmp := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: netip.MustParseAddr("192.0.2.254"), Dst: vip, Proto: 1,
		Payload: icmpError(3, 4, 1300, ipOf(seen.Bytes()))}
	v, out = run(t, ns, x, icmp.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, rewritten(icmp.Bytes(), realMAC(1), srcMAC), out)

	nat := syn(42001)
	nat.Dst = vip2
	v, out = run(t, ns, x, nat.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, net.IP(realAddr(2).AsSlice()).To4(), net.IP(out[14+16:14+20]), "NAT: destination rewritten")
	verifyChecksums(t, out)
}

// icmpError is an ICMP error message quoting inner (an IPv4 packet,
// truncated to its header and 8 bytes of L4, as routers quote).
func icmpError(typ, code uint8, rest uint32, inner []byte) []byte {
	return icmpErrorQuoting(typ, code, rest, inner[:28])
}

// icmpErrorQuoting is an ICMP error quoting all of quote (a router may
// quote up to 576 bytes).
func icmpErrorQuoting(typ, code uint8, rest uint32, quote []byte) []byte {
	msg := make([]byte, 8, 8+len(quote))
	msg[0], msg[1] = typ, code
	binary.BigEndian.PutUint32(msg[4:], rest)
	msg = append(msg, quote...)
	binary.BigEndian.PutUint16(msg[2:], testutil.Checksum(msg, 0))
	return msg
}

// ipOf is the IPv4 packet of an Ethernet frame.
func ipOf(frame []byte) []byte { return frame[14:] }

// PMTU discovery through NAT: a router's "fragmentation needed" about the
// VIP's packet to the client goes to the real, with the quoted packet
// translated to what the real sent; and a NAT real's "port unreachable"
// about a client's datagram goes back as the VIP's.
func TestNATICMPErrors(t *testing.T) {
	ns, x := newNATTest(t)
	v, _ := run(t, ns, x, syn(43000).Bytes())
	require.EqualValues(t, xdpTX, v)

	// What the client saw: VIP:80 -> client:43000, too big for a router.
	seen := testutil.Frame{SrcMAC: dirMAC, DstMAC: clientMC, Src: vip, Dst: client, Proto: 6, SrcPort: 80, DstPort: 43000,
		TCPFlags: testutil.TCPAck, Payload: make([]byte, 1400)}
	router := netip.MustParseAddr("192.0.2.254")
	fragNeeded := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: router, Dst: vip, Proto: 1,
		Payload: icmpError(3, 4, 1300, ipOf(seen.Bytes()))}
	v, out := run(t, ns, x, fragNeeded.Bytes())
	require.EqualValues(t, xdpTX, v, "to the flow's real")

	// What the real sent: real:8080 -> client:43000.
	sent := seen
	sent.Src, sent.SrcPort = realAddr(1), 8080
	want := fragNeeded
	want.Dst, want.DstMAC, want.SrcMAC = realAddr(1), realMAC(1), srcMAC
	want.Payload = icmpError(3, 4, 1300, ipOf(sent.Bytes()))
	assert.Equal(t, want.Bytes(), out)
	ip := ipOf(out)
	assert.Zero(t, testutil.Checksum(ip[:20], 0), "outer IP checksum")
	assert.Zero(t, testutil.Checksum(ip[20:], 0), "ICMP checksum")
	assert.Zero(t, testutil.Checksum(ip[28:48], 0), "quoted IP header checksum")
	assert.Equal(t, uint16(1300), binary.BigEndian.Uint16(ip[26:]), "next-hop MTU kept")

	// An ICMP error about no flow of ours passes untouched.
	other := seen
	other.DstPort = 43999
	stray := fragNeeded
	stray.Payload = icmpError(3, 4, 1300, ipOf(other.Bytes()))
	v, out = run(t, ns, x, stray.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, stray.Bytes(), out)

	// Port unreachable from the real about a client's datagram.
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5001, DstPort: 53, Payload: []byte("query")}
	v, _ = run(t, ns, x, q.Bytes())
	require.EqualValues(t, xdpTX, v)
	arrived := q
	arrived.Dst, arrived.DstPort = realAddr(1), 5353
	unreach := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client, Proto: 1,
		Payload: icmpError(3, 3, 0, ipOf(arrived.Bytes()))}
	v, out = run(t, ns, x, unreach.Bytes())
	assert.EqualValues(t, xdpPass, v, "no neighbour for the client here: the kernel forwards it")
	wantU := unreach
	wantU.Src = vip
	wantU.Payload = icmpError(3, 3, 0, ipOf(q.Bytes()))
	assert.Equal(t, wantU.Bytes(), out, "from the VIP, quoting the datagram as the client sent it")
}

// A NAT flow follows IPVS's two-way tables: the client's packets through
// INPUT, the real's replies through OUTPUT (ip_vs_proto_tcp.c).
func TestNATTwoWayStates(t *testing.T) {
	ns, x := newOneNATReal(t, vip, realAddr(1), "net.ipv4.ip_forward")
	in := func(flags uint8) {
		f := syn(44000)
		f.TCPFlags = flags
		v, _ := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	out := func(flags uint8) {
		f := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client, Proto: 6,
			SrcPort: 8080, DstPort: 44000, TCPFlags: flags}
		v, _ := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpPass, v)
	}
	state := func() (string, int64, int64) {
		conns, err := x.Conns()
		require.NoError(t, err)
		require.Len(t, conns, 1)
		st, err := x.Stats()
		require.NoError(t, err)
		r := st.Services[0].Reals[0]
		return conns[0].State, r.ActiveConns, r.InactConns
	}
	for _, step := range []struct {
		dir    string
		flags  uint8
		state  string
		active int64
	}{
		{"in", testutil.TCPSyn, "SYN_RECV", 1},
		{"out", testutil.TCPSyn | testutil.TCPAck, "SYN_RECV", 1},
		{"in", testutil.TCPAck, "ESTABLISHED", 1},
		{"in", testutil.TCPFin | testutil.TCPAck, "CLOSE_WAIT", 0}, // INPUT: ES+fin -> CW (INPUT-ONLY would say FIN_WAIT)
		{"out", testutil.TCPFin | testutil.TCPAck, "TIME_WAIT", 0},
		{"in", testutil.TCPAck, "TIME_WAIT", 0},
	} {
		if step.dir == "in" {
			in(step.flags)
		} else {
			out(step.flags)
		}
		s, a, i := state()
		assert.Equal(t, step.state, s, "after %s %#x", step.dir, step.flags)
		assert.Equal(t, step.active, a, "ActiveConn after %s %#x", step.dir, step.flags)
		assert.Equal(t, 1-step.active, i, "InActConn after %s %#x", step.dir, step.flags)
	}
}
