package xdp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvssync"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/syncd"
)

// syncPair is two data planes in two namespaces joined by a veth (sync0,
// 10.99.0.1 and .2), with the same NAT and DR services.
func syncPair(t *testing.T) (nsA, nsB *testutil.NS, a, b *Dataplane) {
	requireRoot(t)
	nsA, _ = testNS(t)
	nsB, _ = testNS(t)
	require.NoError(t, nsA.IP("link", "add", "sync0", "type", "veth", "peer", "name", "sync0", "netns", nsB.Name))
	for i, ns := range []*testutil.NS{nsA, nsB} {
		require.NoError(t, ns.IP("addr", "add", netip.AddrFrom4([4]byte{10, 99, 0, byte(1 + i)}).String()+"/24", "dev", "sync0"))
		require.NoError(t, ns.IP("link", "set", "sync0", "up"))
		require.NoError(t, ns.Sysctl("net.ipv4.ip_forward", "1"))
	}
	res := staticResolver{
		realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC},
		realAddr(2): {Ifindex: 1, MAC: realMAC(2), SrcMAC: srcMAC},
	}
	svcs := []dataplane.Service{
		{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.NAT}, {Addr: realAddr(2), Port: 8080, Weight: 1, Forward: lvs.NAT}}},
		{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 81, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 81, Weight: 1, Forward: lvs.DR}, {Addr: realAddr(2), Port: 81, Weight: 1, Forward: lvs.DR}}},
		{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 53, Weight: 1, Forward: lvs.DR}, {Addr: realAddr(2), Port: 53, Weight: 1, Forward: lvs.DR}}},
	}
	a, b = openTest(t, nsA, res), openTest(t, nsB, res)
	apply(t, nsA, a, svcs...)
	apply(t, nsB, b, svcs...)
	return nsA, nsB, a, b
}

func startSync(t testing.TB, ns *testutil.NS, x *Dataplane, d dataplane.SyncDaemon) {
	t.Helper()
	d.Interface = "sync0"
	require.NoError(t, ns.Do(func() error { return x.StartDaemon(d) }))
}

// connsByClient lists a data plane's flows by client address:port and
// virtual port.
func connsByClient(t *testing.T, x *Dataplane) map[netip.AddrPort]dataplane.Conn {
	cs, err := x.Conns()
	require.NoError(t, err)
	out := map[netip.AddrPort]dataplane.Conn{}
	for _, c := range cs {
		out[c.Client] = c
	}
	return out
}

// handshake makes an established flow from client port sport to the VIP's
// port on x: the SYN, then the client's ACK (which proves the flow).
func handshake(t *testing.T, ns *testutil.NS, x *Dataplane, sport, vport uint16) []byte {
	f := syn(sport)
	f.DstPort = vport
	v, out := run(t, ns, x, f.Bytes())
	require.EqualValues(t, xdpTX, v)
	f.TCPFlags = testutil.TCPAck
	v, _ = run(t, ns, x, f.Bytes())
	require.EqualValues(t, xdpTX, v)
	return bytes.Clone(out[:6])
}

