package xdp

import (
	"encoding/binary"
	"net"
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

var laddr6a, laddr6b = netip.MustParseAddr("2001:db8::50"), netip.MustParseAddr("2001:db8::51")

// newFNAT6Test is a director forwarding [vip6]:80/TCP to real6(1):8080 by
// FULLNAT from two IPv6 local addresses, and [vip6]:5301/UDP to
// real6(1):5300 from one.
func newFNAT6Test(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{real6(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr6a, laddr6b},
			Reals:      []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 5301, Protocol: lvs.UDP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr6a},
			Reals:      []dataplane.Real{{Addr: real6(1), Port: 5300, Weight: 1, Forward: lvs.FNAT}}},
	)
	return ns, x
}

// segment6 is an IPv6 frame src:sport -> dst:dport built by gopacket
// (its own checksums): TCP with flags and payload, or UDP.
func segment6(t *testing.T, src, dst netip.Addr, sport, dport uint16, udp bool, flags func(*layers.TCP), payload string) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	var l4 gopacket.SerializableLayer
	if udp {
		ip.NextHeader = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		require.NoError(t, u.SetNetworkLayerForChecksum(ip))
		l4 = u
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 4096}
		flags(tcp)
		require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
		l4 = tcp
	}
	eth := &layers.Ethernet{SrcMAC: clientMC, DstMAC: dirMAC, EthernetType: layers.EthernetTypeIPv6}
	b := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(b, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, l4, gopacket.Payload(payload)))
	return b.Bytes()
}

func synFlags(tcp *layers.TCP) { tcp.SYN = true }
func ackFlags(tcp *layers.TCP) { tcp.ACK = true }

// decoded6 is an IPv6 frame as gopacket reads it, with its L4 checksum
// recomputed by gopacket and compared with the one it carries.
type decoded6 struct {
	ip    *layers.IPv6
	tcp   *layers.TCP
	udp   *layers.UDP
	sumOK bool
}

func decode6(t *testing.T, frame []byte) decoded6 {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "gopacket decodes the output")
	var d decoded6
	var ok bool
	d.ip, ok = pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	require.True(t, ok)
	var carried uint16
	var l4 gopacket.SerializableLayer
	var payload []byte
	if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		d.tcp, carried, l4, payload = tcp, tcp.Checksum, tcp, tcp.Payload
		require.NoError(t, tcp.SetNetworkLayerForChecksum(d.ip))
	} else {
		d.udp, ok = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		require.True(t, ok, "TCP or UDP: %v", pkt)
		carried, l4, payload = d.udp.Checksum, d.udp, d.udp.Payload
		require.NoError(t, d.udp.SetNetworkLayerForChecksum(d.ip))
	}
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, l4, gopacket.Payload(payload)))
	if d.tcp != nil {
		d.sumOK = carried == d.tcp.Checksum
	} else {
		d.sumOK = carried == d.udp.Checksum
	}
	return d
}

func ip6Of(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip); return a }

