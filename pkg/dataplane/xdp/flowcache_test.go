package xdp

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// runOnCPU is run with the program on one CPU (BPF_PROG_TEST_RUN runs it
// on the caller's): the established-flow cache is per CPU.
func runOnCPU(t *testing.T, r *schedRig, cpu int, f testutil.Frame) (uint32, []byte) {
	return runXOnCPU(t, r.ns, r.x, cpu, f)
}

func runXOnCPU(t *testing.T, ns *testutil.NS, x *Dataplane, cpu int, f testutil.Frame) (uint32, []byte) {
	t.Helper()
	return runFrameOnCPU(t, ns, x, cpu, f.Bytes())
}

func runFrameOnCPU(t *testing.T, ns *testutil.NS, x *Dataplane, cpu int, frame []byte) (uint32, []byte) {
	t.Helper()
	var ret uint32
	out := make([]byte, len(frame)+64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	require.NoError(t, ns.Do(func() error {
		var all, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			return err
		}
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &all)
		var err error
		ret, err = x.objs.XlbXdp.Run(opts)
		return err
	}))
	return ret, opts.DataOut
}

// flowOf is the flow table's entry for the client port, if any.
func flowOf(t *testing.T, r *schedRig, port uint16) (xlbConn, bool) {
	k := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(port), Dport: port16(80), Proto: 6}
	var v xlbConn
	err := r.x.flows4().Lookup(&k, &v)
	return v, err == nil
}

// hintScript is one life of flows, run the same with and without the
// cache; it returns what a user could see of each packet (verdict and
// real) and of the table after it (state, timeout, client packets).
func hintScript(t *testing.T, r *schedRig, hinted bool) []string {
	var log []string
	send := func(cpu int, port uint16, flags uint8) string {
		f := syn(port)
		f.TCPFlags = flags
		v, out := runOnCPU(t, r, cpu, f)
		got := fmt.Sprintf("verdict %d", v)
		if v == xdpTX {
			got += fmt.Sprintf(" real %d frame %x", int(out[5])-1, out)
		}
		if c, ok := flowOf(t, r, port); ok {
			got += fmt.Sprintf(" state %d timeout %d in %d real-slot %d", c.State, c.TimeoutS, c.InPkts, c.Real)
		}
		log = append(log, got)
		return got
	}
	acks := func(cpu int, port uint16, n int) {
		for range n {
			send(cpu, port, testutil.TCPAck)
		}
	}
	// A flow made and proven on CPU 0, its hint written by the ACKs
	// after its ninth packet.
	a := newFlow()
	send(0, a.SrcPort, testutil.TCPSyn)
	acks(0, a.SrcPort, 12)
	// A FIN takes the table's way: FIN_WAIT.
	send(0, a.SrcPort, testutil.TCPFin|testutil.TCPAck)
	acks(0, a.SrcPort, 3)

	// A timeout set reaches an established flow at its next packet.
	b := newFlow()
	send(0, b.SrcPort, testutil.TCPSyn)
	acks(0, b.SrcPort, 12)
	require.NoError(t, r.x.SetTimeouts(dataplane.Timeouts{TCP: 100 * time.Second}))
	acks(0, b.SrcPort, 2)
	require.NoError(t, r.x.SetTimeouts(dataplane.Timeouts{TCP: 900 * time.Second}))

	// A flow ended on CPU 1 (RST, then a SYN on its ports: a new
	// connection, to the other real by rr) is gone from CPU 0's cache too.
	c := newFlow()
	send(0, c.SrcPort, testutil.TCPSyn)
	acks(0, c.SrcPort, 12)
	send(1, c.SrcPort, testutil.TCPRst|testutil.TCPAck)
	send(1, c.SrcPort, testutil.TCPSyn)
	acks(0, c.SrcPort, 3)

	// last_seen moves when it is more than a second old, hint or not.
	d := newFlow()
	send(0, d.SrcPort, testutil.TCPSyn)
	acks(0, d.SrcPort, 12)
	before, ok := flowOf(t, r, d.SrcPort)
	require.True(t, ok)
	time.Sleep(1100 * time.Millisecond)
	acks(0, d.SrcPort, 1)
	after, _ := flowOf(t, r, d.SrcPort)
	assert.Greater(t, after.LastSeen, before.LastSeen+uint64(time.Second), "hinted %v: last_seen touched", hinted)
	acks(0, d.SrcPort, 2)
	again, _ := flowOf(t, r, d.SrcPort)
	assert.Equal(t, after.LastSeen, again.LastSeen, "hinted %v: then left alone", hinted)

	// The real of flow b removed: its packets are dropped (IPVS's
	// expire_nodest_conn=0).
	svc := r.svc
	svc.Reals = svc.Reals[1:]
	apply(t, r.ns, r.x, svc)
	acks(0, b.SrcPort, 2)
	acks(0, c.SrcPort, 2)
	return log
}

