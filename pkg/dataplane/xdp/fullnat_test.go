package xdp

import (
	"encoding/binary"
	"log/slog"
	"net"
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

var laddr1, laddr2 = netip.MustParseAddr("10.0.0.50"), netip.MustParseAddr("10.0.0.51")

// newFNATTest is a director forwarding VIP:80/TCP to 10.0.0.11:8080 by
// FULLNAT from two local addresses, and VIP:53/UDP to 10.0.0.11:5353 from
// one.
func newFNATTest(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1, laddr2},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 5353, Weight: 1, Forward: lvs.FNAT}}},
	)
	return ns, x
}

// decoded is a frame as gopacket reads it (not the code under test).
type decoded struct {
	eth  *layers.Ethernet
	ip   *layers.IPv4
	tcp  *layers.TCP
	udp  *layers.UDP
	icmp *layers.ICMPv4
}

func decode(t *testing.T, frame []byte) decoded {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "gopacket decodes the output")
	var d decoded
	d.eth, _ = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.ip, _ = pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	d.tcp, _ = pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	d.udp, _ = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	d.icmp, _ = pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	require.NotNil(t, d.ip)
	return d
}

func ip4Of(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip.To4()); return a }

// The client's packets leave with both ends rewritten (a local address
// and a port of the flow's own toward the real; the real's address and
// port), the flow keeping its local address and port; the real's replies
// to that address and port go back as the VIP's to the client; the
// checksums are right by an independent computation.
func TestFULLNATGoldenPackets(t *testing.T) {
	ns, x := newFNATTest(t)

	in := syn(41000)
	in.Payload = []byte("GET / HTTP/1.0\r\n\r\n")
	v, out := run(t, ns, x, in.Bytes())
	require.EqualValues(t, xdpTX, v)
	verifyChecksums(t, out)
	d := decode(t, out)
	require.NotNil(t, d.tcp)
	local := ip4Of(d.ip.SrcIP)
	lport := uint16(d.tcp.SrcPort)
	assert.Contains(t, []netip.Addr{laddr1, laddr2}, local, "the source is one of the service's local addresses")
	assert.GreaterOrEqual(t, lport, uint16(1024))
	assert.LessOrEqual(t, lport, uint16(32767), "local ports stay below the ephemeral range")
	assert.Equal(t, realAddr(1), ip4Of(d.ip.DstIP))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.Equal(t, realMAC(1).String(), d.eth.DstMAC.String())
	assert.Equal(t, srcMAC.String(), d.eth.SrcMAC.String())
	assert.Equal(t, in.Payload, d.tcp.Payload)
	// The rest of the frame is the client's: only the addresses, ports
	// and checksums moved.
	want := in
	want.Src, want.SrcPort, want.Dst, want.DstPort = local, lport, realAddr(1), 8080
	want.DstMAC, want.SrcMAC = realMAC(1), srcMAC
	assert.Equal(t, want.Bytes(), out)

	// The flow's next packet: the same local address and port.
	ack := syn(41000)
	ack.TCPFlags = testutil.TCPAck
	v, out = run(t, ns, x, ack.Bytes())
	require.EqualValues(t, xdpTX, v)
	d2 := decode(t, out)
	assert.Equal(t, local, ip4Of(d2.ip.SrcIP))
	assert.EqualValues(t, lport, d2.tcp.SrcPort)
	verifyChecksums(t, out)

	// The real's reply to local:lport goes back as VIP:80 -> client:41000
	// (no route to the client in this namespace: the kernel sends it on).
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: local,
		Proto: 6, SrcPort: 8080, DstPort: lport, TCPFlags: testutil.TCPSyn | testutil.TCPAck, Payload: []byte("hello")}
	before := reasons(t, x)
	v, out = run(t, ns, x, reply.Bytes())
	assert.EqualValues(t, xdpPass, v)
	wantReply := reply
	wantReply.Src, wantReply.SrcPort, wantReply.Dst, wantReply.DstPort = vip, 80, client, 41000
	assert.Equal(t, wantReply.Bytes(), out, "from the VIP to the client")
	verifyChecksums(t, out)
	after := reasons(t, x)
	assert.EqualValues(t, 1, after["nat_reply"]-before["nat_reply"])

	// To another local port: no flow's; untouched.
	stray := reply
	stray.DstPort = lport ^ 1
	v, out = run(t, ns, x, stray.Bytes())
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, stray.Bytes(), out)

	// UDP, both ways.
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5000, DstPort: 53, Payload: []byte("query")}
	v, out = run(t, ns, x, q.Bytes())
	require.EqualValues(t, xdpTX, v)
	verifyChecksums(t, out)
	du := decode(t, out)
	require.NotNil(t, du.udp)
	assert.Equal(t, laddr1, ip4Of(du.ip.SrcIP), "the UDP service's one local address")
	assert.Equal(t, realAddr(1), ip4Of(du.ip.DstIP))
	assert.EqualValues(t, 5353, du.udp.DstPort)
	answer := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: laddr1, Proto: 17,
		SrcPort: 5353, DstPort: uint16(du.udp.SrcPort), Payload: []byte("answer")}
	v, out = run(t, ns, x, answer.Bytes())
	assert.EqualValues(t, xdpPass, v)
	wantA := answer
	wantA.Src, wantA.SrcPort, wantA.Dst, wantA.DstPort = vip, 53, client, 5000
	assert.Equal(t, wantA.Bytes(), out)
	verifyChecksums(t, out)

	st, err := x.Stats()
	require.NoError(t, err)
	for _, s := range st.Services {
		require.Len(t, s.Reals, 1)
		assert.Equal(t, "FullNat", s.Reals[0].Forward.String())
		assert.Equal(t, s.Reals[0].Packets, s.Packets)
		assert.NotZero(t, s.Reals[0].OutPackets, "the real's replies are counted, as NAT's")
	}
	assert.Zero(t, st.Reasons["fnat_no_port"])
}

