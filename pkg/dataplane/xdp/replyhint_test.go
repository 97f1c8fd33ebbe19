package xdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
)

// routeToClient gives the test namespace a way to the client: dummy0
// holds the client's subnet and its neighbour entry names mac. It returns
// dummy0's own MAC, 02:d0:00:00:00:01.
func routeToClient(t *testing.T, ns *testutil.NS, mac string) net.HardwareAddr {
	require.NoError(t, ns.Sysctl("net.ipv4.ip_forward", "1"))
	// (its own MAC fixed: the scripts compare the frames of two runs)
	require.NoError(t, ns.IP("link", "set", "dummy0", "address", "02:d0:00:00:00:01"))
	require.NoError(t, ns.IP("addr", "add", "192.0.2.1/24", "dev", "dummy0"))
	require.NoError(t, ns.IP("neigh", "replace", client.String(), "lladdr", mac, "dev", "dummy0"))
	var own net.HardwareAddr
	require.NoError(t, ns.Do(func() error {
		ifi, err := net.InterfaceByName("dummy0")
		if err == nil {
			own = ifi.HardwareAddr
		}
		return err
	}))
	return own
}

// routeEpoch is the programs' route_epoch.
func routeEpoch(t *testing.T, x *Dataplane) uint32 {
	var e uint32
	require.NoError(t, x.objs.RouteEpoch.Get(&e))
	return e
}

// waitEpochPast waits (2 s at most) for route_epoch to move past e: the
// control plane has seen a routing event.
func waitEpochPast(t *testing.T, x *Dataplane, e uint32) {
	t.Helper()
	require.Eventually(t, func() bool { return routeEpoch(t, x) != e }, 2*time.Second, 5*time.Millisecond,
		"route_epoch moved after a routing change")
}

// outPackets is the real's replies counted, over every service.
func outPackets(t *testing.T, x *Dataplane) uint64 {
	st, err := x.Stats()
	require.NoError(t, err)
	var n uint64
	for _, s := range st.Services {
		for _, r := range s.Reals {
			n += r.OutPackets
		}
	}
	return n
}

// establishTwoWay makes a NAT or FULLNAT flow from the client's port:
// its SYN on CPU 0, the real's SYN-ACK on CPU 1 (to the address and port
// to gives for the director's frame to the real), the client's ACKs
// on CPU 0 until its hint is written. It returns the client's ACK and
// the real's.
func establishTwoWay(t *testing.T, ns *testutil.NS, x *Dataplane, port uint16,
	to func(out []byte) (netip.Addr, uint16)) (testutil.Frame, testutil.Frame) {
	in := syn(port)
	v, out := runXOnCPU(t, ns, x, 0, in)
	require.EqualValues(t, xdpTX, v)
	dst, dport := to(out)
	reply := testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: dst, Proto: 6,
		SrcPort: 8080, DstPort: dport, TCPFlags: testutil.TCPSyn | testutil.TCPAck, TTL: 64}
	v, _ = runXOnCPU(t, ns, x, 1, reply)
	require.EqualValues(t, xdpRedirect, v)
	in.TCPFlags = testutil.TCPAck
	for range 12 {
		v, _ = runXOnCPU(t, ns, x, 0, in)
		require.EqualValues(t, xdpTX, v)
	}
	reply.TCPFlags = testutil.TCPAck
	return in, reply
}

