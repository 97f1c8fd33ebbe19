package xdp

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
	"github.com/xlbproject/xlb/pkg/syncd"
)

var (
	vip6    = netip.MustParseAddr("2001:db8:1::100")
	client6 = netip.MustParseAddr("2001:db8:5::7")
)

func real6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(10 + i)})
}

// frame6 is an IPv6 TCP frame to dst built by gopacket (checksums its
// own), with ext, raw extension headers, between the IPv6 header and TCP
// (ext's first byte's next-header is rewritten to chain them; nextHdr is
// the first one's type).
func frame6(t *testing.T, dst netip.Addr, sport uint16, syn, ack bool, nextHdr layers.IPProtocol, ext []byte) []byte {
	t.Helper()
	return frame6From(t, client6, dst, sport, syn, ack, nextHdr, ext)
}

// frame6From is frame6 from src.
func frame6From(t *testing.T, src, dst netip.Addr, sport uint16, syn, ack bool, nextHdr layers.IPProtocol, ext []byte) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, SYN: syn, ACK: ack, Seq: 1000, Window: 4096}
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	seg := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(seg, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, tcp, gopacket.Payload("hello")))
	if len(ext) > 0 {
		ip.NextHeader = nextHdr
	}
	out := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6}
	require.NoError(t, gopacket.SerializeLayers(out, gopacket.SerializeOptions{FixLengths: true}, eth, ip, gopacket.Payload(append(bytes.Clone(ext), seg.Bytes()...))))
	return out.Bytes()
}

// newDR6Test is a director forwarding [vip6]:80/TCP by DR to real6(1)
// and real6(2), rr.
func newDR6Test(t *testing.T) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
	for i := 1; i <= 2; i++ {
		res[real6(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: real6(i), Port: 80, Weight: 1, Forward: lvs.DR})
	}
	x := openTest(t, ns, res)
	apply(t, ns, x, svc)
	return ns, x
}

// newNAT66Test is a director forwarding [vip6]:80/TCP by NAT66 to
// [real6(1)]:8080.
func newNAT66Test(t *testing.T) (*testutil.NS, *Dataplane) {
	return newOneNATReal(t, vip6, real6(1), "net.ipv6.conf.all.forwarding")
}

// newOneNATReal is a director forwarding VIP:80/TCP by NAT to real:8080,
// forwarding (the sysctl that turns its family's on) on.
func newOneNATReal(t *testing.T, vip, real netip.Addr, forwarding string) (*testutil.NS, *Dataplane) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.Sysctl(forwarding, "1"))
	res := staticResolver{real: {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		Reals: []dataplane.Real{{Addr: real, Port: 8080, Weight: 1, Forward: lvs.NAT}}})
	return ns, x
}