// Two flows never hold one port: 2000 connections from one client get
// 2000 different (local address, port) pairs, spread over both local
// addresses, one fnat_ports entry each.
func TestFULLNATPortsNeverTwice(t *testing.T) {
	ns, x := newFNATTest(t)
	type lp struct {
		a netip.Addr
		p uint16
	}
	seen := map[lp]uint16{}
	per := map[netip.Addr]int{}
	for i := range 2000 {
		sport := uint16(20000 + i)
		v, out := run(t, ns, x, syn(sport).Bytes())
		require.EqualValues(t, xdpTX, v)
		d := decode(t, out)
		k := lp{ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)}
		if prev, dup := seen[k]; dup {
			t.Fatalf("client ports %d and %d were both given %s:%d", prev, sport, k.a, k.p)
		}
		seen[k] = sport
		per[k.a]++
	}
	assert.Len(t, seen, 2000)
	assert.Greater(t, per[laddr1], 600, "both local addresses are used")
	assert.Greater(t, per[laddr2], 600, "both local addresses are used")
	assert.Equal(t, 2000, countEntries(t, x.objs.FnatPorts))
}

func countEntries(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	require.NoError(t, it.Err())
	return n
}

// openFNATRoomy is a data plane with room in fnat_ports for every port
// of two local addresses toward a real (131072 flows), real 1 on the
// ingress link.
func openFNATRoomy(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: "/sys/fs/bpf/xlb-test-" + testutil.Suffix(), Resolver: res, MaxConns: 1 << 16,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), SweepInterval: time.Hour})
		return err
	}))
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	return ns, x
}

// fnatKey is the fnat_ports key of local:lport's replies from real:rport.
func fnatKey(real netip.Addr, rport uint16, local netip.Addr, lport uint16, proto uint8) xlbConnKey {
	return xlbConnKey{Src: ip4(real), Dst: ip4(local), Sport: port16(rport), Dport: port16(lport), Proto: proto}
}