// FULLNAT for IPv6 (issue 13): the client's packets leave with both ends
// rewritten (an IPv6 local address and a port of the flow's own; the
// real's address and port), the flow keeping them; the real's replies to
// that address and port go back as the VIP's to the client; ICMPv6
// errors are translated both ways; two flows never hold one port. Every
// output is decoded by gopacket, its checksum recomputed.
func TestFULLNAT6GoldenPackets(t *testing.T) {
	ns, x := newFNAT6Test(t)

	in := segment6(t, client6, vip6, 41000, 80, false, synFlags, "GET / HTTP/1.0\r\n\r\n")
	v, out := run(t, ns, x, in)
	require.EqualValues(t, xdpTX, v)
	d := decode6(t, out)
	require.NotNil(t, d.tcp)
	assert.True(t, d.sumOK, "the TCP checksum, recomputed")
	local, lport := ip6Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
	assert.Contains(t, []netip.Addr{laddr6a, laddr6b}, local, "the source is one of the service's local addresses")
	assert.GreaterOrEqual(t, lport, uint16(1024))
	assert.LessOrEqual(t, lport, uint16(32767), "local ports stay below the ephemeral range")
	assert.Equal(t, real6(1), ip6Of(d.ip.DstIP))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.Equal(t, []byte(realMAC(1)), out[:6])
	assert.Equal(t, []byte(srcMAC), out[6:12])
	// The rest is the client's: only addresses, ports and the checksum
	// moved.
	want := segment6(t, local, real6(1), lport, 8080, false, synFlags, "GET / HTTP/1.0\r\n\r\n")
	copy(want[:12], out[:12])
	assert.Equal(t, want, out)

	ack := segment6(t, client6, vip6, 41000, 80, false, ackFlags, "")
	v, out = run(t, ns, x, ack)
	require.EqualValues(t, xdpTX, v)
	d2 := decode6(t, out)
	assert.Equal(t, local, ip6Of(d2.ip.SrcIP), "the flow keeps its local address")
	assert.EqualValues(t, lport, d2.tcp.SrcPort, "and its port")
	assert.True(t, d2.sumOK)

	// The real's reply to local:lport goes back as [vip6]:80 ->
	// client:41000 (no route to the client in this namespace: the kernel
	// sends it on).
	reply := segment6(t, real6(1), local, 8080, lport, false, func(tcp *layers.TCP) { tcp.SYN, tcp.ACK = true, true }, "hello")
	before := reasons(t, x)
	v, out = run(t, ns, x, reply)
	assert.EqualValues(t, xdpPass, v)
	dr := decode6(t, out)
	assert.Equal(t, vip6, ip6Of(dr.ip.SrcIP), "from the VIP")
	assert.EqualValues(t, 80, dr.tcp.SrcPort)
	assert.Equal(t, client6, ip6Of(dr.ip.DstIP), "to the client")
	assert.EqualValues(t, 41000, dr.tcp.DstPort)
	assert.True(t, dr.sumOK, "the reply's TCP checksum, recomputed")
	assert.Equal(t, []byte("hello"), dr.tcp.Payload)
	assert.EqualValues(t, 1, reasons(t, x)["nat_reply"]-before["nat_reply"])

	// To another local port: no flow's; untouched.
	stray := segment6(t, real6(1), local, 8080, lport^1, false, ackFlags, "")
	v, out = run(t, ns, x, stray)
	assert.EqualValues(t, xdpPass, v)
	assert.Equal(t, stray, out[:len(stray)])

	// UDP, both ways.
	v, out = run(t, ns, x, segment6(t, client6, vip6, 5000, 5301, true, nil, "query"))
	require.EqualValues(t, xdpTX, v)
	du := decode6(t, out)
	require.NotNil(t, du.udp)
	assert.True(t, du.sumOK, "the UDP checksum, recomputed")
	assert.Equal(t, laddr6a, ip6Of(du.ip.SrcIP), "the UDP service's one local address")
	assert.Equal(t, real6(1), ip6Of(du.ip.DstIP))
	assert.EqualValues(t, 5300, du.udp.DstPort)
	v, out = run(t, ns, x, segment6(t, real6(1), laddr6a, 5300, uint16(du.udp.SrcPort), true, nil, "answer"))
	assert.EqualValues(t, xdpPass, v)
	dua := decode6(t, out)
	assert.Equal(t, vip6, ip6Of(dua.ip.SrcIP))
	assert.EqualValues(t, 5301, dua.udp.SrcPort)
	assert.Equal(t, client6, ip6Of(dua.ip.DstIP))
	assert.EqualValues(t, 5000, dua.udp.DstPort)
	assert.True(t, dua.sumOK)

	// Packet Too Big from a router on the way to the real, about what
	// local:lport sent: to the client about client:41000 -> [vip6]:80,
	// from the VIP.
	router := netip.MustParseAddr("2001:db8:7::fe")
	sent := quote6(t, local, real6(1), lport, 8080, 1400)
	ptb := icmp6Frame(t, router, local, 2, 0, 1280, sent)
	v, out = run(t, ns, x, ptb)
	assert.Contains(t, []uint32{xdpPass, xdpTX, xdpRedirect}, v)
	out = out[:len(ptb)]
	assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
	asSent := quote6(t, client6, vip6, 41000, 80, 1400)
	wantP := icmp6Frame(t, vip6, client6, 2, 0, 1280, asSent)
	copy(wantP[:12], out[:12])
	wantP[14+7] = out[14+7] // the hop limit, decremented when routed
	qsum := 14 + 40 + 8 + 40 + 16
	copy(wantP[qsum:qsum+2], sent[40+16:40+18]) // the quoted TCP checksum stays
	wantP[14+40+2], wantP[14+40+3] = out[14+40+2], out[14+40+3]
	assert.Equal(t, wantP, out, "to the client, quoting its own segment, from the VIP")

	// Packet Too Big from the client's side about what the VIP sent
	// ([vip6]:80 -> client:41000): to the real about what it sent
	// (real:8080 -> local:lport), from the local address.
	seen := quote6(t, vip6, client6, 80, 41000, 1400)
	ptbIn := icmp6Frame(t, netip.MustParseAddr("2001:db8:5::fe"), vip6, 2, 0, 1280, seen)
	v, out = run(t, ns, x, ptbIn)
	require.Contains(t, []uint32{xdpTX, xdpRedirect}, v, "to the flow's real")
	out = out[:len(ptbIn)]
	assert.Equal(t, []byte(realMAC(1)), out[:6])
	assert.True(t, icmp6SumOK(out), "the ICMPv6 checksum, recomputed")
	realSent := quote6(t, real6(1), local, 8080, lport, 1400)
	wantR := icmp6Frame(t, local, real6(1), 2, 0, 1280, realSent)
	copy(wantR[:12], out[:12])
	copy(wantR[qsum:qsum+2], seen[40+16:40+18])
	wantR[14+40+2], wantR[14+40+3] = out[14+40+2], out[14+40+3]
	assert.Equal(t, wantR, out, "to the real from the local address, quoting what the real sent")

	// Two flows never hold one port: 500 more flows, 500 more pairs.
	pairs := map[netip.AddrPort]bool{netip.AddrPortFrom(local, lport): true}
	for i := range 500 {
		v, out := run(t, ns, x, segment6(t, client6, vip6, uint16(42000+i), 80, false, synFlags, ""))
		require.EqualValues(t, xdpTX, v)
		d := decode6(t, out)
		pairs[netip.AddrPortFrom(ip6Of(d.ip.SrcIP), uint16(d.tcp.SrcPort))] = true
	}
	assert.Len(t, pairs, 501, "a (local address, port) pair each")
	assert.Equal(t, 502, countEntries(t, x.objs.FnatPorts6), "a port entry each (and the UDP flow's)")
}

