package xdp

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// newFlowTableRig is a DR director of four reals (rr) whose IPv4 flow
// table is small: 16 flows, an array of 32 slots (windows of 16 cover
// half of it), so that flows overflow into the LRU.
func newFlowTableRig(t *testing.T, pinDir string) (*testutil.NS, *Dataplane, dataplane.Service) {
	requireRoot(t)
	ns, _ := testNS(t)
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr"}
	for i := 1; i <= 4; i++ {
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: realAddr(i), Port: 80, Weight: 1, Forward: lvs.DR})
	}
	x := openFlowTableRig(t, ns, pinDir)
	apply(t, ns, x, svc)
	return ns, x, svc
}

func openFlowTableRig(t *testing.T, ns *testutil.NS, pinDir string) *Dataplane {
	res := staticResolver{}
	for i := 1; i <= 4; i++ {
		res[realAddr(i)] = NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}
	}
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{PinDir: pinDir, Resolver: res, MaxConns: 16, MaxHalfOpen: 4096,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), SweepInterval: time.Hour})
		return err
	}))
	return x
}

// newReleasableRig is newFlowTableRig on a pin directory of its own, with
// a release that lets go of the director, its pins left for the next
// one, which the test's cleanup then does not close.
func newReleasableRig(t *testing.T) (string, *testutil.NS, *Dataplane, func()) {
	pin := "/sys/fs/bpf/xlb-test-" + testutil.Suffix()
	ns, x, _ := newFlowTableRig(t, pin)
	released := false
	t.Cleanup(func() {
		if !released {
			require.NoError(t, x.Close())
		}
	})
	return pin, ns, x, func() {
		require.NoError(t, x.Release())
		released = true
	}
}

// flowKey4 is the flow table's key of the test client's flow from port.
func flowKey4(port uint16) xlbConnKey {
	return xlbConnKey{Src: ip4(client), Dst: ip4(vip), Sport: port16(port), Dport: port16(80), Proto: 6}
}

// makeFlow makes the test client's flow from port (a SYN, then an ACK
// that proves it, on CPU 0) and returns its real (its MAC's last byte).
func makeFlow(t *testing.T, ns *testutil.NS, x *Dataplane, port uint16) int {
	t.Helper()
	f := syn(port)
	v, out := runXOnCPU(t, ns, x, 0, f)
	require.EqualValues(t, xdpTX, v)
	real := int(out[5])
	f.TCPFlags = testutil.TCPAck
	v, out = runXOnCPU(t, ns, x, 0, f)
	require.EqualValues(t, xdpTX, v)
	require.Equal(t, real, int(out[5]), "flow %d's ACK to its SYN's real", port)
	return real
}