// IPv6 DR in XDP: a flow's packets go to one real, the frame re-addressed
// and nothing else touched (gopacket decodes it, its checksum still the
// sender's); extension headers are walked; a fragment or a cut header to
// a VIP is a counted drop; ICMPv6 and traffic for no VIP go to the
// kernel; the flow is listed with its IPv6 addresses and counted.
func TestIPv6DRGoldenPackets(t *testing.T) {
	ns, x := newDR6Test(t)

	forwarded := func(in []byte, what string) net.HardwareAddr {
		t.Helper()
		v, out := run(t, ns, x, in)
		require.Contains(t, []uint32{xdpTX, xdpRedirect}, v, "%s: forwarded", what)
		out = out[:len(in)]
		assert.Equal(t, []byte(srcMAC), out[6:12], "%s: from the egress interface's MAC", what)
		assert.Equal(t, in[12:], out[12:], "%s: the IPv6 packet untouched", what)
		pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
		require.Nil(t, pkt.ErrorLayer(), "%s: decodes", what)
		tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		require.True(t, ok, "%s: TCP inside", what)
		ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
		// The checksum gopacket computes over what left equals the one
		// the segment carries: nothing the checksum covers changed.
		carried := tcp.Checksum
		buf := gopacket.NewSerializeBuffer()
		require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)))
		assert.Equal(t, carried, tcp.Checksum, "%s: the TCP checksum still right", what)
		return net.HardwareAddr(out[0:6])
	}
	dropped := func(in []byte, reason, what string) {
		t.Helper()
		before := reasons(t, x)
		v, _ := run(t, ns, x, in)
		assert.EqualValues(t, xdpDrop, v, what)
		assert.Equal(t, before[reason]+1, reasons(t, x)[reason], "%s: counted as %s", what, reason)
	}
	passed := func(in []byte, what string) {
		t.Helper()
		v, _ := run(t, ns, x, in)
		assert.EqualValues(t, xdpPass, v, what)
	}

	first := forwarded(frame6(t, vip6, 40001, true, false, 0, nil), "SYN")
	assert.Equal(t, first, forwarded(frame6(t, vip6, 40001, false, true, 0, nil), "ACK"), "the flow's real")
	second := forwarded(frame6(t, vip6, 40002, true, false, 0, nil), "another flow's SYN")
	assert.NotEqual(t, first, second, "rr: the next real")
	assert.ElementsMatch(t, []net.HardwareAddr{realMAC(1), realMAC(2)}, []net.HardwareAddr{first, second})

	// Hop-by-hop (8 bytes of padding options), then destination options
	// (16 bytes), then TCP: the same flow, the same real.
	hop := []byte{byte(layers.IPProtocolIPv6Destination), 0, 1, 4, 0, 0, 0, 0}
	dst := []byte{byte(layers.IPProtocolTCP), 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	assert.Equal(t, first, forwarded(frame6(t, vip6, 40001, false, true, layers.IPProtocolIPv6HopByHop, append(hop, dst...)), "ACK after extension headers"))

	// A fragment header: the ports may not be there.
	frag := []byte{byte(layers.IPProtocolTCP), 0, 0, 1, 0, 0, 0, 42}
	dropped(frame6(t, vip6, 40003, true, false, layers.IPProtocolIPv6Fragment, frag), "fragment", "a fragment to a VIP")
	// Cut inside the TCP header.
	cut := frame6(t, vip6, 40004, true, false, 0, nil)
	dropped(cut[:14+40+10], "truncated", "a TCP header cut short")
	passed(frame6(t, netip.MustParseAddr("2001:db8:9::1"), 40005, true, false, 0, nil), "not for a VIP")
	icmp := frame6(t, vip6, 0, false, false, 0, nil)
	icmp[14+6] = byte(layers.IPProtocolICMPv6)
	passed(icmp, "ICMPv6 to a VIP: the kernel's")

	conns, err := x.Conns()
	require.NoError(t, err)
	var listed []string
	for _, c := range conns {
		listed = append(listed, c.Client.String()+" "+c.Virtual.String()+" "+c.State)
	}
	assert.ElementsMatch(t, []string{
		"[2001:db8:5::7]:40001 [2001:db8:1::100]:80 ESTABLISHED",
		"[2001:db8:5::7]:40002 [2001:db8:1::100]:80 SYN_RECV",
	}, listed)
	require.NoError(t, x.Sweep())
	st, err := x.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 2, activeConns(st.Services[0]), "both flows active, after a sweep that counted them")
	assert.EqualValues(t, 2, st.Services[0].Conns)
}

// What the XDP data plane does not do for IPv6 yet is refused by name, so
// that --dataplane auto runs such a file on IPVS.
func TestIPv6CapsSayWhatIsMissing(t *testing.T) {
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		Reals: []dataplane.Real{{Addr: real6(1), Port: 80, Weight: 1, Forward: lvs.DR}}}
	require.NoError(t, Caps.Validate([]dataplane.Service{svc}))
	nat := svc
	nat.Reals = []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.NAT}}
	require.NoError(t, Caps.Validate([]dataplane.Service{nat}))
	tun := svc
	tun.Reals = []dataplane.Real{{Addr: real6(1), Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: lvs.Tunnel{Type: lvs.TunGUE, Port: 6080}}}
	require.NoError(t, Caps.Validate([]dataplane.Service{tun}))
	fnat := svc
	fnat.LocalAddrs = []netip.Addr{netip.MustParseAddr("2001:db8::1")}
	fnat.Reals = []dataplane.Real{{Addr: real6(1), Port: 80, Weight: 1, Forward: lvs.FNAT}}
	require.NoError(t, Caps.Validate([]dataplane.Service{fnat}))
	fnat.LocalAddrs = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	err := Caps.Validate([]dataplane.Service{fnat})
	assert.ErrorContains(t, err, "local address 10.0.0.1 is IPv4, and no FULLNAT real is: a local address is of its reals' family")
	assert.ErrorContains(t, err, "FULLNAT to IPv6 reals needs an IPv6 local address, and none is listed")
	// NAT64 (DPVS's): IPv4 reals of an IPv6 service, from IPv4 local
	// addresses; and the reverse (NAT46), but without TOA.
	nat64 := fnat
	nat64.Reals = []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.FNAT}}
	require.NoError(t, Caps.Validate([]dataplane.Service{nat64}))
	nat46 := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		LocalAddrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}, Reals: []dataplane.Real{{Addr: real6(1), Port: 80, Weight: 1, Forward: lvs.FNAT}}}
	require.NoError(t, Caps.Validate([]dataplane.Service{nat46}))
	nat46.TOA = true
	assert.ErrorContains(t, Caps.Validate([]dataplane.Service{nat46}), "toa to an IPv6 real of an IPv4 service (NAT46) is not supported by the XDP data plane")
	// A tunnel across families is taken (IPv6 in IPv4); DR or NAT across
	// families is refused.
	across := svc
	across.Reals = []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.TUN}}
	require.NoError(t, Caps.Validate([]dataplane.Service{across}))
	across.Reals[0].Forward = lvs.DR
	assert.ErrorContains(t, Caps.Validate([]dataplane.Service{across}), "an IPv4 real of an IPv6 service needs tunnel forwarding")
}