// The cache changes nothing a user can see: the same packets give the
// same verdicts, reals and table entries with and without it.
func TestFlowHintsChangeNothing(t *testing.T) {
	requireRoot(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to show a flow ended on one leaving the other's cache")
	}
	with := newSchedRig(t, "rr", 0, 1, 1)
	require.Greater(t, with.x.objs.FlowCache.MaxEntries(), uint32(1), "this kernel has the cache")
	sport = 20000
	got := hintScript(t, with, true)

	testNoFlowCache = true
	t.Cleanup(func() { testNoFlowCache = false })
	without := newSchedRig(t, "rr", 0, 1, 1)
	require.Equal(t, uint32(1), without.x.objs.FlowCache.MaxEntries())
	sport = 20000
	want := hintScript(t, without, false)
	require.Equal(t, want, got)
}

// The cache serves: a flow's entry deleted behind its back (as an LRU
// eviction would) still goes to its real from the CPU that holds its
// hint, for at most the second the hint lasts, and not from the other;
// the control plane's epoch voids every hint.
func TestFlowHintsServe(t *testing.T) {
	requireRoot(t)
	r := newSchedRig(t, "rr", 0, 1, 1)
	a := newFlow()
	real := r.pick(a)
	for range 12 {
		f := syn(a.SrcPort)
		f.TCPFlags = testutil.TCPAck
		v, _ := runOnCPU(t, r, 0, f)
		require.EqualValues(t, xdpTX, v)
	}
	k := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(a.SrcPort), Dport: port16(80), Proto: 6}
	require.NoError(t, r.x.flows4().Delete(&k))
	ack := syn(a.SrcPort)
	ack.TCPFlags = testutil.TCPAck
	v, out := runOnCPU(t, r, 0, ack)
	require.EqualValues(t, xdpTX, v, "the hint serves")
	assert.Equal(t, real, int(out[5])-1)
	if runtime.NumCPU() > 1 {
		v, _ = runOnCPU(t, r, 1, ack)
		assert.EqualValues(t, xdpPass, v, "no hint on CPU 1: no flow, and an ACK starts none")
	}
	require.NoError(t, r.x.forgetFlowHints())
	v, _ = runOnCPU(t, r, 0, ack)
	assert.EqualValues(t, xdpPass, v, "the epoch moved: no hint")
}

// natHintScript is hintScript's NAT flow: the client's packets on CPU 0,
// the real's replies (which move the flow's state) on CPU 1.
func natHintScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	var log []string
	send := func(cpu int, in bool, flags uint8) {
		f := syn(45000)
		if !in {
			f = testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: client, Proto: 6,
				SrcPort: 8080, DstPort: 45000}
		}
		f.TCPFlags = flags
		v, out := runXOnCPU(t, ns, x, cpu, f)
		got := fmt.Sprintf("in %v verdict %d frame %x", in, v, out)
		log = append(log, got+connsLine(t, x))
	}
	twoWayScript(send)
	return log
}

// A NAT flow, with and without the cache: the same verdicts, rewritten
// frames and states, the real's FIN moving the state on another CPU.
func TestFlowHintsChangeNothingNAT(t *testing.T) {
	sameWithoutCache(t, newNATTest, natHintScript)
}

// A NAT flow is hinted too: its entry deleted behind the cache's back,
// the client's ACK still goes to the real, rewritten.
func TestFlowHintsServeNAT(t *testing.T) {
	ns, x := newNATTest(t)
	servesAfterDelete(t, ns, x, 46000)
}

