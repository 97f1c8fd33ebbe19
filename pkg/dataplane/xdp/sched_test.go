package xdp

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// schedRig is one service whose reals are told apart by their MAC's last
// byte (real i has MAC ...:i, i from 1).
type schedRig struct {
	t   *testing.T
	ns  *testutil.NS
	x   *Dataplane
	svc dataplane.Service
}

func newSchedRig(t *testing.T, schedName string, flags lvs.SvcFlags, weights ...int32) *schedRig {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: schedName, Flags: flags}
	for i, w := range weights {
		res[realAddr(i+1)] = NextHop{Ifindex: 1, MAC: realMAC(i + 1), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: realAddr(i + 1), Port: 80, Weight: w, Forward: lvs.DR})
	}
	x := openTest(t, ns, res)
	apply(t, ns, x, svc)
	return &schedRig{t: t, ns: ns, x: x, svc: svc}
}

func (r *schedRig) dests() []sched.Dest {
	ds := make([]sched.Dest, len(r.svc.Reals))
	for i, re := range r.svc.Reals {
		ds[i] = sched.Dest{Weight: re.Weight, Addr: re.Addr, Port: re.Port}
	}
	return ds
}

func (r *schedRig) setWeights(ws ...int32) {
	for i, w := range ws {
		r.svc.Reals[i].Weight = w
	}
	apply(r.t, r.ns, r.x, r.svc)
}

// pick sends a SYN of a new flow and returns the chosen real's index in
// the dest list, or -1 when the program dropped it.
func (r *schedRig) pick(f testutil.Frame) int {
	v, out := run(r.t, r.ns, r.x, f.Bytes())
	if v == xdpDrop {
		return -1
	}
	require.EqualValues(r.t, xdpTX, v)
	return int(out[5]) - 1
}

var sport uint16 = 10000

func newFlow() testutil.Frame {
	sport++
	return syn(sport)
}

// The scans of lc, wlc, sed, nq, fo, ovf, twos and sh-fallback run in
// bpf_loop where the kernel has it, as bounded loops before 5.17: the
// same picks either way.
func TestSchedulersWithoutBPFLoop(t *testing.T) {
	testNoBPFLoop = true
	t.Cleanup(func() { testNoBPFLoop = false })
	t.Run("match IPVS", TestSchedulersMatchIPVS)
	t.Run("least-connection", TestLeastConnSchedulersAndCounts)
}

// Without bpf_loop, mh-fallback (whose search runs in it) is refused by
// name, and nothing of the service is applied.
func TestMHFallbackNeedsBPFLoop(t *testing.T) {
	testNoBPFLoop = true
	t.Cleanup(func() { testNoBPFLoop = false })
	r := newSchedRig(t, "mh", 0, 1, 1)
	svc := r.svc
	svc.Flags = lvs.Sched1
	err := r.ns.Do(func() error { return r.x.Apply(inListOrder([]dataplane.Service{svc})) })
	require.ErrorContains(t, err, "mh-fallback searches the table with bpf_loop (Linux 5.17), which this kernel does not have")
	st, err := r.x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	assert.Equal(t, lvs.SvcFlags(0), st.Services[0].Flags, "the service as it was")
}