// Persistence on an IPv6 service, as IPVS keeps it: the template is the
// client's address cut to the service's prefix length (-M 64), so
// clients of one /64 go to one real and a client of another /64 is
// scheduled; a master sends the template as IPVS does (client port 0,
// TEMPLATE).
func TestIPv6Persistence(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		Persistence: 300 * time.Second, PersistenceMask: 64}
	for i := 1; i <= 2; i++ {
		res[real6(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: real6(i), Port: 80, Weight: 1, Forward: lvs.DR})
	}
	require.NoError(t, Caps.Validate([]dataplane.Service{svc}))
	x := openTest(t, ns, res)
	apply(t, ns, x, svc)
	syn := func(src string, port uint16) string {
		t.Helper()
		v, out := run(t, ns, x, frame6From(t, netip.MustParseAddr(src), vip6, port, true, false, 0, nil))
		require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
		return net.HardwareAddr(out[:6]).String()
	}
	a := syn("2001:db8:5::7", 1000)
	assert.Equal(t, a, syn("2001:db8:5::8", 1001), "another client of the same /64: the template's real")
	assert.Equal(t, a, syn("2001:db8:5:0:ffff::1", 1002), "anywhere in the /64")
	b := syn("2001:db8:6::7", 1003)
	assert.NotEqual(t, a, b, "another /64: scheduled (rr: the next real)")
	assert.Equal(t, b, syn("2001:db8:6::9", 1004))

	var tmpls []string
	require.NoError(t, x.SyncRecords(func(r syncd.Record) {
		if r.IsTemplate() {
			tmpls = append(tmpls, r.Client.String()+" "+r.Virtual.String())
		}
	}))
	assert.ElementsMatch(t, []string{"[2001:db8:5::]:0 [2001:db8:1::100]:80", "[2001:db8:6::]:0 [2001:db8:1::100]:80"}, tmpls)
	st, err := x.Stats()
	require.NoError(t, err)
	assert.Equal(t, lvs.Netmask(64), st.Services[0].PersistenceMask)
}