// fnatHintScript is hintScript's FULLNAT flow: the client's packets on
// CPU 0, the real's replies to the local address and port on CPU 1. What
// it logs leaves out the local address and port, which a run picks (and
// the checksums that cover them); every frame's checksums are verified
// and every packet of the flow must leave from the same local port.
func fnatHintScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	var log []string
	var local netip.Addr
	var lport uint16
	send := func(cpu int, in bool, flags uint8) {
		f := syn(47000)
		if !in {
			f = testutil.Frame{SrcMAC: realMAC(1), DstMAC: srcMAC, Src: realAddr(1), Dst: local, Proto: 6,
				SrcPort: 8080, DstPort: lport}
		}
		f.TCPFlags = flags
		v, out := runXOnCPU(t, ns, x, cpu, f)
		if v == xdpTX || v == xdpPass || v == xdpRedirect {
			verifyChecksums(t, out)
		}
		if in && v == xdpTX {
			d := decode(t, out)
			if !local.IsValid() {
				local, lport = ip4Of(d.ip.SrcIP), uint16(d.tcp.SrcPort)
			}
			require.Equal(t, local, ip4Of(d.ip.SrcIP))
			require.Equal(t, lport, uint16(d.tcp.SrcPort))
			out = append([]byte(nil), out...)
			clear(out[24:30]) // the IP checksum and the source address
			clear(out[34:36]) // the source port
			clear(out[50:52]) // the TCP checksum
		}
		got := fmt.Sprintf("in %v verdict %d frame %x", in, v, out)
		log = append(log, got+connsLine(t, x))
	}
	twoWayScript(send)
	return log
}

// A FULLNAT flow, with and without the cache: the same verdicts, frames
// (less the local address and port) and states.
func TestFlowHintsChangeNothingFULLNAT(t *testing.T) {
	sameWithoutCache(t, newFNATTest, fnatHintScript)
}

// A FULLNAT flow is hinted: its entry deleted behind the cache's back,
// the client's ACK still goes to the real from the same local address
// and port.
func TestFlowHintsServeFULLNAT(t *testing.T) {
	ns, x := newFNATTest(t)
	servesAfterDelete(t, ns, x, 48000)
}

// twoWayScript is the life of a NAT or FULLNAT flow: the client's
// packets (in) on CPU 0, the real's (out) on CPU 1, the real's ACKs
// while it is established (which a route to the client lets go by their
// hint), the real closing first (FIN_WAIT) while CPU 0 holds the flow's
// hint.
func twoWayScript(send func(cpu int, in bool, flags uint8)) {
	send(0, true, testutil.TCPSyn)
	send(1, false, testutil.TCPSyn|testutil.TCPAck)
	for range 12 {
		send(0, true, testutil.TCPAck)
	}
	for range 4 {
		send(1, false, testutil.TCPAck)
	}
	send(1, false, testutil.TCPFin|testutil.TCPAck)
	for range 3 {
		send(0, true, testutil.TCPAck)
	}
	send(0, true, testutil.TCPFin|testutil.TCPAck)
	send(1, false, testutil.TCPAck)
	send(0, true, testutil.TCPAck)
}

// servesAfterDelete makes a flow from the client's port and hints it on
// CPU 0, deletes its entry from the flow table, and checks that its next
// ACK still leaves from CPU 0 exactly as the table's path sent the last,
// checksums right.
func servesAfterDelete(t *testing.T, ns *testutil.NS, x *Dataplane, port uint16) {
	f := syn(port)
	v, _ := runXOnCPU(t, ns, x, 0, f)
	require.EqualValues(t, xdpTX, v)
	f.TCPFlags = testutil.TCPAck
	var want []byte
	for range 12 {
		v, want = runXOnCPU(t, ns, x, 0, f)
		require.EqualValues(t, xdpTX, v)
	}
	k := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(port), Dport: port16(80), Proto: 6}
	require.NoError(t, x.flows4().Delete(&k))
	v, got := runXOnCPU(t, ns, x, 0, f)
	require.EqualValues(t, xdpTX, v, "the hint serves")
	assert.Equal(t, want, got, "rewritten as the table's path rewrote it")
	verifyChecksums(t, got)
}