// The sweep gives an IPv6 flow's port back once the flow is gone
// (evicted here), and keeps those of live flows.
func TestFULLNAT6SweepGivesPortsBack(t *testing.T) {
	ns, x := newFNAT6Test(t)
	ports := map[uint16]xlbConnKey6{}
	for _, sport := range []uint16{41000, 41001, 41002} {
		v, out := run(t, ns, x, segment6(t, client6, vip6, sport, 80, false, synFlags, ""))
		require.EqualValues(t, xdpTX, v)
		d := decode6(t, out)
		ports[sport] = xlbConnKey6{Src: words6(real6(1)), Dst: words6(ip6Of(d.ip.SrcIP)), Sport: port16(8080),
			Dport: port16(uint16(d.tcp.SrcPort)), Proto: 6}
	}
	for _, k := range ports { // past the grace a new port has
		var e xlbFnatPort
		require.NoError(t, x.objs.FnatPorts6.Lookup(&k, &e))
		e.Taken = 1
		require.NoError(t, x.objs.FnatPorts6.Update(&k, &e, ebpf.UpdateExist))
	}
	ck := xlbConnKey6{Src: words6(client6), Dst: words6(vip6), Sport: port16(41001), Dport: port16(80), Proto: 6}
	require.NoError(t, x.objs.HalfOpen6.Delete(&ck))
	require.NoError(t, ns.Do(x.Sweep))
	var e xlbFnatPort
	k := ports[41001]
	assert.ErrorIs(t, x.objs.FnatPorts6.Lookup(&k, &e), ebpf.ErrKeyNotExist, "the evicted flow's port is back")
	for _, sport := range []uint16{41000, 41002} {
		k := ports[sport]
		assert.NoError(t, x.objs.FnatPorts6.Lookup(&k, &e), "a live flow keeps its port")
	}
	assert.Equal(t, 2, countEntries(t, x.objs.FnatPorts6))
}