func TestSchedulersMatchIPVS(t *testing.T) {
	t.Run("rr", func(t *testing.T) {
		r := newSchedRig(t, "rr", 0, 1, 5, 0, 2)
		ref := sched.RR{Cursor: -1}
		var got, want []int
		for range 20 {
			got = append(got, r.pick(newFlow()))
			want = append(want, ref.Pick(r.dests()))
		}
		assert.Equal(t, want, got)
		assert.NotContains(t, got, 2, "weight 0 quiesces")
	})

	t.Run("wrr worked example and a mid-cycle weight change", func(t *testing.T) {
		// The reference's worked example is init_svc over the whole
		// list: an rr service switched to wrr (ipvsadm -E -s wrr).
		r := newSchedRig(t, "rr", 0, 4, 3, 2)
		r.svc.Scheduler = "wrr"
		apply(t, r.ns, r.x, r.svc)
		var got []int
		for range 9 {
			got = append(got, r.pick(newFlow()))
		}
		assert.Equal(t, []int{0, 0, 1, 0, 1, 2, 0, 1, 2}, got, "A A B A B C A B C")

		// After A A B A (cw=2), C's weight goes to 0: A B | A B | A A B | A B.
		for range 4 {
			r.pick(newFlow())
		}
		r.setWeights(4, 3, 0)
		got = nil
		for range 9 {
			got = append(got, r.pick(newFlow()))
		}
		assert.Equal(t, []int{0, 1, 0, 1, 0, 0, 1, 0, 1}, got)
	})

	t.Run("wrr random weights and changes against the reference", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		r := newSchedRig(t, "wrr", 0, 5, 2, 7, 1)
		ref := sched.WRRFilled(r.dests())
		for round := range 6 {
			for range 40 {
				want := ref.Pick(r.dests())
				require.Equal(t, want, r.pick(newFlow()), "round %d", round)
			}
			before := r.dests()
			ws := []int32{rng.Int32N(8), rng.Int32N(8), rng.Int32N(8), rng.Int32N(8)}
			r.setWeights(ws...)
			// One dest_changed per edited real, in the order the rig
			// gives them (the list's, reversed: inListOrder).
			after := r.dests()
			for i := len(before) - 1; i >= 0; i-- {
				if before[i] != after[i] {
					before[i] = after[i]
					ref.Changed(before)
				}
			}
		}
	})

	// "A down" without a table change: A's route is gone, so it keeps its
	// buckets (as an overloaded IPVS dest does) but is unavailable.
	// (Weight 0 would refill the table, A A B C -> A B C.)
	for _, fallback := range []bool{true, false} {
		t.Run("sh worked example", func(t *testing.T) {
			flags := lvs.SvcFlags(0)
			if fallback {
				flags = lvs.Sched1
			}
			r := newSchedRig(t, "sh", flags, 2, 1, 1)
			src := netip.MustParseAddr("192.168.1.10")
			f := newFlow()
			f.Src = src
			assert.EqualValues(t, 248, sched.Hash32(0xC0A8010A, 8))
			assert.Equal(t, 0, r.pick(f), "bucket 248 is A")

			r.x.cfg.Resolver.(staticResolver)[realAddr(1)] = NextHop{} // no route
			// The resolver's next pass finds the route gone.
			require.NoError(t, r.ns.Do(func() error { r.x.resolvePass(true); return nil }))
			f = newFlow()
			f.Src = src
			if fallback {
				assert.Equal(t, 1, r.pick(f), "A down, sh-fallback: probes 240 (A), 241 (A), 242 (B)")
			} else {
				assert.Equal(t, -1, r.pick(f), "A down, no fallback: no destination")
			}
		})
	}

	for _, flags := range []lvs.SvcFlags{0, lvs.Sched2, lvs.Sched1, lvs.Sched2 | lvs.Sched1} {
		t.Run("sh random sources", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(flags)))
			r := newSchedRig(t, "sh", flags, 3, 0, 2, 1, 4)
			tab := sched.SHTable(r.dests())
			for range 300 {
				f := newFlow()
				f.Src = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
				var port uint16
				if flags&lvs.Sched2 != 0 {
					port = f.SrcPort
				}
				want := sched.SHPick(&tab, r.dests(), sched.SHKey(f.Src, port), flags&lvs.Sched1 != 0)
				require.Equal(t, want, r.pick(f), "source %s", f.Src)
			}
		})
	}

	// mh: the BPF picker (hsiphash, the prime-sized table, the fallback's
	// rehash loop) against the reference, over many clients, with a real
	// quiesced (it keeps its entries: IPVS's last_weight) and one whose
	// route is gone (unavailable, entries kept).
	for _, flags := range []lvs.SvcFlags{0, lvs.Sched2, lvs.Sched1, lvs.Sched2 | lvs.Sched1} {
		t.Run(fmt.Sprintf("mh random sources %s", strings.Join(sched.FlagNames("mh", flags), "+")), func(t *testing.T) {
			if flags&lvs.Sched1 != 0 && testNoBPFLoop {
				t.Skip("mh-fallback runs in bpf_loop: refused without it (TestMHFallbackNeedsBPFLoop)")
			}
			rng := rand.New(rand.NewPCG(7, uint64(flags)))
			r := newSchedRig(t, "mh", flags, 3, 1, 2, 1, 4)
			ds := r.dests()
			r.setWeights(3, 1, 0, 1, 4)
			ds[2].LastWeight, ds[2].Weight = 2, 0
			r.x.cfg.Resolver.(staticResolver)[realAddr(4)] = NextHop{} // no route
			require.NoError(t, r.ns.Do(func() error { r.x.resolvePass(true); return nil }))
			ds[3].Overloaded = true // unavailable, as IPVS's is_unavailable sees an overloaded dest
			tab := sched.MHTable(ds)
			byReal := map[int]int{}
			for range 2000 {
				f := newFlow()
				f.SrcPort = uint16(rng.Uint32())
				f.Src = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
				var port uint16
				if flags&lvs.Sched2 != 0 {
					port = f.SrcPort
				}
				want := sched.MHPick(tab, ds, sched.AddrFold(f.Src), port, flags&lvs.Sched1 != 0)
				got := r.pick(f)
				require.Equal(t, want, got, "source %s:%d", f.Src, f.SrcPort)
				byReal[got]++
			}
			t.Logf("%v", byReal)
			if flags&lvs.Sched1 != 0 {
				assert.Zero(t, byReal[-1], "mh-fallback finds an available real for every client")
			} else {
				assert.Positive(t, byReal[-1], "without fallback, the clients of unavailable reals get none")
			}
		})
	}

	// twos draws at random (bpf_get_prandom_u32, as the kernel's
	// get_random_u32_below): no sequence to compare, but what the draws
	// give. Weights 3, 0, 1 and no connections: draws in [0, 4], and the
	// first real takes 0..3 (its weight and one more, as ip_vs_twos.c
	// walks); the second choice replaces the first only when less loaded
	// per weight, which the SYN of the flow before it (a SYN_RECV,
	// inactive) can make it. The weight-0 real never.
	t.Run("twos", func(t *testing.T) {
		r := newSchedRig(t, "twos", 0, 3, 0, 1)
		got := map[int]int{}
		const n = 600
		for range n {
			got[r.pick(newFlow())]++
		}
		assert.Zero(t, got[1], "weight 0 quiesces")
		assert.Zero(t, got[-1], "a real always")
		assert.Greater(t, got[2], n/10, "the lighter real is drawn too: %v", got)
		assert.Greater(t, got[0], got[2], "the heavier real more often: %v", got)
	})

	t.Run("dh", func(t *testing.T) {
		// dh hashes the destination: one service per VIP.
		requireRoot(t)
		ns, _ := testNS(t)
		res := staticResolver{}
		var svcs []dataplane.Service
		var reals []dataplane.Real
		for i := range 4 {
			res[realAddr(i+1)] = NextHop{Ifindex: 1, MAC: realMAC(i + 1), SrcMAC: srcMAC}
			reals = append(reals, dataplane.Real{Addr: realAddr(i + 1), Port: 80, Weight: int32(i), Forward: lvs.DR})
		}
		var vips []netip.Addr
		for i := range 40 {
			v := netip.AddrFrom4([4]byte{10, 1, byte(i), byte(i * 7)})
			vips = append(vips, v)
			svcs = append(svcs, dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: v, Port: 80, Protocol: lvs.TCP}, Scheduler: "dh", Reals: reals})
		}
		x := openTest(t, ns, res)
		apply(t, ns, x, svcs...)
		ds := []sched.Dest{{Weight: 0}, {Weight: 1}, {Weight: 2}, {Weight: 3}}
		tab := sched.DHTable(ds)
		for _, v := range vips {
			f := newFlow()
			f.Dst = v
			verdict, out := run(t, ns, x, f.Bytes())
			got := -1
			if verdict == xdpTX {
				got = int(out[5]) - 1
			}
			assert.Equal(t, sched.DHPick(&tab, ds, v), got, "VIP %s", v)
		}
	})
}