// connsLine is the flow table as a user lists it, for a script's log.
func connsLine(t *testing.T, x *Dataplane) string {
	conns, err := x.Conns()
	require.NoError(t, err)
	var b strings.Builder
	for _, c := range conns {
		fmt.Fprintf(&b, " %s %s %s", c.Client, c.Real, c.State)
	}
	return b.String()
}

// sameWithoutCache runs script on a data plane open makes, then on one
// without the flow cache, and requires the same log.
func sameWithoutCache(t *testing.T, open func(*testing.T) (*testutil.NS, *Dataplane),
	script func(*testing.T, *testutil.NS, *Dataplane) []string) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: the real's replies come in on another")
	}
	ns, x := open(t)
	require.Greater(t, x.objs.FlowCache.MaxEntries(), uint32(1), "this kernel has the cache")
	got := script(t, ns, x)
	testNoFlowCache = true
	t.Cleanup(func() { testNoFlowCache = false })
	ns2, x2 := open(t)
	require.Equal(t, uint32(1), x2.objs.FlowCache.MaxEntries())
	require.Equal(t, script(t, ns2, x2), got)
}

// tcpFlags sets a gopacket TCP header's flags from their bits.
func tcpFlags(bits uint8) func(*layers.TCP) {
	return func(tcp *layers.TCP) {
		tcp.FIN, tcp.SYN, tcp.RST, tcp.ACK = bits&testutil.TCPFin != 0, bits&testutil.TCPSyn != 0,
			bits&testutil.TCPRst != 0, bits&testutil.TCPAck != 0
	}
}

// dr6HintScript is hintScript's flows for IPv6 DR: one hinted on CPU 0
// and then ended on CPU 1 (RST, then a SYN on its ports: a new
// connection, to the other real by rr), whose next ACKs on CPU 0 must go
// to the new real; one closed by its client's FIN.
func dr6HintScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	var log []string
	send := func(cpu int, port uint16, flags uint8) {
		v, out := runFrameOnCPU(t, ns, x, cpu, segment6(t, client6, vip6, port, 80, false, tcpFlags(flags), "x"))
		log = append(log, fmt.Sprintf("cpu %d port %d flags %#x verdict %d frame %x", cpu, port, flags, v, out)+connsLine(t, x))
	}
	hinted := func(port uint16) {
		send(0, port, testutil.TCPSyn)
		for range 12 {
			send(0, port, testutil.TCPAck)
		}
	}
	hinted(44000)
	send(1, 44000, testutil.TCPRst|testutil.TCPAck)
	send(1, 44000, testutil.TCPSyn)
	for range 3 {
		send(0, 44000, testutil.TCPAck)
	}
	hinted(44001)
	send(0, 44001, testutil.TCPFin|testutil.TCPAck)
	send(0, 44001, testutil.TCPAck)
	return log
}

// nat66HintScript is twoWayScript for an IPv6 NAT66 flow: the client's
// packets on CPU 0, the real's replies (which move the flow's state) on
// CPU 1.
func nat66HintScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	var log []string
	twoWayScript(func(cpu int, in bool, flags uint8) {
		f := segment6(t, client6, vip6, 45000, 80, false, tcpFlags(flags), "in")
		if !in {
			f = segment6(t, real6(1), client6, 8080, 45000, false, tcpFlags(flags), "out")
		}
		v, out := runFrameOnCPU(t, ns, x, cpu, f)
		log = append(log, fmt.Sprintf("in %v verdict %d frame %x", in, v, out)+connsLine(t, x))
	})
	return log
}

// fnat66HintScript is fnatHintScript for IPv6 FULLNAT: the client's
// packets on CPU 0, the real's replies to the local address and port on
// CPU 1; what it logs leaves out the local address and port a run picks
// (and the TCP checksum that covers them), every TCP checksum verified
// and one local port for the whole flow.
func fnat66HintScript(t *testing.T, ns *testutil.NS, x *Dataplane) []string {
	var log []string
	var local netip.Addr
	var lport uint16
	twoWayScript(func(cpu int, in bool, flags uint8) {
		f := segment6(t, client6, vip6, 47000, 80, false, tcpFlags(flags), "in")
		if !in {
			f = segment6(t, real6(1), local, 8080, lport, false, tcpFlags(flags), "out")
		}
		v, out := runFrameOnCPU(t, ns, x, cpu, f)
		if v == xdpTX || v == xdpPass {
			_, _, ok := tcp6Checksum(t, out)
			require.True(t, ok, "the TCP checksum")
		}
		if in && v == xdpTX {
			ip, tcp, _ := tcp6Checksum(t, out)
			if !local.IsValid() {
				local, lport = ip6Of(ip.SrcIP), uint16(tcp.SrcPort)
			}
			require.Equal(t, local, ip6Of(ip.SrcIP))
			require.Equal(t, lport, uint16(tcp.SrcPort))
			out = append([]byte(nil), out...)
			clear(out[22:38]) // the source address
			clear(out[54:56]) // the source port
			clear(out[70:72]) // the TCP checksum
		}
		log = append(log, fmt.Sprintf("in %v verdict %d frame %x", in, v, out)+connsLine(t, x))
	})
	return log
}