// The template's client is the client's address cut to the prefix length,
// whatever the length: within a word, at a word's edge, whole words, all of
// it (Go's netip.Prefix.Masked cuts the same address independently).
func TestIPv6PersistencePrefixes(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{real6(1): NextHop{Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	client := netip.MustParseAddr("2001:db8:f0f0:a5a5:ffff:eeee:dddd:cccc")
	for i, bits := range []int{1, 8, 31, 32, 33, 56, 64, 96, 100, 127, 128} {
		b := vip6.As16()
		b[15] += byte(1 + i)
		v := netip.AddrFrom16(b)
		svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: v, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Persistence: 300 * time.Second, PersistenceMask: lvs.Netmask(bits),
			Reals: []dataplane.Real{{Addr: real6(1), Port: 80, Weight: 1, Forward: lvs.DR}}}
		require.NoError(t, Caps.Validate([]dataplane.Service{svc}))
		apply(t, ns, x, svc)
		verdict, _ := run(t, ns, x, frame6From(t, client, v, 1000, true, false, 0, nil))
		require.Contains(t, []uint32{xdpTX, xdpRedirect}, verdict)
		var got []string
		require.NoError(t, x.SyncRecords(func(r syncd.Record) {
			if r.IsTemplate() && r.Virtual.Addr() == v {
				got = append(got, r.Client.Addr().String())
			}
		}))
		want := netip.PrefixFrom(client, bits).Masked().Addr().String()
		assert.Equal(t, []string{want}, got, "prefix length %d", bits)
	}
}

// IPv6 flows go through connection sync as IPv4's do: a master sends its
// established IPv6 flow, a backup installs it in its IPv6 table (listed,
// counted) and forwards the flow's next packet to the real the master
// chose, where its own scheduler would have chosen another; it does not
// send the flow back until a packet has touched it.
func TestSyncIPv6Flows(t *testing.T) {
	requireRoot(t)
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
	res := staticResolver{}
	for i := 1; i <= 2; i++ {
		res[real6(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: real6(i), Port: 80, Weight: 1, Forward: lvs.DR})
	}
	nsA, _ := testNS(t)
	master := openTest(t, nsA, res)
	apply(t, nsA, master, svc)
	// The master's second flow goes to its second real.
	for _, port := range []uint16{41000, 41001} {
		for _, syn := range []bool{true, false} {
			v, _ := run(t, nsA, master, frame6(t, vip6, port, syn, !syn, 0, nil))
			require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
		}
	}
	var recs []ipvssync.Conn
	require.NoError(t, master.SyncRecords(func(r syncd.Record) { recs = append(recs, r.Conn) }))
	require.Len(t, recs, 2)
	var sent ipvssync.Conn
	for _, c := range recs {
		assert.Equal(t, vip6, c.Virtual.Addr())
		assert.Equal(t, client6, c.Client.Addr())
		if c.Client.Port() == 41001 {
			sent = c
		}
	}
	require.NotZero(t, sent.Client.Port())

	nsB, _ := testNS(t)
	backup := openTest(t, nsB, res)
	apply(t, nsB, backup, svc)
	got, err := backup.SyncInstall([]ipvssync.Conn{sent})
	require.NoError(t, err)
	assert.Equal(t, 1, got.Installed, "installed (skipped: %s)", got.Reason)
	conns, err := backup.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 1)
	assert.Equal(t, sent.Client, conns[0].Client)
	assert.Equal(t, sent.Dest, conns[0].Real)
	assert.Equal(t, "ESTABLISHED", conns[0].State)
	var back []ipvssync.Conn
	require.NoError(t, backup.SyncRecords(func(r syncd.Record) { back = append(back, r.Conn) }))
	assert.Empty(t, back, "a flow installed from the master is the master's to send")

	_, out := run(t, nsB, backup, frame6(t, vip6, 41001, false, true, 0, nil))
	want := realMAC(1)
	if sent.Dest.Addr() == real6(2) {
		want = realMAC(2)
	}
	assert.Equal(t, []byte(want), out[:6], "the flow's next packet to the master's real")
	// A packet touches the flow's time once a second (conn_touch): one
	// later than that makes the flow this director's to send.
	time.Sleep(1100 * time.Millisecond)
	run(t, nsB, backup, frame6(t, vip6, 41001, false, true, 0, nil))
	require.NoError(t, backup.SyncRecords(func(r syncd.Record) { back = append(back, r.Conn) }))
	assert.Len(t, back, 1, "forwarded here: this director's to send now")
	require.NoError(t, backup.Sweep())
	st, err := backup.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, activeConns(st.Services[0]))
}

// activeConns is the ActiveConn of a service's reals together.
func activeConns(s dataplane.ServiceStats) int64 {
	var n int64
	for _, r := range s.Reals {
		n += r.ActiveConns
	}
	return n
}