// With every port of both its local addresses taken toward the real, a
// new flow is dropped and counted, and makes no flow: it is never sent on
// a port another flow holds. Ports are per real port: the UDP service
// (the same real, another port) still has all of its own.
func TestFULLNATPortsRunOut(t *testing.T) {
	ns, x := openFNATRoomy(t)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1, laddr2},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1},
			Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 5353, Weight: 1, Forward: lvs.FNAT}}},
	)
	// Every port of both local addresses, taken by flows of some other
	// client.
	var keys []xlbConnKey
	var vals []xlbFnatPort
	for _, a := range []netip.Addr{laddr1, laddr2} {
		for p := 1024; p <= 32767; p++ {
			keys = append(keys, fnatKey(realAddr(1), 8080, a, uint16(p), 6))
			vals = append(vals, xlbFnatPort{Client: addrKey(netip.MustParseAddr("198.51.100.1")), Cport: port16(uint16(p))})
		}
	}
	require.NoError(t, updateBatch(x.objs.FnatPorts, keys, vals))
	before := reasons(t, x)
	v, _ := run(t, ns, x, syn(41000).Bytes())
	assert.EqualValues(t, xdpDrop, v)
	after := reasons(t, x)
	assert.EqualValues(t, 1, after["fnat_no_port"]-before["fnat_no_port"])
	assert.Zero(t, countEntries(t, x.objs.HalfOpen), "no flow made")
	assert.Equal(t, len(keys), countEntries(t, x.objs.FnatPorts), "no port taken twice")

	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 5000, DstPort: 53, Payload: []byte("query")}
	v, _ = run(t, ns, x, q.Bytes())
	assert.EqualValues(t, xdpTX, v)
}

// With three ports in four of its only local address taken toward the
// real, new flows still find free ones (32 tries each: a flow is dropped
// with probability 0.75^32, 1e-4), never a taken one.
func TestFULLNATPortsMostlyTaken(t *testing.T) {
	ns, x := openFNATRoomy(t)
	apply(t, ns, x, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		LocalAddrs: []netip.Addr{laddr1},
		Reals:      []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}})
	taken := map[uint16]bool{}
	var keys []xlbConnKey
	var vals []xlbFnatPort
	for p := 1024; p <= 32767; p++ {
		if p%4 != 0 {
			taken[uint16(p)] = true
			keys = append(keys, fnatKey(realAddr(1), 8080, laddr1, uint16(p), 6))
			vals = append(vals, xlbFnatPort{Client: addrKey(netip.MustParseAddr("198.51.100.1")), Cport: port16(uint16(p))})
		}
	}
	require.NoError(t, updateBatch(x.objs.FnatPorts, keys, vals))
	for sport := uint16(20000); sport < 20200; sport++ {
		v, out := run(t, ns, x, syn(sport).Bytes())
		require.EqualValues(t, xdpTX, v, "client port %d", sport)
		lport := uint16(decode(t, out).tcp.SrcPort)
		require.False(t, taken[lport], "client port %d was given taken port %d", sport, lport)
		taken[lport] = true
	}
	assert.Zero(t, reasons(t, x)["fnat_no_port"])
}