// Two XDP directors on IPVS's sync protocol: the backup joins after the
// master has flows and learns them all from the bulk dump; flows made
// later arrive within a pass; a FIN's state change follows; the backup
// forwards every synced flow, NAT replies included, to the real the
// master chose, and counts them in ActiveConn/InActConn as the master
// does; it does not send the flows back until it forwards them itself.
func TestSyncBetweenXDPDirectors(t *testing.T) {
	nsA, nsB, a, b := syncPair(t)
	syncd.PollInterval = 50 * time.Millisecond

	// Flows before any sync: NAT and DR.
	macs := map[uint16][]byte{}
	for i := range 20 {
		vport := uint16(80 + i%2)
		macs[uint16(30000+i)] = handshake(t, nsA, a, uint16(30000+i), vport)
	}
	startSync(t, nsA, a, dataplane.SyncDaemon{SyncID: 5})
	startSync(t, nsB, b, dataplane.SyncDaemon{Backup: true, SyncID: 5})
	require.Eventually(t, func() bool { return len(connsByClient(t, b)) == 20 }, 5*time.Second, 20*time.Millisecond,
		"the bulk dump did not bring the master's 20 flows")
	require.Eventually(t, func() bool { return !b.SyncStats().DumpReceived.IsZero() }, 5*time.Second, 20*time.Millisecond)

	// Flows made now, and a UDP flow (its second datagram proves it).
	for i := 20; i < 30; i++ {
		macs[uint16(30000+i)] = handshake(t, nsA, a, uint16(30000+i), 80)
	}
	u := syn(40000)
	u.Proto, u.DstPort, u.TCPFlags = 17, 53, 0
	for range 2 {
		v, _ := run(t, nsA, a, u.Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	require.Eventually(t, func() bool { return len(connsByClient(t, b)) == 31 }, 5*time.Second, 20*time.Millisecond)

	onA, onB := connsByClient(t, a), connsByClient(t, b)
	for k, ca := range onA {
		cb, ok := onB[k]
		if !assert.True(t, ok, "%s not on the backup", k) {
			continue
		}
		assert.Equal(t, ca.Real, cb.Real, "%s", k)
		assert.Equal(t, ca.Virtual, cb.Virtual, "%s", k)
		assert.Equal(t, ca.State, cb.State, "%s", k)
		assert.InDelta(t, ca.Expires.Seconds(), cb.Expires.Seconds(), 3, "%s: the timeout from the wire", k)
	}
	// The counts of installed flows reach the counters with the next
	// flush (the sweep does one).
	require.NoError(t, a.Sweep())
	require.NoError(t, b.Sweep())
	sa, err := a.Stats()
	require.NoError(t, err)
	sb, err := b.Stats()
	require.NoError(t, err)
	for i := range sa.Services {
		for j := range sa.Services[i].Reals {
			ra, rb := sa.Services[i].Reals[j], sb.Services[i].Reals[j]
			assert.Equal(t, ra.ActiveConns, rb.ActiveConns, "ActiveConn of %s", ra.Addr)
			assert.Equal(t, ra.InactConns, rb.InactConns, "InActConn of %s", ra.Addr)
		}
	}

	// Nothing installed from the master goes back to it.
	var echoed []syncd.Record
	require.NoError(t, b.SyncRecords(func(r syncd.Record) { echoed = append(echoed, r) }))
	assert.Empty(t, echoed, "the backup would send its master's flows back")

	// The backup forwards them (a second on: the program refreshes a
	// flow's last packet time in steps of a second): an ACK goes to the master's real (its
	// MAC), not to what the backup's own scheduler would pick.
	time.Sleep(1100 * time.Millisecond)
	for sport, mac := range macs {
		f := syn(sport)
		f.DstPort = onA[netip.AddrPortFrom(client, sport)].Virtual.Port()
		f.TCPFlags = testutil.TCPAck
		v, out := run(t, nsB, b, f.Bytes())
		require.EqualValues(t, xdpTX, v)
		assert.Equal(t, mac, out[:6], "client port %d", sport)
	}
	// ... and a NAT flow's reply gets the VIP back.
	nat := onA[netip.AddrPortFrom(client, 30000)]
	require.Equal(t, uint16(80), nat.Virtual.Port())
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: nat.Real.Addr(), Dst: client,
		Proto: 6, SrcPort: 8080, DstPort: 30000, TCPFlags: testutil.TCPAck, Payload: []byte("x")}
	_, out := run(t, nsB, b, reply.Bytes())
	assert.Equal(t, net.IP(vip.AsSlice()).To4(), net.IP(out[14+12:14+16]), "the synced NAT flow's reply is translated")
	// Forwarded here, they are the backup's own now.
	echoed = nil
	require.NoError(t, b.SyncRecords(func(r syncd.Record) { echoed = append(echoed, r) }))
	assert.NotEmpty(t, echoed)

	// A FIN on the master: its new state reaches the backup.
	fin := syn(30003)
	fin.DstPort = onA[netip.AddrPortFrom(client, 30003)].Virtual.Port()
	fin.TCPFlags = testutil.TCPFin | testutil.TCPAck
	v, _ := run(t, nsA, a, fin.Bytes())
	require.EqualValues(t, xdpTX, v)
	want := connsByClient(t, a)[netip.AddrPortFrom(client, 30003)].State
	require.NotEqual(t, "ESTABLISHED", want)
	require.Eventually(t, func() bool { return connsByClient(t, b)[netip.AddrPortFrom(client, 30003)].State == want },
		5*time.Second, 20*time.Millisecond, "the FIN's state %s did not reach the backup", want)

	st := b.SyncStats()
	assert.Zero(t, st.Skipped)
	assert.Zero(t, st.InstallErrors)
	assert.NotZero(t, a.SyncStats().Dumps)
	ds, err := b.Daemons()
	require.NoError(t, err)
	assert.Equal(t, []dataplane.SyncDaemon{{Backup: true, Interface: "sync0", SyncID: 5, MaxLen: 1472,
		Group: ipvssync.Group, Port: ipvssync.Port, TTL: 1}}, ds, "as the kernel lists a backup (MTU 1500)")
}

// A backup's syncid filter and the kernel's update rules: another syncid
// is ignored, a datagram that is no sync message is counted and ignored,
// a record to another real replaces the flow unless it is INACTIVE, and a
// record for a service or real the backup lacks is skipped.
func TestSyncInstallRules(t *testing.T) {
	nsA, nsB, a, b := syncPair(t)
	syncd.PollInterval = 50 * time.Millisecond
	startSync(t, nsB, b, dataplane.SyncDaemon{Backup: true, SyncID: 7})
	startSync(t, nsA, a, dataplane.SyncDaemon{SyncID: 8})
	handshake(t, nsA, a, 30000, 80)
	// The master's records arrive and are dropped as another syncid's.
	require.Eventually(t, func() bool { return b.SyncStats().OtherSyncID > 0 }, 5*time.Second, 20*time.Millisecond)
	assert.Empty(t, connsByClient(t, b))

	// Junk on the group's port.
	require.NoError(t, nsA.Do(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 99, 0, 1)}, &net.UDPAddr{IP: net.IP(ipvssync.Group.AsSlice()), Port: ipvssync.Port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte{1, 2, 3})
		return err
	}))
	require.Eventually(t, func() bool { return b.SyncStats().Malformed > 0 }, 5*time.Second, 20*time.Millisecond)

	rec := ipvssync.Conn{Protocol: ipvssync.ProtocolTCP, State: ipvssync.TCPEstablished, Flags: ipvssync.Masq,
		Client:  netip.AddrPortFrom(client, 31000),
		Virtual: netip.AddrPortFrom(vip, 80), Dest: netip.AddrPortFrom(realAddr(1), 8080), Timeout: 900 * time.Second}
	res, err := b.SyncInstall([]ipvssync.Conn{rec})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Installed)
	// Again, and on into FIN_WAIT (INACTIVE, the same real): updates.
	fw := rec
	fw.State, fw.Flags = ipvssync.TCPFinWait, rec.Flags|ipvssync.Inactive
	res, err = b.SyncInstall([]ipvssync.Conn{rec, fw})
	require.NoError(t, err)
	assert.Equal(t, syncd.Installed{Installed: 2}, res)
	assert.Equal(t, "FIN_WAIT", connsByClient(t, b)[rec.Client].State)
	res, err = b.SyncInstall([]ipvssync.Conn{rec})
	require.NoError(t, err)
	assert.Equal(t, syncd.Installed{Installed: 1}, res)
	moved := rec
	moved.Dest = netip.AddrPortFrom(realAddr(2), 8080)
	moved.Flags |= ipvssync.Inactive
	moved.State = ipvssync.TCPFinWait
	res, err = b.SyncInstall([]ipvssync.Conn{moved})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Stale, "INACTIVE to another real: stale")
	assert.Equal(t, netip.AddrPortFrom(realAddr(1), 8080), connsByClient(t, b)[rec.Client].Real)
	moved.Flags &^= ipvssync.Inactive
	moved.State = ipvssync.TCPEstablished
	res, err = b.SyncInstall([]ipvssync.Conn{moved})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Installed)
	assert.Equal(t, netip.AddrPortFrom(realAddr(2), 8080), connsByClient(t, b)[rec.Client].Real, "active to another real: replaced")
	require.NoError(t, b.Sweep())
	sb, err := b.Stats()
	require.NoError(t, err)
	for _, s := range sb.Services {
		if s.Port == 80 {
			assert.EqualValues(t, []int64{0, 1}, []int64{s.Reals[0].ActiveConns, s.Reals[1].ActiveConns},
				"one flow, counted once, on the real it moved to")
		}
	}

	gone := rec
	gone.Virtual = netip.AddrPortFrom(vip, 8443)
	other := rec
	other.Dest = netip.AddrPortFrom(realAddr(9), 8080)
	res, err = b.SyncInstall([]ipvssync.Conn{gone, other})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Skipped)

	// A UDP record with the timeout 0 of a version 0 message takes the
	// local table's.
	udp := ipvssync.Conn{Protocol: ipvssync.ProtocolUDP, Flags: ipvssync.DRoute, Client: netip.AddrPortFrom(client, 5000),
		Virtual: netip.AddrPortFrom(vip, 53), Dest: netip.AddrPortFrom(realAddr(2), 53)}
	_, err = b.SyncInstall([]ipvssync.Conn{udp})
	require.NoError(t, err)
	assert.InDelta(t, 300, connsByClient(t, b)[udp.Client].Expires.Seconds(), 2)

	// The second master is refused as the kernel refuses it.
	err = nsA.Do(func() error { return a.StartDaemon(dataplane.SyncDaemon{Interface: "sync0"}) })
	assert.ErrorIs(t, err, unix.EEXIST)
}

