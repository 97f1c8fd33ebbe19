package xdp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

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