// The sweep gives a port back once its flow is gone (evicted here), and
// keeps those of live flows.
func TestFULLNATSweepGivesPortsBack(t *testing.T) {
	ns, x := newFNATTest(t)
	ports := map[uint16]xlbConnKey{}
	for _, sport := range []uint16{41000, 41001, 41002} {
		v, out := run(t, ns, x, syn(sport).Bytes())
		require.EqualValues(t, xdpTX, v)
		d := decode(t, out)
		ports[sport] = fnatKey(realAddr(1), 8080, ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort), 6)
	}
	// Past the grace a new port has.
	for _, k := range ports {
		var e xlbFnatPort
		require.NoError(t, x.objs.FnatPorts.Lookup(&k, &e))
		e.Taken = 1
		require.NoError(t, x.objs.FnatPorts.Update(&k, &e, ebpf.UpdateExist))
	}
	// The middle flow is evicted from the half-open table.
	ck := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(41001), Dport: port16(80), Proto: 6}
	require.NoError(t, x.objs.HalfOpen.Delete(&ck))
	require.NoError(t, ns.Do(x.Sweep))
	var e xlbFnatPort
	k := ports[41001]
	assert.ErrorIs(t, x.objs.FnatPorts.Lookup(&k, &e), ebpf.ErrKeyNotExist, "the evicted flow's port is back")
	for _, sport := range []uint16{41000, 41002} {
		k := ports[sport]
		assert.NoError(t, x.objs.FnatPorts.Lookup(&k, &e), "a live flow keeps its port")
	}
	assert.Equal(t, 2, countEntries(t, x.objs.FnatPorts))
}

// ICMP errors about a FULLNAT flow are translated both ways: a router's
// "fragmentation needed" about the real's packet to local:lport goes to
// the client about VIP:80's; the client side's error about what the VIP
// sent goes to the real about what the real sent, from the local address.
func TestFULLNATICMPErrors(t *testing.T) {
	ns, x := newFNATTest(t)
	v, out := run(t, ns, x, syn(43000).Bytes())
	require.EqualValues(t, xdpTX, v)
	d := decode(t, out)
	local, lport := ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)

	// Toward the real: local:lport -> real:8080 was too big for a router
	// between them.
	sent := testutil.Frame{SrcMAC: srcMAC, DstMAC: realMAC(1), Src: local, Dst: realAddr(1), Proto: 6, SrcPort: lport, DstPort: 8080,
		TCPFlags: testutil.TCPAck, Payload: make([]byte, 1400)}
	router := netip.MustParseAddr("10.0.0.254")
	fragNeeded := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: router, Dst: local, Proto: 1,
		Payload: icmpError(3, 4, 1300, ipOf(sent.Bytes()))}
	v, out = run(t, ns, x, fragNeeded.Bytes())
	assert.EqualValues(t, xdpPass, v, "no route to the client here: the kernel sends it on")
	// What the client sent: client:43000 -> VIP:80.
	orig := syn(43000)
	orig.TCPFlags, orig.Payload = testutil.TCPAck, make([]byte, 1400)
	want := fragNeeded
	want.Src, want.Dst = vip, client
	want.Payload = icmpError(3, 4, 1300, ipOf(orig.Bytes()))
	assert.Equal(t, want.Bytes(), out)
	ip := ipOf(out)
	assert.Zero(t, testutil.Checksum(ip[:20], 0), "outer IP checksum")
	assert.Zero(t, testutil.Checksum(ip[20:], 0), "ICMP checksum")
	assert.Zero(t, testutil.Checksum(ip[28:48], 0), "quoted IP header checksum")
	dd := decode(t, out)
	require.NotNil(t, dd.icmp)
	assert.Equal(t, layers.CreateICMPv4TypeCode(3, 4), dd.icmp.TypeCode)

	// Toward the client: VIP:80 -> client:43000 was too big.
	seen := testutil.Frame{SrcMAC: dirMAC, DstMAC: clientMC, Src: vip, Dst: client, Proto: 6, SrcPort: 80, DstPort: 43000,
		TCPFlags: testutil.TCPAck, Payload: make([]byte, 1400)}
	clientRouter := netip.MustParseAddr("192.0.2.254")
	fromClient := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: clientRouter, Dst: vip, Proto: 1,
		Payload: icmpError(3, 4, 1300, ipOf(seen.Bytes()))}
	v, out = run(t, ns, x, fromClient.Bytes())
	require.EqualValues(t, xdpTX, v, "to the flow's real")
	// What the real sent: real:8080 -> local:lport; from the local
	// address, which the real reaches.
	realSent := seen
	realSent.Src, realSent.SrcPort, realSent.Dst, realSent.DstPort = realAddr(1), 8080, local, lport
	wantR := fromClient
	wantR.Src, wantR.Dst, wantR.DstMAC, wantR.SrcMAC = local, realAddr(1), realMAC(1), srcMAC
	wantR.Payload = icmpError(3, 4, 1300, ipOf(realSent.Bytes()))
	assert.Equal(t, wantR.Bytes(), out)
	ip = ipOf(out)
	assert.Zero(t, testutil.Checksum(ip[:20], 0), "outer IP checksum")
	assert.Zero(t, testutil.Checksum(ip[20:], 0), "ICMP checksum")
	assert.Equal(t, uint16(1300), binary.BigEndian.Uint16(ip[26:]), "next-hop MTU kept")
}