// A NAT real's replies go by their hint once one reply took the table's
// path and the FIB: the next hop the FIB gave, the rewrite the table's
// path made, counted as the table's path counts them. A neighbour's new
// MAC and a new route are followed at the next reply (route_epoch); a
// reply longer than any the FIB let through, a flow whose state the
// client's packets moved, and the control plane's writes take the
// table's path again.
func TestNATReplyHints(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: the client's packets on one, the real's on the other")
	}
	ns, x := newNATTest(t)
	require.Greater(t, x.objs.FlowCache.MaxEntries(), uint32(1), "this kernel has the cache")
	own := routeToClient(t, ns, "02:c1:00:00:00:07")
	require.NotZero(t, routeEpoch(t, x), "routing events are followed")

	in, reply := establishTwoWay(t, ns, x, 41500, func([]byte) (netip.Addr, uint16) { return client, 41500 })
	reply.Payload = make([]byte, 100)
	want := reply
	want.Src, want.SrcPort, want.TTL = vip, 80, 63
	want.DstMAC, want.SrcMAC = net.HardwareAddr{0x02, 0xc1, 0, 0, 0, 0x07}, own
	send := func(cpu int, f testutil.Frame) (uint32, []byte) {
		v, out := runXOnCPU(t, ns, x, cpu, f)
		return v, out
	}
	// The first reply writes CPU 1's hint, the next go by it: the same
	// frame out, each counted.
	before, beforeOut := reasons(t, x), outPackets(t, x)
	for range 3 {
		v, out := send(1, reply)
		require.EqualValues(t, xdpRedirect, v)
		require.Equal(t, want.Bytes(), out)
		verifyChecksums(t, out)
	}
	assert.EqualValues(t, 3, reasons(t, x)["nat_reply"]-before["nat_reply"])
	assert.EqualValues(t, 3, outPackets(t, x)-beforeOut, "each reply counted as the real's output")

	// A change of the kernel's answer is followed: route_epoch moves,
	// and the next replies go the new way.
	followed := func(why, mac string, change ...[]string) {
		e := routeEpoch(t, x)
		for _, c := range change {
			require.NoError(t, ns.IP(c...))
		}
		waitEpochPast(t, x, e)
		want.DstMAC, _ = net.ParseMAC(mac)
		for range 2 {
			v, out := send(1, reply)
			require.EqualValues(t, xdpRedirect, v)
			require.Equal(t, want.Bytes(), out, why)
		}
	}
	followed("to the neighbour's new MAC", "02:c1:00:00:00:08",
		[]string{"neigh", "replace", client.String(), "lladdr", "02:c1:00:00:00:08", "dev", "dummy0"})
	followed("to the new route's gateway", "02:c1:00:00:00:09",
		[]string{"neigh", "replace", "192.0.2.9", "lladdr", "02:c1:00:00:00:09", "dev", "dummy0"},
		[]string{"route", "add", client.String() + "/32", "via", "192.0.2.9", "dev", "dummy0"})

	// The hint serves: the flow's reply entry deleted behind its back,
	// CPU 1 still sends the reply as the table's path did; CPU 0, which
	// holds no hint for it, does not.
	rk := xlbConnKey{Src: ip4(realAddr(1)), Dst: ip4(client), Sport: port16(8080), Dport: port16(41500), Proto: 6}
	var nr xlbNatReply
	require.NoError(t, x.objs.NatReplies.Lookup(&rk, &nr))
	require.NoError(t, x.objs.NatReplies.Delete(&rk))
	v, out := send(1, reply)
	require.EqualValues(t, xdpRedirect, v, "the hint serves")
	require.Equal(t, want.Bytes(), out)
	v, _ = send(0, reply)
	assert.NotEqualValues(t, xdpRedirect, v, "no hint on CPU 0")
	// A longer reply than the FIB has seen asks it (its MTU).
	long := reply
	long.Payload = make([]byte, 200)
	v, _ = send(1, long)
	assert.NotEqualValues(t, xdpRedirect, v, "longer: the table's path, which has no entry now")
	// The control plane's writes void the hints.
	require.NoError(t, x.forgetFlowHints())
	v, _ = send(1, reply)
	assert.NotEqualValues(t, xdpRedirect, v, "the epoch moved: the table's path")

	// Back with its entry, the hint written again; then the client's FIN
	// (CPU 0) moves the flow to CLOSE_WAIT and the hint serves no more.
	require.NoError(t, x.objs.NatReplies.Put(&rk, &nr))
	for range 2 {
		v, _ = send(1, reply)
		require.EqualValues(t, xdpRedirect, v)
	}
	fin := in
	fin.TCPFlags = testutil.TCPFin | testutil.TCPAck
	v, _ = runXOnCPU(t, ns, x, 0, fin)
	require.EqualValues(t, xdpTX, v)
	require.NoError(t, x.objs.NatReplies.Delete(&rk))
	v, _ = send(1, reply)
	assert.NotEqualValues(t, xdpRedirect, v, "CLOSE_WAIT: the table's path")
}

// natRoutedScript is twoWayScript's NAT flow with a way to the client,
// so that the real's replies are sent on (not left to the kernel) and
// may go by their hints; what it logs adds each reply's counters.
func natRoutedScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	routeToClient(t, ns, "02:c1:00:00:00:07")
	log := natHintScript(t, ns, x)
	return append(log, fmt.Sprintf("out %d nat_reply %d", outPackets(t, x), reasons(t, x)["nat_reply"]))
}

// With replies routed, NAT and FULLNAT flows show the same verdicts,
// frames, states and counters with and without the caches.
func TestReplyHintsChangeNothingNAT(t *testing.T) {
	sameWithoutCache(t, newNATTest, natRoutedScript)
}

func TestReplyHintsChangeNothingFULLNAT(t *testing.T) {
	sameWithoutCache(t, newFNATTest, func(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
		routeToClient(t, ns, "02:c1:00:00:00:07")
		log := fnatHintScript(t, ns, x)
		return append(log, fmt.Sprintf("out %d nat_reply %d", outPackets(t, x), reasons(t, x)["nat_reply"]))
	})
}

