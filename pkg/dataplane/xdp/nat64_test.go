package xdp

import (
	"encoding/binary"
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
