package xdp

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// ipvsInputOnly is IPVS's INPUT-ONLY TCP state table (the reference,
// ipvs-vrrp-semantics.md A.9, for the states a flow born of a SYN reaches),
// [event][state], written out again here so that the program is checked
// against an independent copy. (The reference gives NONE+ACK as
// ESTABLISHED; the kernel's table says CLOSE. A flow here never is in NONE.)
var ipvsInputOnly = map[string]map[string]string{
	"syn": {"SYN_RECV": "SYN_RECV", "ESTABLISHED": "ESTABLISHED", "FIN_WAIT": "SYN_RECV", "TIME_WAIT": "SYN_RECV", "CLOSE": "SYN_RECV"},
	"fin": {"SYN_RECV": "TIME_WAIT", "ESTABLISHED": "FIN_WAIT", "FIN_WAIT": "FIN_WAIT", "TIME_WAIT": "TIME_WAIT", "CLOSE": "CLOSE"},
	"ack": {"SYN_RECV": "ESTABLISHED", "ESTABLISHED": "ESTABLISHED", "FIN_WAIT": "FIN_WAIT", "TIME_WAIT": "TIME_WAIT", "CLOSE": "CLOSE"},
	"rst": {"SYN_RECV": "SYN_RECV", "ESTABLISHED": "CLOSE", "FIN_WAIT": "CLOSE", "TIME_WAIT": "CLOSE", "CLOSE": "CLOSE"},
}

func active(state string) bool {
	return state == "ESTABLISHED" || state == "SYN_RECV" || state == "SYN_SENT" || state == "SYNACK"
}

var eventFlags = map[string]uint8{"syn": testutil.TCPSyn, "fin": testutil.TCPFin | testutil.TCPAck, "ack": testutil.TCPAck, "rst": testutil.TCPRst | testutil.TCPAck}

// model is IPVS's accounting of a set of flows.
type model struct {
	flows map[uint16]*modelFlow // by source port
	n     int
}

type modelFlow struct {
	real  int
	state string
}

func (m *model) counts() (act, inact []int64) {
	act, inact = make([]int64, m.n), make([]int64, m.n)
	for _, f := range m.flows {
		if active(f.state) {
			act[f.real]++
		} else {
			inact[f.real]++
		}
	}
	return act, inact
}

func (r *schedRig) counts() (act, inact []int64) {
	st, err := r.x.Stats()
	require.NoError(r.t, err)
	for _, rs := range st.Services[0].Reals {
		act = append(act, rs.ActiveConns)
		inact = append(inact, rs.InactConns)
	}
	return act, inact
}

func (r *schedRig) withCounts() []sched.Dest {
	ds := r.dests()
	act, inact := r.counts()
	for i := range ds {
		ds[i].Active, ds[i].Inactive = uint32(act[i]), uint32(inact[i])
	}
	return ds
}

// A scripted life of flows: every pick of lc/wlc/sed/nq/fo/ovf is the reference
// picker's for the counters at that moment, and ActiveConn/InActConn
// follow IPVS's table after every packet.
func TestLeastConnSchedulersAndCounts(t *testing.T) {
	pickers := map[string]func([]sched.Dest) int{"lc": sched.LC, "wlc": sched.WLC, "sed": sched.SED, "nq": sched.NQ, "fo": sched.FO, "ovf": sched.OVF}
	for name, ref := range pickers {
		t.Run(name, func(t *testing.T) {
			r := newSchedRig(t, name, 0, 1, 3, 0, 2)
			m := &model{flows: map[uint16]*modelFlow{}, n: 4}
			rng := rand.New(rand.NewPCG(7, uint64(len(name))))
			var ports []uint16
			for step := range 300 {
				if len(ports) == 0 || rng.IntN(3) == 0 {
					f := newFlow()
					want := ref(r.withCounts())
					got := r.pick(f)
					require.Equal(t, want, got, "step %d: new flow", step)
					if got < 0 {
						// ovf: every real has more active
						// connections than its weight.
						require.Equal(t, "ovf", name, "step %d: no real", step)
						continue
					}
					m.flows[f.SrcPort] = &modelFlow{real: got, state: "SYN_RECV"}
					ports = append(ports, f.SrcPort)
				} else {
					port := ports[rng.IntN(len(ports))]
					ev := []string{"ack", "ack", "fin", "rst"}[rng.IntN(4)]
					mf := m.flows[port]
					f := syn(port)
					f.TCPFlags = eventFlags[ev]
					v, _ := run(t, r.ns, r.x, f.Bytes())
					require.EqualValues(t, xdpTX, v, "step %d", step)
					mf.state = ipvsInputOnly[ev][mf.state]
				}
				wa, wi := m.counts()
				ga, gi := r.counts()
				require.Equal(t, wa, ga, "step %d: ActiveConn", step)
				require.Equal(t, wi, gi, "step %d: InActConn", step)
			}
			conns, err := r.x.Conns()
			require.NoError(t, err)
			for _, c := range conns {
				assert.Equal(t, m.flows[c.Client.Port()].state, c.State)
			}
		})
	}
}