// sh and mh over IPv6 clients and reals pick as pkg/sched's references of
// IPVS's do (the client folded as ip_vs_sh_hashkey and ip_vs_mh's
// hashkey fold an IPv6 address; mh's table built from the reals' IPv6
// addresses), so an XDP director and an IPVS one send an IPv6 client to
// the same real.
func TestIPv6HashSchedulersMatchIPVS(t *testing.T) {
	requireRoot(t)
	for _, name := range []string{"sh", "mh"} {
		t.Run(name, func(t *testing.T) {
			ns, _ := testNS(t)
			res := staticResolver{}
			svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: name}
			weights := []int32{3, 1, 2, 1}
			var ds []sched.Dest
			for i, w := range weights {
				res[real6(i+1)] = NextHop{Ifindex: 1, MAC: realMAC(i + 1), SrcMAC: srcMAC}
				svc.Reals = append(svc.Reals, dataplane.Real{Addr: real6(i + 1), Port: 80, Weight: w, Forward: lvs.DR})
				ds = append(ds, sched.Dest{Weight: w, Addr: real6(i + 1), Port: 80})
			}
			x := openTest(t, ns, res)
			apply(t, ns, x, svc)
			shTab, mhTab := sched.SHTable(ds), sched.MHTable(ds)
			rng := rand.New(rand.NewPCG(6, 6))
			seen := map[int]bool{}
			for i := range 200 {
				var b [16]byte
				b[0], b[1] = 0x20, 0x01
				for j := 2; j < 16; j++ {
					b[j] = byte(rng.Uint32())
				}
				src := netip.AddrFrom16(b)
				want := sched.SHPick(&shTab, ds, sched.SHKey(src, 0), false)
				if name == "mh" {
					want = sched.MHPick(mhTab, ds, sched.AddrFold(src), 0, false)
				}
				v, out := run(t, ns, x, frame6From(t, src, vip6, uint16(20000+i), true, false, 0, nil))
				require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
				got := int(out[5]) - 1
				require.Equal(t, want, got, "client %s", src)
				seen[got] = true
			}
			assert.Len(t, seen, len(weights), "every real chosen for some client")
		})
	}
}

// tcp6Checksum says whether frame's TCP checksum is right, computed by
// gopacket over the IPv6 pseudo-header (not by the code under test).
func tcp6Checksum(t *testing.T, frame []byte) (*layers.IPv6, *layers.TCP, bool) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer())
	ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	carried := tcp.Checksum
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)))
	return ip, tcp, carried == tcp.Checksum
}

// NAT66: the client's packets go to the real's address and port, the
// real's replies come back from the VIP and port, each with a TCP
// checksum gopacket finds right; the reply entry follows the flow from
// half-open to proven.
func TestNAT66GoldenPackets(t *testing.T) {
	ns, x := newNAT66Test(t)

	in := func(syn, ack bool) {
		t.Helper()
		v, out := run(t, ns, x, frame6(t, vip6, 42000, syn, ack, 0, nil))
		require.Contains(t, []uint32{xdpTX, xdpRedirect}, v)
		ip, tcp, ok := tcp6Checksum(t, out)
		assert.Equal(t, real6(1).String(), ip.DstIP.String(), "to the real")
		assert.Equal(t, client6.String(), ip.SrcIP.String())
		assert.EqualValues(t, 8080, tcp.DstPort, "the real's port")
		assert.True(t, ok, "the TCP checksum, rewritten, still right")
		assert.Equal(t, []byte(realMAC(1)), out[:6])
	}
	reply := func(flags string) {
		t.Helper()
		ipl := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.IP(real6(1).AsSlice()), DstIP: net.IP(client6.AsSlice())}
		tcp := &layers.TCP{SrcPort: 8080, DstPort: 42000, SYN: flags == "SA", ACK: true, Seq: 5000, Ack: 1001, Window: 4096}
		require.NoError(t, tcp.SetNetworkLayerForChecksum(ipl))
		buf := gopacket.NewSerializeBuffer()
		eth := &layers.Ethernet{SrcMAC: realMAC(1), DstMAC: srcMAC, EthernetType: layers.EthernetTypeIPv6}
		require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ipl, tcp, gopacket.Payload("hi")))
		before := reasons(t, x)
		_, out := run(t, ns, x, buf.Bytes())
		out = out[:len(buf.Bytes())]
		ip, tc, ok := tcp6Checksum(t, out)
		assert.Equal(t, vip6.String(), ip.SrcIP.String(), "from the VIP again")
		assert.EqualValues(t, 80, tc.SrcPort)
		assert.True(t, ok, "the reply's TCP checksum right")
		assert.Equal(t, before["nat_reply"]+1, reasons(t, x)["nat_reply"])
	}
	in(true, false)
	reply("SA")
	in(false, true) // proves the flow: it and its reply entry move
	reply("A")
	conns, err := x.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 1)
	assert.Equal(t, "ESTABLISHED", conns[0].State)
	assert.Equal(t, netip.AddrPortFrom(real6(1), 8080), conns[0].Real)
}