// The array and the LRU behind it hold every flow: a flow that finds no
// slot in its window overflows and is still found, listed, counted and
// ended; the control plane's view of the array (its hash, its slots)
// agrees with the program's; slots of ended flows are given back.
func TestFlowTableHoldsEveryFlow(t *testing.T) {
	ns, x, _ := newFlowTableRig(t, "/sys/fs/bpf/xlb-test-"+testutil.Suffix())
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	require.EqualValues(t, 32, x.ft.mask+1, "twice the flows' slots")

	// 40 flows, made on one CPU (the LRU's per-CPU share takes the
	// overflow): the array holds at most 32.
	const flows = 40
	real := map[uint16]int{}
	for i := range flows {
		port := uint16(31000 + i)
		real[port] = makeFlow(t, ns, x, port)
	}
	inArray := x.ft.live()
	total, err := x.flows4().count()
	require.NoError(t, err)
	assert.Equal(t, flows, total, "every flow in the array or the LRU")
	assert.Less(t, inArray, flows, "some flows overflowed")
	assert.Greater(t, inArray, 16, "most flows in the array")
	overflowed := 0
	for i := range flows {
		k := flowKey4(uint16(31000 + i))
		s, over := x.ft.find(k)
		if s == nil {
			overflowed++
			assert.True(t, over, "flow %d: in the LRU, and its home says so", 31000+i)
		}
	}
	assert.Equal(t, flows-inArray, overflowed, "the control plane finds the program's flows where the program put them")

	// Every flow's packets keep going to its real, overflowed or not.
	for port, r := range real {
		f := syn(port)
		f.TCPFlags = testutil.TCPAck
		v, out := runXOnCPU(t, ns, x, 1, f)
		require.EqualValues(t, xdpTX, v)
		assert.Equal(t, r, int(out[5]), "flow %d", port)
	}
	conns, err := x.Conns()
	require.NoError(t, err)
	assert.Len(t, conns, flows, "ipvsadm -Lnc lists every flow")
	st, err := x.Stats()
	require.NoError(t, err)
	active := 0
	for _, r := range st.Services[0].Reals {
		active += int(r.ActiveConns)
	}
	assert.Equal(t, flows, active, "ActiveConn")

	// A flow the control plane writes (as sync installs one) into a
	// slot the program then finds: the first flow's entry under a new
	// port, after that flow ended.
	first := flowKey4(31000)
	var v0 xlbConn
	require.NoError(t, x.flows4().Lookup(&first, &v0))
	require.NoError(t, x.flows4().Delete(&first))
	installed := flowKey4(32000)
	require.NoError(t, x.flows4().Update(&installed, &v0, ebpf.UpdateNoExist))
	f := syn(32000)
	f.TCPFlags = testutil.TCPAck
	v, out := runXOnCPU(t, ns, x, 0, f)
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, real[31000], int(out[5]), "the installed flow goes to the real its entry names")

	// Every flow idle past its timeout: the sweep ends them all, takes
	// them off ActiveConn, empties the LRU and its homes' counts, and
	// gives the array's slots back within two more sweeps.
	// (a second's timeout run out since boot: a VM's clock may not
	// have run for a whole established timeout)
	expire := func(v *xlbConn) { v.LastSeen, v.TimeoutS = 1, 1 }
	x.ft.each(func(_ xlbConnKey, v *xlbConn) { expire(v) })
	keys, vals := make([]xlbConnKey, 64), make([]xlbConn, 64)
	var lru []xlbConnKey
	require.NoError(t, readBatches(x.objs.Conns, keys, vals, func(i int) { lru = append(lru, keys[i]) }))
	for i := range lru {
		var c xlbConn
		require.NoError(t, x.objs.Conns.Lookup(&lru[i], &c))
		expire(&c)
		require.NoError(t, x.objs.Conns.Update(&lru[i], &c, ebpf.UpdateExist))
	}
	for range 3 {
		require.NoError(t, x.Sweep())
	}
	total, err = x.flows4().count()
	require.NoError(t, err)
	assert.Zero(t, total, "flows left")
	st, err = x.Stats()
	require.NoError(t, err)
	for _, r := range st.Services[0].Reals {
		assert.Zero(t, r.ActiveConns, "ActiveConn of %s", r.Addr)
	}
	for i := range x.ft.mask + 1 {
		tag := x.ft.slot(i).tag().Load()
		assert.EqualValues(t, ftFree, tag&ftState, "slot %d given back", i)
		assert.Zero(t, tag>>ftOverShift, "slot %d's overflow count", i)
	}

	// A flow made now finds its home free again.
	makeFlow(t, ns, x, 33000)
	s, _ := x.ft.find(flowKey4(33000))
	assert.NotNil(t, s, "the new flow in the array")
}

// A director restarted on its pinned maps finds its flows in the array
// again: the hash's key is kept beside it.
func TestFlowTableKeptAcrossRestart(t *testing.T) {
	pin, ns, x, release := newReleasableRig(t)
	real := map[uint16]int{}
	for i := range 8 {
		port := uint16(34000 + i)
		real[port] = makeFlow(t, ns, x, port)
	}
	salt0 := x.ft.salt0
	release()

	y := openFlowTableRig(t, ns, pin)
	t.Cleanup(func() { require.NoError(t, y.Close()) })
	assert.Equal(t, salt0, y.ft.salt0, "the hash's key, from the pin")
	for port, r := range real {
		s, _ := y.ft.find(flowKey4(port))
		require.NotNil(t, s, "flow %d found by the new process", port)
		f := syn(port)
		f.TCPFlags = testutil.TCPAck
		v, out := runXOnCPU(t, ns, y, 0, f)
		require.EqualValues(t, xdpTX, v)
		assert.Equal(t, r, int(out[5]), "flow %d to its real after the restart", port)
	}
}

// A director taking over from one before the array (every IPv4 flow in
// the LRU, nothing counted at a home) finds those flows: the new array
// counts each at its home.
func TestFlowTableAdoptsLRUFlows(t *testing.T) {
	pin, ns, x, release := newReleasableRig(t)
	want := makeFlow(t, ns, x, 35000)
	// The older director's flow: in the LRU alone.
	var c xlbConn
	made := flowKey4(35000)
	require.NoError(t, x.flows4().Lookup(&made, &c))
	old := flowKey4(35001)
	require.NoError(t, x.objs.Conns.Update(&old, &c, ebpf.UpdateNoExist))
	release()
	// (an older director's pins had no array)
	for _, name := range []string{xlbMapFlowtab, xlbMapFlowtabMeta} {
		require.NoError(t, os.Remove(filepath.Join(pin, name)))
	}

	y := openFlowTableRig(t, ns, pin)
	t.Cleanup(func() { require.NoError(t, y.Close()) })
	s, over := y.ft.find(old)
	assert.Nil(t, s)
	assert.True(t, over, "the flow counted at its home")
	f := syn(35001)
	f.TCPFlags = testutil.TCPAck
	v, out := runXOnCPU(t, ns, y, 0, f)
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, want, int(out[5]), "the older director's flow goes on to its real")
	conns, err := y.Conns()
	require.NoError(t, err)
	assert.Len(t, conns, 1)
}