// A TUN flow goes on the wire as IPVS's master sends one: the forwarding
// method under IP_VS_CONN_F_FWD_MASK is Tunnel, not DRoute.
func TestSyncRecordsSayTunnel(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC, Src: tunSrc, MTU: 1500},
		realAddr(2): {Ifindex: 1, MAC: realMAC(2), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x,
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.TUN}}},
		dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 81, Protocol: lvs.TCP}, Scheduler: "rr",
			Reals: []dataplane.Real{{Addr: realAddr(2), Port: 81, Weight: 1, Forward: lvs.DR}}})
	handshake(t, ns, x, 7000, 80)
	handshake(t, ns, x, 7001, 81)
	fwd := map[uint16]uint32{}
	require.NoError(t, x.SyncRecords(func(r syncd.Record) { fwd[r.Virtual.Port()] = r.Flags & ipvssync.FwdMask }))
	assert.Equal(t, map[uint16]uint32{80: ipvssync.Tunnel, 81: ipvssync.DRoute}, fwd)
}

// FULLNAT flows on IPVS's sync protocol (issue 13: a failover must not
// lose them): the master sends each flow's local address and port in
// xlb's own option; the backup, whose local addresses sit in other slots,
// takes the same port toward the real and, once it forwards, sends the
// client's packets from the same address and port and the real's replies
// back to the client — IPv4, IPv6, NAT64 and NAT46 (whose IPv4 client and
// VIP go IPv4-mapped in its IPv6 real's record, as NAT64's IPv4 real does
// in its client's). A record without the local
// address (a kernel master's), or with one the service lacks, is skipped
// with its reason; one whose port another flow holds here is stale, and
// that flow keeps its replies.
func TestSyncFULLNATFlows(t *testing.T) {
	requireRoot(t)
	syncd.PollInterval = 50 * time.Millisecond
	nsA, _ := testNS(t)
	nsB, _ := testNS(t)
	require.NoError(t, nsA.IP("link", "add", "sync0", "type", "veth", "peer", "name", "sync0", "netns", nsB.Name))
	for i, ns := range []*testutil.NS{nsA, nsB} {
		require.NoError(t, ns.IP("addr", "add", netip.AddrFrom4([4]byte{10, 99, 0, byte(1 + i)}).String()+"/24", "dev", "sync0"))
		require.NoError(t, ns.IP("link", "set", "sync0", "up"))
	}
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}, real6(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	svcs := func(l4 []netip.Addr) []dataplane.Service {
		return []dataplane.Service{
			{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr", LocalAddrs: l4,
				Reals: []dataplane.Real{{Addr: realAddr(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
			{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr", LocalAddrs: []netip.Addr{laddr6a, laddr6b},
				Reals: []dataplane.Real{{Addr: real6(1), Port: 8080, Weight: 1, Forward: lvs.FNAT}}},
			{ServiceKey: dataplane.ServiceKey{Addr: vip6, Port: 81, Protocol: lvs.TCP}, Scheduler: "rr", LocalAddrs: l4,
				Reals: []dataplane.Real{{Addr: realAddr(1), Port: 8081, Weight: 1, Forward: lvs.FNAT}}},
			{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 82, Protocol: lvs.TCP}, Scheduler: "rr", LocalAddrs: []netip.Addr{laddr6b},
				Reals: []dataplane.Real{{Addr: real6(1), Port: 8082, Weight: 1, Forward: lvs.FNAT}}},
		}
	}
	a, b := openTest(t, nsA, res), openTest(t, nsB, res)
	apply(t, nsA, a, svcs([]netip.Addr{laddr1, laddr2})...)
	// The backup's local addresses in other slots: a local address
	// travels by its address, not its slot.
	apply(t, nsB, b, svcs([]netip.Addr{netip.MustParseAddr("10.0.0.52"), laddr2, laddr1})...)

	// A flow's way out on a director: the client's ACK, and where it
	// leaves from (source address and port, destination).
	type way struct {
		local netip.AddrPort
		real  netip.Addr
	}
	out4 := func(ns *testutil.NS, x *Dataplane, sport uint16, flags uint8) way {
		f := syn(sport)
		f.TCPFlags = flags
		v, out := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
		verifyChecksums(t, out)
		d := decode(t, out)
		return way{netip.AddrPortFrom(ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)), ip4Of(d.ip.DstIP)}
	}
	out6 := func(ns *testutil.NS, x *Dataplane, sport, vport uint16, flags func(*layers.TCP)) way {
		v, out := run(t, ns, x, segment6(t, client6, vip6, sport, vport, false, flags, ""))
		require.EqualValues(t, xdpTX, v)
		if vport == 81 { // NAT64: IPv4 out
			verifyChecksums(t, out)
			d := decode(t, out)
			return way{netip.AddrPortFrom(ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)), ip4Of(d.ip.DstIP)}
		}
		d := decode6(t, out)
		require.True(t, d.sumOK)
		return way{netip.AddrPortFrom(ip6Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)), ip6Of(d.ip.DstIP)}
	}
	out46 := func(ns *testutil.NS, x *Dataplane, sport uint16, flags uint8) way { // NAT46: IPv6 out
		f := syn(sport)
		f.DstPort, f.TCPFlags = 82, flags
		v, out := run(t, ns, x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
		d := decode6(t, out)
		require.True(t, d.sumOK)
		return way{netip.AddrPortFrom(ip6Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)), ip6Of(d.ip.DstIP)}
	}
	onA := map[string]way{}
	for i := range 6 {
		p := uint16(42000 + i)
		out4(nsA, a, p, testutil.TCPSyn)
		onA[fmt.Sprint("v4 ", p)] = out4(nsA, a, p, testutil.TCPAck)
		out6(nsA, a, p, 80, synFlags)
		onA[fmt.Sprint("v6 ", p)] = out6(nsA, a, p, 80, ackFlags)
		out6(nsA, a, p, 81, synFlags)
		onA[fmt.Sprint("nat64 ", p)] = out6(nsA, a, p, 81, ackFlags)
		out46(nsA, a, p, testutil.TCPSyn)
		onA[fmt.Sprint("nat46 ", p)] = out46(nsA, a, p, testutil.TCPAck)
	}
	var recs []syncd.Record
	require.NoError(t, a.SyncRecords(func(r syncd.Record) { recs = append(recs, r) }))
	require.Len(t, recs, 24)
	for _, r := range recs {
		assert.True(t, r.Local.IsValid(), "%s: the local address goes with the record", r.Conn)
		assert.Equal(t, ipvssync.Masq, r.Flags&ipvssync.FwdMask, "%s: as IPVS's closest method", r.Conn)
	}

	startSync(t, nsA, a, dataplane.SyncDaemon{SyncID: 3})
	startSync(t, nsB, b, dataplane.SyncDaemon{Backup: true, SyncID: 3})
	require.Eventually(t, func() bool { cs, err := b.Conns(); return err == nil && len(cs) == 24 }, 5*time.Second, 20*time.Millisecond,
		"the backup did not get the 24 FULLNAT flows")
	st := b.SyncStats()
	assert.Zero(t, st.Skipped, "%+v", st)
	assert.Zero(t, st.InstallErrors, "%+v", st)

	// The backup forwards them as the master did (a second on: the
	// program refreshes a flow's time in steps of a second, and a flow
	// it has not touched stays the master's).
	time.Sleep(1100 * time.Millisecond)
	for i := range 6 {
		p := uint16(42000 + i)
		assert.Equal(t, onA[fmt.Sprint("v4 ", p)], out4(nsB, b, p, testutil.TCPAck), "IPv4 flow %d", p)
		assert.Equal(t, onA[fmt.Sprint("v6 ", p)], out6(nsB, b, p, 80, ackFlags), "IPv6 flow %d", p)
		assert.Equal(t, onA[fmt.Sprint("nat64 ", p)], out6(nsB, b, p, 81, ackFlags), "NAT64 flow %d", p)
		assert.Equal(t, onA[fmt.Sprint("nat46 ", p)], out46(nsB, b, p, testutil.TCPAck), "NAT46 flow %d", p)
	}
	// ... and the reals' replies to the local ports go to their clients.
	w := onA["v4 42000"]
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: w.local.Addr(),
		Proto: 6, SrcPort: 8080, DstPort: w.local.Port(), TCPFlags: testutil.TCPAck, Payload: []byte("x")}
	_, out := run(t, nsB, b, reply.Bytes())
	want := reply
	want.Src, want.SrcPort, want.Dst, want.DstPort = vip, 80, client, 42000
	assert.Equal(t, want.Bytes(), out, "the IPv4 reply, from the VIP to the client")
	w = onA["v6 42001"]
	v6reply := segment6(t, real6(1), w.local.Addr(), 8080, w.local.Port(), false, ackFlags, "y")
	_, out = run(t, nsB, b, v6reply)
	d := decode6(t, out)
	assert.Equal(t, []netip.Addr{vip6, client6}, []netip.Addr{ip6Of(d.ip.SrcIP), ip6Of(d.ip.DstIP)})
	assert.EqualValues(t, []layers.TCPPort{80, 42001}, []layers.TCPPort{d.tcp.SrcPort, d.tcp.DstPort})
	assert.True(t, d.sumOK)
	w = onA["nat64 42002"]
	reply = testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: w.local.Addr(),
		Proto: 6, SrcPort: 8081, DstPort: w.local.Port(), TCPFlags: testutil.TCPAck, Payload: []byte("z")}
	rb := reply.Bytes()
	_, out = run(t, nsB, b, rb)
	d = decode6(t, out[:len(rb)+20])
	assert.Equal(t, []netip.Addr{vip6, client6}, []netip.Addr{ip6Of(d.ip.SrcIP), ip6Of(d.ip.DstIP)}, "the NAT64 reply, IPv6 again")
	assert.EqualValues(t, []layers.TCPPort{81, 42002}, []layers.TCPPort{d.tcp.SrcPort, d.tcp.DstPort})
	assert.True(t, d.sumOK)
	w = onA["nat46 42003"]
	_, out = run(t, nsB, b, segment6(t, real6(1), w.local.Addr(), 8082, w.local.Port(), false, ackFlags, "n"))
	verifyChecksums(t, out)
	d4 := decode(t, out)
	assert.Equal(t, []netip.Addr{vip, client}, []netip.Addr{ip4Of(d4.ip.SrcIP), ip4Of(d4.ip.DstIP)}, "the NAT46 reply, IPv4 again")
	assert.EqualValues(t, []layers.TCPPort{82, 42003}, []layers.TCPPort{d4.tcp.SrcPort, d4.tcp.DstPort})

	// What the backup refuses, and why.
	rec := recs[0].Conn
	for _, r := range recs {
		if r.Virtual == netip.AddrPortFrom(vip, 80) && r.Client.Port() == 42000 {
			rec = r.Conn
		}
	}
	kernels := rec
	kernels.Client, kernels.Local = netip.AddrPortFrom(client, 43000), netip.AddrPort{}
	got, err := b.SyncInstall([]ipvssync.Conn{kernels})
	require.NoError(t, err)
	assert.Equal(t, 1, got.Skipped)
	assert.Contains(t, got.Reason, "no local address")
	strange := rec
	strange.Client, strange.Local = netip.AddrPortFrom(client, 43001), netip.MustParseAddrPort("10.0.0.99:2000")
	got, err = b.SyncInstall([]ipvssync.Conn{strange})
	require.NoError(t, err)
	assert.Equal(t, 1, got.Skipped)
	assert.Contains(t, got.Reason, "local address 10.0.0.99 is not one of the service's")
	// Another client on a port a flow holds: stale, and the port's
	// replies still go to its own client.
	clash := rec
	clash.Client = netip.AddrPortFrom(client, 43002)
	got, err = b.SyncInstall([]ipvssync.Conn{clash})
	require.NoError(t, err)
	assert.Equal(t, syncd.Installed{Stale: 1}, got)
	assert.NotContains(t, connsByClient(t, b), clash.Client)
	w = onA["v4 42000"]
	reply = testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: w.local.Addr(),
		Proto: 6, SrcPort: 8080, DstPort: w.local.Port(), TCPFlags: testutil.TCPAck, Payload: []byte("x")}
	_, out = run(t, nsB, b, reply.Bytes())
	assert.Equal(t, want.Bytes(), out, "the port's replies still go to the flow that holds it")
}