// Flows expire on their state's timeout (shortened here), leaving the
// counters as IPVS leaves them; a SYN on a TIME_WAIT flow starts anew.
func TestConnExpiryAndReuse(t *testing.T) {
	r := newSchedRig(t, "lc", 0, 1, 1)
	require.NoError(t, r.x.SetTimeouts(dataplane.Timeouts{TCPFin: time.Second, UDP: time.Second}))
	to, err := r.x.Timeouts()
	require.NoError(t, err)
	assert.Equal(t, dataplane.Timeouts{TCP: 900 * time.Second, TCPFin: time.Second, UDP: time.Second}, to)
	// CLOSE's 10 s is not one ipvsadm can set; shorten it for the test.
	closeState, one := xlbXlbCtStateXLB_CT_CLOSE, uint32(1)
	require.NoError(t, r.x.objs.Timeouts.Update(&closeState, &one, ebpf.UpdateAny))

	send := func(port uint16, flags uint8) {
		f := syn(port)
		f.TCPFlags = flags
		v, _ := run(t, r.ns, r.x, f.Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	a := newFlow() // -> real 0
	require.Equal(t, 0, r.pick(a))
	b := newFlow() // -> real 1
	require.Equal(t, 1, r.pick(b))
	send(a.SrcPort, testutil.TCPAck)
	send(a.SrcPort, testutil.TCPFin|testutil.TCPAck) // FIN_WAIT, 1 s
	send(b.SrcPort, testutil.TCPAck)
	send(b.SrcPort, testutil.TCPRst) // CLOSE, 1 s
	act, inact := r.counts()
	assert.Equal(t, []int64{0, 0}, act)
	assert.Equal(t, []int64{1, 1}, inact)

	c := newFlow()
	require.Equal(t, 0, r.pick(c), "lc: both at 1 inactive, the earlier wins")
	send(c.SrcPort, testutil.TCPFin) // SYN_RECV + FIN -> TIME_WAIT

	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, r.x.Sweep())
	act, inact = r.counts()
	assert.Equal(t, []int64{0, 0}, act, "expired")
	assert.Equal(t, []int64{1, 0}, inact, "only the TIME_WAIT flow (120 s) is left")
	conns, err := r.x.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 1)
	assert.Equal(t, "TIME_WAIT", conns[0].State)

	// conn_reuse_mode: a SYN on the TIME_WAIT flow's ports is a new
	// connection: the old one ends first, then lc sees two idle reals and
	// takes the earlier.
	assert.Equal(t, 0, r.pick(c))
	act, inact = r.counts()
	assert.Equal(t, []int64{1, 0}, act)
	assert.Equal(t, []int64{0, 0}, inact)
}

// Flows the LRU evicts stop counting once a sweep has seen the table.
func TestEvictedFlowsLeaveTheCounts(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res) // MaxConns 4096
	apply(t, ns, x, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "wlc",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}})
	for i := range 10000 {
		v, _ := run(t, ns, x, syn(uint16(20000+i)).Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	live := x.ft.live() + connEntries(t, x.objs.Conns, x.objs.HalfOpen)
	require.Less(t, live, 10000, "the table evicted")
	st, err := x.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 10000, st.Services[0].Reals[0].ActiveConns, "counted before any sweep")

	require.NoError(t, x.Sweep())
	st, err = x.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, live, st.Services[0].Reals[0].ActiveConns)
	assert.Zero(t, st.Services[0].Reals[0].InactConns)
}