// A service's counters are its reals' plus what removed reals had counted:
// they never go down when a real leaves (as IPVS's service stats).
func TestServiceCountersKeepRemovedReals(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1, 1)
	for range 4 {
		require.GreaterOrEqual(t, r.pick(newFlow()), 0)
	}
	st, err := r.x.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 4, st.Services[0].Conns)
	require.EqualValues(t, 2, st.Services[0].Reals[1].Conns)

	r.svc.Reals = r.svc.Reals[:1]
	apply(t, r.ns, r.x, r.svc)
	st, err = r.x.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 4, st.Services[0].Conns)
	assert.EqualValues(t, 4, st.Services[0].Packets)
	require.Len(t, st.Services[0].Reals, 1)
	assert.EqualValues(t, 2, st.Services[0].Reals[0].Conns)

	// The removed real's slot is reused with fresh counters; the new real
	// heads the dest list, as the kernel puts it.
	r.svc.Reals = append(r.svc.Reals, dataplane.Real{Addr: realAddr(3), Port: 80, Weight: 1, Forward: lvs.DR})
	r.x.cfg.Resolver.(staticResolver)[realAddr(3)] = NextHop{Ifindex: 1, MAC: realMAC(3), SrcMAC: srcMAC}
	apply(t, r.ns, r.x, r.svc)
	st, err = r.x.Stats()
	require.NoError(t, err)
	require.Equal(t, realAddr(3), st.Services[0].Reals[0].Addr)
	assert.Zero(t, st.Services[0].Reals[0].Conns)
	assert.EqualValues(t, 4, st.Services[0].Conns)
}

