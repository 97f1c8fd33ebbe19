package xdp

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// runOnCPU is run with the program on one CPU (BPF_PROG_TEST_RUN runs it
// on the caller's): the established-flow cache is per CPU.
func runOnCPU(t *testing.T, r *schedRig, cpu int, f testutil.Frame) (uint32, []byte) {
	t.Helper()
	var ret uint32
	frame := f.Bytes()
	out := make([]byte, len(frame)+64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	require.NoError(t, r.ns.Do(func() error {
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
		ret, err = r.x.objs.XlbXdp.Run(opts)
		return err
	}))
	return ret, opts.DataOut
}

// flowOf is the flow table's entry for the client port, if any.
func flowOf(t *testing.T, r *schedRig, port uint16) (xlbConn, bool) {
	k := xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(port), Dport: port16(80), Proto: 6}
	var v xlbConn
	err := r.x.objs.Conns.Lookup(&k, &v)
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
			got += fmt.Sprintf(" real %d", int(out[5])-1)
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
	require.NoError(t, r.x.objs.Conns.Delete(&k))
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