// UDP flows count as inactive for their whole life and expire on the UDP
// timeout (--set ... udp).
func TestUDPFlowCounts(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}}
	x := openTest(t, ns, res)
	apply(t, ns, x, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "wlc",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 53, Weight: 1, Forward: lvs.DR}}})
	require.NoError(t, x.SetTimeouts(dataplane.Timeouts{UDP: time.Second}))
	q := testutil.Frame{SrcMAC: clientMC, DstMAC: dirMAC, Src: client, Dst: vip, Proto: 17, SrcPort: 6000, DstPort: 53, Payload: []byte("q")}
	for range 3 {
		v, _ := run(t, ns, x, q.Bytes())
		require.EqualValues(t, xdpTX, v)
	}
	st, err := x.Stats()
	require.NoError(t, err)
	assert.Zero(t, st.Services[0].Reals[0].ActiveConns)
	assert.EqualValues(t, 1, st.Services[0].Reals[0].InactConns)
	conns, err := x.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 1)
	assert.Equal(t, "UDP", conns[0].State)

	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, x.Sweep())
	st, err = x.Stats()
	require.NoError(t, err)
	assert.Zero(t, st.Services[0].Reals[0].InactConns, "expired after the UDP timeout")
}

// A flow refreshed after the sweep took its time (packets keep coming while
// the sweep walks the table) is not expired: the daemon test caught the
// sweeper deleting new flows whose last-seen time was after its own now.
func TestSweepKeepsFlowsNewerThanItsClock(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1)
	f := newFlow()
	require.Equal(t, 0, r.pick(f))
	k := xlbConnKey{Src: ip4(f.Src), Dst: ip4(f.Dst), Sport: port16(f.SrcPort), Dport: port16(f.DstPort), Proto: 6}
	var c xlbConn
	// Its SYN made it half-open.
	require.NoError(t, r.x.objs.HalfOpen.Lookup(&k, &c))
	c.LastSeen = monotonicNow() + uint64(5*time.Second)
	require.NoError(t, r.x.objs.HalfOpen.Update(&k, &c, ebpf.UpdateExist))
	require.NoError(t, r.x.Sweep())
	require.NoError(t, r.x.objs.HalfOpen.Lookup(&k, &c), "the flow must survive the sweep")
	act, _ := r.counts()
	assert.Equal(t, []int64{1}, act)
}

// connEntries counts the entries of flow-keyed maps (the flow table,
// the half-open one).
func connEntries(t *testing.T, maps ...*ebpf.Map) int {
	t.Helper()
	n := 0
	var k xlbConnKey
	var v xlbConn
	for _, m := range maps {
		it := m.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		require.NoError(t, it.Err())
	}
	return n
}

// A flow moving from the half-open table to the flow table marks its
// real's sweep counts: a sweep walking the flow table, then the half-open
// one, may see it in neither, and must not "correct" the real's counts by
// it. A sweep starts from zero, so a move before it blocks nothing.
func TestPromotionMarksTheSweep(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	x := openTest(t, ns, staticResolver{realAddr(1): {Ifindex: 1, MAC: realMAC(1), SrcMAC: srcMAC}})
	apply(t, ns, x, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		Reals: []dataplane.Real{{Addr: realAddr(1), Port: 80, Weight: 1, Forward: lvs.DR}}})
	slot := x.snapshot()[0].reals[0].slot
	moved := func() int64 {
		var sc xlbSweepCount
		require.NoError(t, x.objs.SweepCounts.Lookup(&slot, &sc))
		return sc.Moved
	}
	f := syn(33000)
	v, _ := run(t, ns, x, f.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Zero(t, moved(), "a new flow is half-open: nothing moved")
	f.TCPFlags = testutil.TCPAck
	v, _ = run(t, ns, x, f.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.EqualValues(t, 1, moved(), "the ACK proved the flow: it moved")
	require.NoError(t, x.Sweep())
	assert.Zero(t, moved(), "the sweep starts from zero")
	st, err := x.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Services[0].Reals[0].ActiveConns, "the sweep saw the flow and left its count")
}