// FULLNAT for IPv6 end to end: real HTTP and UDP over IPv6 to reals that
// have no IPv6 route to the client's network at all (its fd75::/64 is
// behind the director, and the reals have no default route): the reals
// see the director's IPv6 local address, and their answers reach the
// client as the VIP's. Native and generic XDP.
func TestFULLNAT6EndToEnd(t *testing.T) {
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
			realAddrs := ipv6NATTopology(t, topo)
			for _, ns := range topo.Reals {
				require.NoError(t, ns.IP("-6", "route", "del", "default"))
				out, err := ns.Command("ip", "-6", "route", "get", "fd75::1").CombinedOutput()
				require.Error(t, err, "the real must have no route to the client: %s", out)
			}
			// The local address is the director's (it answers neighbour
			// solicitations for it).
			local := netip.MustParseAddr("fd77::50")
			addrNoDAD(t, topo.Director, local.String()+"/64")
			require.NoError(t, topo.ServeUDPOn(netip.IPv6Unspecified(), 5300))
			web, dns := fnatServices(vip, local, realAddrs)
			r.apply(t, web, dns)
			r.waitResolved(t)

			c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: topo.Client.DialContext, DisableKeepAlives: true}}
			url := "http://" + netip.AddrPortFrom(vip, 80).String() + "/"
			assert.Equal(t, []string{"r1", "r2", "r1", "r2"}, getN(t, c, url, 4))

			// The real sees the local address, from a port below the
			// ephemeral range.
			peer := peerOf(t, c, url)
			assert.Equal(t, local, peer.Addr(), "the real's peer is the local address, not the client")
			assert.Less(t, peer.Port(), uint16(32768))

			downloadChecked(t, c, url, 8<<20)
			assert.Equal(t, []string{"r1:q0", "r2:q1", "r1:q2", "r2:q3"}, udpAnswersFrom(t, topo, vip, 4))

			st, err := r.x.Stats()
			require.NoError(t, err)
			assert.NotZero(t, st.Reasons["nat_reply"], "replies were translated by XDP")
			assert.Zero(t, st.Reasons["fnat_no_port"])
		})
	}
}