// neighMsg is an RTM_NEWNEIGH/RTM_DELNEIGH message as the kernel sends
// it: ndmsg, then NDA_DST and NDA_LLADDR.
func neighMsg(typ uint16, ifindex int32, state uint16, ip string, mac net.HardwareAddr) syscall.NetlinkMessage {
	nd := unix.NdMsg{Family: unix.AF_INET, Ifindex: ifindex, State: state}
	data := (*[unix.SizeofNdMsg]byte)(unsafe.Pointer(&nd))[:]
	attr := func(typ uint16, v []byte) []byte {
		a := make([]byte, (unix.SizeofRtAttr+len(v)+3)&^3)
		binary.NativeEndian.PutUint16(a[0:], uint16(unix.SizeofRtAttr+len(v)))
		binary.NativeEndian.PutUint16(a[2:], typ)
		copy(a[unix.SizeofRtAttr:], v)
		return a
	}
	data = append(append([]byte(nil), data...), attr(unix.NDA_DST, netip.MustParseAddr(ip).AsSlice())...)
	if mac != nil {
		data = append(data, attr(unix.NDA_LLADDR, mac)...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ, Len: uint32(unix.SizeofNlMsghdr + len(data))}, Data: data}
}

// Which events move route_epoch: every route, link, address or rule
// event; a neighbour's only when what bpf_fib_lookup would give for it
// (its MAC, or none) may have changed.
func TestRouteWatchMoves(t *testing.T) {
	w := routeWatch{neigh: map[neighKey]neighSeen{}}
	a := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	b := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, "192.0.2.7", a)), "first seen: it may have had another MAC")
	assert.False(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_STALE, "192.0.2.7", a)), "REACHABLE -> STALE: the FIB answers the same")
	assert.False(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_DELAY, "192.0.2.7", a)))
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, "192.0.2.7", b)), "another MAC")
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 4, unix.NUD_REACHABLE, "192.0.2.7", b)), "the same address on another interface")
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_FAILED, "192.0.2.7", nil)), "no longer valid")
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, "192.0.2.7", b)), "valid again")
	assert.True(t, w.moves(neighMsg(unix.RTM_DELNEIGH, 3, unix.NUD_REACHABLE, "192.0.2.7", b)), "deleted")
	assert.True(t, w.moves(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, "192.0.2.7", b)), "back after its deletion")
	for _, typ := range []uint16{unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR,
		unix.RTM_DELADDR, unix.RTM_NEWRULE, unix.RTM_DELRULE, unix.RTM_NEWNETCONF, unix.RTM_NEWNEXTHOP} {
		assert.True(t, w.moves(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}}), "type %d", typ)
	}
	assert.True(t, w.moves(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWNEIGH}, Data: []byte{1}}),
		"a message it cannot read moves it")
}

// A FULLNAT real's replies, to the flow's local address and port, go by
// their hint too: with the reply's entry (fnat_ports) deleted behind the
// cache's back, CPU 1 still sends it to the client from the VIP as the
// table's path did.
func TestFULLNATReplyHintServes(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: the client's packets on one, the real's on the other")
	}
	ns, x := newFNATTest(t)
	routeToClient(t, ns, "02:c1:00:00:00:07")
	_, reply := establishTwoWay(t, ns, x, 48500, func(out []byte) (netip.Addr, uint16) {
		d := decode(t, out)
		return ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
	})
	local, lport := reply.Dst, reply.DstPort
	var want []byte
	var v uint32
	for range 2 {
		v, want = runXOnCPU(t, ns, x, 1, reply)
		require.EqualValues(t, xdpRedirect, v)
	}
	w := decode(t, want)
	require.Equal(t, vip, ip4Of(w.ip.SrcIP))
	require.Equal(t, client, ip4Of(w.ip.DstIP))
	require.EqualValues(t, 80, w.tcp.SrcPort)
	require.EqualValues(t, 48500, w.tcp.DstPort)
	verifyChecksums(t, want)

	rk := xlbConnKey{Src: ip4(realAddr(1)), Dst: ip4(local), Sport: port16(8080), Dport: port16(lport), Proto: 6}
	require.NoError(t, x.objs.FnatPorts.Delete(&rk))
	v, got := runXOnCPU(t, ns, x, 1, reply)
	require.EqualValues(t, xdpRedirect, v, "the hint serves")
	require.Equal(t, want, got)
	v, _ = runXOnCPU(t, ns, x, 0, reply)
	assert.NotEqualValues(t, xdpRedirect, v, "no hint on CPU 0")
}