// TOA: with the service's toa on, the ACK that completes a FULLNAT
// handshake reaches the real with TCP option 254 (length 8: the client's
// port and address, DPVS's format) after its own options, lengths and
// checksums right (gopacket decodes it; the checksums recomputed
// independently); the SYN before it and the segments after do not carry
// it, nor does any segment of a service without toa.
func TestFULLNATTOA(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	svc := func(port uint16, toa bool) dataplane.Service {
		return dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: port, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr1}, TOA: toa,
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}}
	}
	apply(t, ns, x, svc(80, true), svc(81, false))
	st, err := x.Stats()
	require.NoError(t, err)
	assert.True(t, st.Services[0].TOA)

	toaOf := func(out []byte) []byte {
		t.Helper()
		d := decode(t, out)
		require.NotNil(t, d.tcp)
		for _, o := range d.tcp.Options {
			if o.OptionType == 254 {
				assert.EqualValues(t, 8, o.OptionLength)
				return o.OptionData
			}
		}
		return nil
	}
	handshake := func(dport, sport uint16) (ackOut []byte, local netip.Addr, lport uint16) {
		t.Helper()
		s := syn(sport)
		s.DstPort = dport
		v, out := run(t, ns, x, s.Bytes())
		require.EqualValues(t, xdpTX, v)
		assert.Nil(t, toaOf(out), "not on the SYN")
		d := decode(t, out)
		local, lport = ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
		synack := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: local,
			Proto: 6, SrcPort: 8080, DstPort: lport, TCPFlags: testutil.TCPSyn | testutil.TCPAck}
		run(t, ns, x, synack.Bytes())
		ack := s
		ack.TCPFlags = testutil.TCPAck
		v, out = run(t, ns, x, ack.Bytes())
		require.EqualValues(t, xdpTX, v)
		return out, local, lport
	}

	in := syn(41000)
	out, local, lport := handshake(80, 41000)
	require.Len(t, out, len(in.Bytes())+8, "the frame grew by the option")
	verifyChecksums(t, out)
	want := append(binary.BigEndian.AppendUint16(nil, 41000), client.AsSlice()...)
	assert.Equal(t, want, toaOf(out), "the client's port and address")
	d := decode(t, out)
	assert.Equal(t, local, ip4Of(d.ip.SrcIP))
	assert.EqualValues(t, lport, d.tcp.SrcPort)
	assert.Equal(t, realAddr(1), ip4Of(d.ip.DstIP))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.EqualValues(t, 7, d.tcp.DataOffset, "20 bytes of header and 8 of option")
	assert.Equal(t, realMAC(1).String(), d.eth.DstMAC.String())

	// The next segment (data) goes without it.
	data := syn(41000)
	data.TCPFlags, data.Payload = testutil.TCPAck, []byte("GET / HTTP/1.0\r\n\r\n")
	v, out := run(t, ns, x, data.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Nil(t, toaOf(out))
	assert.Len(t, out, len(data.Bytes()))

	// A service without toa: none.
	out, _, _ = handshake(81, 41001)
	assert.Nil(t, toaOf(out))
	assert.Len(t, out, len(in.Bytes()))
}