// TOA for IPv6 clients (issue 13), DPVS's option for them (kind 254,
// length 20: the client's port and IPv6 address): with the service's toa
// on, the ACK that completes the handshake carries it to an IPv6 real
// (FULLNAT) and, translated, to an IPv4 real (NAT64, as DPVS sends it);
// lengths and checksums right by gopacket's recomputation and testutil's;
// the SYN and the segments after go without it, and so does the ACK of
// a service without toa. A handshake ACK whose TCP header leaves no room
// goes without it, untouched but for the rewrite.
func TestFULLNAT6TOA(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{real6(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}, realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	svc := func(port uint16, toa bool, nat64 bool) dataplane.Service {
		s := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: port, Protocol: lvs.TCP}, Scheduler: "rr",
			LocalAddrs: []netip.Addr{laddr6a}, TOA: toa,
			Reals: []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}}
		if nat64 {
			s.LocalAddrs, s.Reals[0].Addr = []netip.Addr{laddr1}, realAddr(1)
		}
		return s
	}
	apply(t, ns, x, svc(80, true, false), svc(81, false, false), svc(82, true, true))

	// toaOf is the option's data in a TCP segment gopacket decoded.
	toaOf := func(tcp *layers.TCP) []byte {
		t.Helper()
		for _, o := range tcp.Options {
			if o.OptionType == 254 {
				assert.EqualValues(t, 20, o.OptionLength)
				return o.OptionData
			}
		}
		return nil
	}
	// handshake: the client's SYN (with options: MSS, SACK permitted,
	// timestamps, window scale: 20 bytes, as Linux sends), the real's
	// SYN-ACK, and the client's ACK (12 bytes of timestamps), whose
	// output it returns.
	synOpts := func(tcp *layers.TCP) {
		tcp.SYN = true
		tcp.Options = []layers.TCPOption{{OptionType: 2, OptionLength: 4, OptionData: []byte{5, 0xa0}}, {OptionType: 4, OptionLength: 2},
			{OptionType: 8, OptionLength: 10, OptionData: make([]byte, 8)}, {OptionType: 1}, {OptionType: 3, OptionLength: 3, OptionData: []byte{7}}}
	}
	ackOpts := func(tcp *layers.TCP) {
		tcp.ACK = true
		tcp.Options = []layers.TCPOption{{OptionType: 1}, {OptionType: 1}, {OptionType: 8, OptionLength: 10, OptionData: make([]byte, 8)}}
	}
	handshake := func(vport, sport uint16, ack func(*layers.TCP)) (in, out []byte) {
		t.Helper()
		v, o := run(t, ns, x, segment6(t, client6, vip6, sport, vport, false, synOpts, ""))
		require.EqualValues(t, xdpTX, v)
		var local netip.Addr
		var lport uint16
		if vport == 82 {
			d := decode(t, o)
			assert.Nil(t, toaOf(d.tcp), "not on the SYN")
			local, lport = ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
			synack := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: local,
				Proto: 6, SrcPort: 8080, DstPort: lport, TCPFlags: testutil.TCPSyn | testutil.TCPAck}
			run(t, ns, x, synack.Bytes())
		} else {
			d := decode6(t, o)
			assert.Nil(t, toaOf(d.tcp), "not on the SYN")
			local, lport = ip6Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
			run(t, ns, x, segment6(t, real6(1), local, 8080, lport, false, func(tcp *layers.TCP) { tcp.SYN, tcp.ACK = true, true }, ""))
		}
		in = segment6(t, client6, vip6, sport, vport, false, ack, "")
		v, out = run(t, ns, x, in)
		require.EqualValues(t, xdpTX, v)
		return in, out
	}
	want := append(binary.BigEndian.AppendUint16(nil, 41000), client6.AsSlice()...)

	// FULLNAT to an IPv6 real.
	in, out := handshake(80, 41000, ackOpts)
	require.Len(t, out, len(in)+20, "the frame grew by the option")
	d := decode6(t, out)
	assert.True(t, d.sumOK, "the TCP checksum, recomputed")
	assert.Equal(t, want, toaOf(d.tcp), "the client's port and IPv6 address")
	assert.Equal(t, laddr6a, ip6Of(d.ip.SrcIP))
	assert.Equal(t, real6(1), ip6Of(d.ip.DstIP))
	assert.EqualValues(t, 8080, d.tcp.DstPort)
	assert.EqualValues(t, 20+12+20, d.ip.Length, "the payload length: the header, its options and TOA")
	assert.EqualValues(t, (20+12+20)/4, d.tcp.DataOffset)
	assert.Equal(t, realMAC(1).String(), net.HardwareAddr(out[:6]).String())
	// The timestamps stay where they were, before the option.
	assert.EqualValues(t, 8, d.tcp.Options[2].OptionType)

	// The next segment (data) goes without it.
	v, out := run(t, ns, x, segment6(t, client6, vip6, 41000, 80, false, ackFlags, "GET / HTTP/1.0\r\n\r\n"))
	require.EqualValues(t, xdpTX, v)
	d = decode6(t, out)
	assert.Nil(t, toaOf(d.tcp))
	assert.True(t, d.sumOK)

	// A service without toa: none.
	in, out = handshake(81, 41001, ackOpts)
	assert.Len(t, out, len(in))
	assert.Nil(t, toaOf(decode6(t, out).tcp))

	// A TCP header of 44 bytes leaves no room (60 at most): as it is.
	full := func(tcp *layers.TCP) {
		tcp.ACK = true
		tcp.Options = []layers.TCPOption{{OptionType: 1}, {OptionType: 1}, {OptionType: 8, OptionLength: 10, OptionData: make([]byte, 8)},
			{OptionType: 5, OptionLength: 10, OptionData: make([]byte, 8)}, {OptionType: 1}, {OptionType: 1}, {OptionType: 5, OptionLength: 2}}
	}
	in, out = handshake(80, 41002, full)
	assert.Len(t, out, len(in))
	d = decode6(t, out)
	assert.Nil(t, toaOf(d.tcp))
	assert.True(t, d.sumOK)
	assert.Equal(t, real6(1), ip6Of(d.ip.DstIP), "rewritten all the same")

	// NAT64: the option for the IPv6 client in the IPv4 segment.
	in, out = handshake(82, 41000, ackOpts)
	require.Len(t, out, len(in)-20+20, "IPv6's header became IPv4's, 20 bytes shorter, and the option 20 longer")
	verifyChecksums(t, out)
	d4 := decode(t, out)
	assert.Equal(t, want, toaOf(d4.tcp), "the IPv6 client's port and address, to the IPv4 real")
	assert.Equal(t, laddr1, ip4Of(d4.ip.SrcIP))
	assert.Equal(t, realAddr(1), ip4Of(d4.ip.DstIP))
	assert.EqualValues(t, 20+20+12+20, d4.ip.Length)
	v, out = run(t, ns, x, segment6(t, client6, vip6, 41000, 82, false, ackFlags, "GET / HTTP/1.0\r\n\r\n"))
	require.EqualValues(t, xdpTX, v)
	assert.Nil(t, toaOf(decode(t, out).tcp), "not on the data after it")
}