// A removed real's flows: their packets are dropped (IPVS's default,
// expire_nodest_conn=0), but a SYN reusing the flow's ports starts a new
// connection and is scheduled afresh.
func TestRemovedRealFlows(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1, 1)
	f := newFlow()
	require.Equal(t, 0, r.pick(f), "the flow goes to the first real")

	r.svc.Reals = r.svc.Reals[1:]
	apply(t, r.ns, r.x, r.svc)

	before := reasons(t, r.x)
	ack := f
	ack.TCPFlags = testutil.TCPAck
	v, _ := run(t, r.ns, r.x, ack.Bytes())
	assert.EqualValues(t, xdpDrop, v, "a packet of the removed real's flow is dropped")
	assert.EqualValues(t, 1, reasons(t, r.x)["dest_gone"]-before["dest_gone"])

	v, out := run(t, r.ns, r.x, f.Bytes())
	require.EqualValues(t, xdpTX, v, "a SYN on the same ports is a new connection")
	assert.Equal(t, realMAC(2), net.HardwareAddr(out[0:6]))
	v, out = run(t, r.ns, r.x, ack.Bytes())
	require.EqualValues(t, xdpTX, v)
	assert.Equal(t, realMAC(2), net.HardwareAddr(out[0:6]), "and its flow now follows the new real")
}

// An IPVS fleet built with another CONFIG_IP_VS_MH_TAB_INDEX has other
// tables: --mh-tab-index 8 gives 251 entries, and the program reads them
// so (its modulus is the table's length).
func TestMHTabIndex(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	res := staticResolver{}
	svc := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "mh"}
	var ds []sched.Dest
	for i, w := range []int32{2, 1, 3} {
		res[realAddr(i+1)] = NextHop{Ifindex: 1, MAC: realMAC(i + 1), SrcMAC: srcMAC}
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: realAddr(i + 1), Port: 80, Weight: w, Forward: lvs.DR})
		ds = append(ds, sched.Dest{Weight: w, Addr: realAddr(i + 1), Port: 80})
	}
	x := openTest(t, ns, res)
	x.cfg.MHTabIndex = 8
	apply(t, ns, x, svc)
	tab := sched.MHTableOf(ds, 8)
	require.Len(t, tab, 251)
	assert.NotEqual(t, sched.MHTable(ds)[:251], tab, "another table than the default's")
	r := &schedRig{t: t, ns: ns, x: x, svc: svc}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 500 {
		f := newFlow()
		f.Src = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		require.Equal(t, sched.MHPick(tab, ds, sched.AddrFold(f.Src), 0, false), r.pick(f), "source %s", f.Src)
	}
}

// Stats reads the counters a lookup at a time for a few reals and whole
// arrays in batches for many: both give the same figures.
func TestStatsReadInBatches(t *testing.T) {
	r := newSchedRig(t, "rr", 0, 1, 1)
	for range 6 {
		require.GreaterOrEqual(t, r.pick(newFlow()), 0)
	}
	r.svc.Reals = r.svc.Reals[:1] // a removed real's counters go to the service
	apply(t, r.ns, r.x, r.svc)
	require.GreaterOrEqual(t, r.pick(newFlow()), 0)
	one, err := r.x.Stats()
	require.NoError(t, err)
	was := batchFrom
	batchFrom = 0
	t.Cleanup(func() { batchFrom = was })
	batched, err := r.x.Stats()
	require.NoError(t, err)
	assert.Equal(t, one, batched)
	assert.EqualValues(t, 7, batched.Services[0].Conns)
	assert.EqualValues(t, 4, batched.Services[0].Reals[0].Conns)
}