// IPv6 DR, NAT66 and FULLNAT66 flows, with and without the cache: the
// same verdicts, frames and states, a flow's ports reused on another CPU
// and a translated flow's state moved by its real's replies there.
func TestFlowHintsChangeNothing6(t *testing.T) {
	t.Run("dr", func(t *testing.T) { sameWithoutCache(t, newDR6Test, dr6HintScript) })
	t.Run("nat66", func(t *testing.T) { sameWithoutCache(t, newNAT66Test, nat66HintScript) })
	t.Run("fullnat66", func(t *testing.T) { sameWithoutCache(t, newFNAT6Test, fnat66HintScript) })
}

// IPv6 DR, NAT66 and FULLNAT66 flows are hinted: the entry deleted
// behind the cache's back, the client's ACK still leaves CPU 0 exactly as
// the table's path sent it, with extension headers before its TCP header
// too; not from CPU 1, which holds no hint; and no longer once the
// control plane's epoch moves.
func TestFlowHintsServe6(t *testing.T) {
	for _, c := range []struct {
		name string
		open func(*testing.T) (*testutil.NS, *Dataplane)
	}{{"dr", newDR6Test}, {"nat66", newNAT66Test}, {"fullnat66", newFNAT6Test}} {
		t.Run(c.name, func(t *testing.T) {
			ns, x := c.open(t)
			require.Greater(t, x.objs.FlowCache6.MaxEntries(), uint32(1), "this kernel has the cache")
			v, _ := runFrameOnCPU(t, ns, x, 0, frame6(t, vip6, 46000, true, false, 0, nil))
			require.EqualValues(t, xdpTX, v)
			ack := frame6(t, vip6, 46000, false, true, 0, nil)
			hop := []byte{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0}
			ackExt := frame6(t, vip6, 46000, false, true, layers.IPProtocolIPv6HopByHop, hop)
			var want, wantExt []byte
			for range 12 {
				v, want = runFrameOnCPU(t, ns, x, 0, ack)
				require.EqualValues(t, xdpTX, v)
			}
			v, wantExt = runFrameOnCPU(t, ns, x, 0, ackExt)
			require.EqualValues(t, xdpTX, v)
			k := xlbConnKey6{Src: words6(client6), Dst: words6(vip6), Sport: port16(46000), Dport: port16(80), Proto: 6}
			require.NoError(t, x.objs.Conns6.Delete(&k))
			v, got := runFrameOnCPU(t, ns, x, 0, ack)
			require.EqualValues(t, xdpTX, v, "the hint serves")
			assert.Equal(t, want, got, "sent as the table's path sent it")
			v, got = runFrameOnCPU(t, ns, x, 0, ackExt)
			require.EqualValues(t, xdpTX, v, "the hint serves after a hop-by-hop header")
			assert.Equal(t, wantExt, got)
			if _, _, ok := tcp6Checksum(t, got); c.name != "dr" {
				assert.True(t, ok, "the rewritten TCP checksum")
			}
			if runtime.NumCPU() > 1 {
				v, _ = runFrameOnCPU(t, ns, x, 1, ack)
				assert.EqualValues(t, xdpPass, v, "no hint on CPU 1: no flow, and an ACK starts none")
			}
			require.NoError(t, x.forgetFlowHints())
			v, _ = runFrameOnCPU(t, ns, x, 0, ack)
			assert.EqualValues(t, xdpPass, v, "the epoch moved: no hint")
		})
	}
}
