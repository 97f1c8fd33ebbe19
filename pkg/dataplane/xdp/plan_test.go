package xdp

import (
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// The planner is pure: these tests need no kernel. They check what it
// decides to write for the cases the end-to-end tests meet only through
// traffic.

var planLim = limits{services: 4, reals: 8, ifaces: 4, tabEntries: 1024, filter: 4096, filterBits: 12}

func planWorld(standby ...netip.Addr) world {
	w := world{hops: map[hopKey]hop{}, cursors: map[uint32]uint64{}, standby: map[netip.Addr]bool{},
		ports: map[int]uint16{1: 0}, lim: planLim}
	for i := 1; i <= 8; i++ {
		w.hops[hopKey{addr: realAddr(i)}] = hop{nh: NextHop{Ifindex: 1, MAC: realMAC(i), SrcMAC: srcMAC}, resolved: true}
	}
	for _, a := range standby {
		w.standby[a] = true
	}
	return w
}

func planSvc(scheduler string, weights ...int32) dataplane.Service {
	s := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: scheduler}
	for i, w := range weights {
		s.Reals = append(s.Reals, dataplane.Real{Addr: realAddr(i + 1), Port: 80, Weight: w, Forward: lvs.DR})
	}
	return s
}

// commit is what write does to the picture, without the maps.
func commit(t *tables, p *applyPlan) {
	for _, sp := range p.services {
		t.services[sp.st.key] = sp.st
		for _, r := range sp.removed {
			t.realGen[r.slot]++
		}
	}
	for _, s := range p.gone {
		delete(t.services, s.key)
		for _, r := range s.reals {
			t.realGen[r.slot]++
		}
	}
	t.svcFree, t.realFree = p.svcs.commit(), p.reals.commit()
	p.refs.settle()
	t.tabs, t.vipFilter, t.natFilter, t.refs = p.tabs, p.vipFilter, p.natFilter, p.refs
	t.vips = vipsAfter(t.vips, p)
}

// vipsAfter is what the vips map holds after p is written over was.
func vipsAfter(was map[netip.Addr]bool, p *applyPlan) map[netip.Addr]bool {
	now := maps.Clone(was)
	for a, there := range p.vips {
		if there {
			now[a] = true
		} else {
			delete(now, a)
		}
	}
	return now
}

// A new wrr service filled with A 3, B 2, C 1: the list is newest first
// (C B A) and the picks are IPVS's for a service made empty and given its
// reals one at a time: C B A A B A.
func TestPlanNewService(t *testing.T) {
	tabs := newTables(planLim)
	p, err := plan(tabs, []dataplane.Service{planSvc("wrr", 3, 2, 1)}, planWorld())
	require.NoError(t, err)
	require.Len(t, p.services, 1)
	sp := p.services[0]
	var order []netip.Addr
	for _, r := range sp.st.reals {
		order = append(order, r.Addr)
	}
	assert.Equal(t, []netip.Addr{realAddr(3), realAddr(2), realAddr(1)}, order)
	slotOf := map[uint32]string{}
	for _, r := range sp.st.reals {
		slotOf[r.slot] = map[netip.Addr]string{realAddr(1): "A", realAddr(2): "B", realAddr(3): "C"}[r.Addr]
	}
	picks := ""
	for _, s := range sp.table {
		picks += slotOf[s]
	}
	assert.Equal(t, "CBAABA", picks)
	assert.True(t, sp.rewrite)
	assert.Equal(t, []bool{true, false, false, false}, p.svcs.after())
	assert.Equal(t, []bool{true, true, true, false, false, false, false, false}, p.reals.after())
	for i, e := range sp.reals {
		assert.EqualValues(t, realPresent|realAvailable, e.Flags, "real %d", i)
		assert.EqualValues(t, i, e.Order)
	}
	assert.Equal(t, map[netip.Addr]bool{vip: true}, p.vips)
	assert.EqualValues(t, 1, p.vipFilter[sched.Hash32(binary.BigEndian.Uint32(vip.AsSlice()), 12)])

	// Planning the same again writes no table and replays nothing.
	commit(tabs, p)
	p, err = plan(tabs, []dataplane.Service{planSvc("wrr", 3, 2, 1)}, planWorld())
	require.NoError(t, err)
	assert.False(t, p.services[0].rewrite)
	assert.Empty(t, p.services[0].upserts)
	assert.Nil(t, p.services[0].table)
}

// A real whose next hop is unknown is in the list but out of the picks,
// and is not available; it keeps its sh buckets (skipped at lookup).
func TestPlanUnresolvedReal(t *testing.T) {
	w := planWorld()
	w.hops[hopKey{addr: realAddr(2)}] = hop{nh: NextHop{Ifindex: 1}}
	p, err := plan(newTables(planLim), []dataplane.Service{planSvc("rr", 1, 1)}, w)
	require.NoError(t, err)
	sp := p.services[0]
	require.Len(t, sp.table, 1)
	for i, r := range sp.st.reals {
		if r.Addr == realAddr(2) {
			assert.EqualValues(t, realPresent, sp.reals[i].Flags)
			assert.NotContains(t, sp.table, r.slot)
		}
	}

	p, err = plan(newTables(planLim), []dataplane.Service{planSvc("sh", 1, 1)}, w)
	require.NoError(t, err)
	assert.Len(t, p.services[0].table, sched.TabSize)
	assert.Contains(t, p.services[0].table, p.services[0].st.reals[0].slot)
	assert.Contains(t, p.services[0].table, p.services[0].st.reals[1].slot)
}

// The standby set is in the entries the plan writes: the service slot's
// flag and each real's, and the VIP is not active; the NAT source filter
// holds NAT reals of services on standby too, so a role flip need not
// rewrite it.
func TestPlanStandby(t *testing.T) {
	s := planSvc("rr", 1, 1)
	s.Reals[1].Forward, s.Reals[1].Port = lvs.NAT, 8080
	p, err := plan(newTables(planLim), []dataplane.Service{s}, planWorld(vip))
	require.NoError(t, err)
	sp := p.services[0]
	assert.Equal(t, svcStandby, sp.svc.Flags&svcStandby)
	for _, e := range sp.reals {
		assert.Equal(t, realStandby, e.Flags&realStandby)
	}
	assert.Equal(t, map[netip.Addr]bool{vip: false}, p.vips)
	nat := realAddr(2)
	assert.EqualValues(t, 1, p.natFilter[sched.Hash32(binary.BigEndian.Uint32(nat.AsSlice()), 12)])
	assert.Equal(t, svcEntry(sp.st, true), sp.svc, "SetStandby writes what a plan would")
}

// A real behind another interface gets the first free egress slot; a
// removed real's slot is free only for the next Apply, and its generation
// moves on when it is written.
func TestPlanPortsAndRemovals(t *testing.T) {
	w := planWorld()
	w.ports = map[int]uint16{1: 0, 2: 2}
	w.hops[hopKey{addr: realAddr(1)}] = hop{nh: NextHop{Ifindex: 9, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, resolved: true}
	tabs := newTables(planLim)
	p, err := plan(tabs, []dataplane.Service{planSvc("wrr", 1, 1)}, w)
	require.NoError(t, err)
	assert.Equal(t, map[int]uint16{9: 1}, p.ports)
	for i, r := range p.services[0].st.reals {
		if r.Addr == realAddr(1) {
			assert.EqualValues(t, 1, p.services[0].reals[i].TxPort)
		}
	}
	commit(tabs, p)
	w.ports[9] = 1

	var gone uint32
	for _, r := range tabs.services[planSvc("wrr").ServiceKey].reals {
		if r.Addr == realAddr(2) {
			gone = r.slot
		}
	}
	p, err = plan(tabs, []dataplane.Service{planSvc("wrr", 1)}, w)
	require.NoError(t, err)
	require.Len(t, p.services[0].removed, 1)
	assert.False(t, p.reals.after()[gone], "free for the next Apply")
	commit(tabs, p)
	assert.EqualValues(t, 1, tabs.realGen[gone])
}

func TestPlanNoRoom(t *testing.T) {
	var svcs []dataplane.Service
	for i := range 5 {
		s := planSvc("rr", 1)
		s.Port = uint16(80 + i)
		svcs = append(svcs, s)
	}
	_, err := plan(newTables(planLim), svcs, planWorld())
	assert.ErrorContains(t, err, "no room: the data plane holds 4 services")

	_, err = plan(newTables(planLim), []dataplane.Service{planSvc("rr", 1, 1, 1, 1, 1, 1, 1, 1), func() dataplane.Service {
		s := planSvc("rr", 1)
		s.Port = 81
		return s
	}()}, planWorld())
	assert.ErrorContains(t, err, "no room: the data plane holds 8 reals")
}

// Scheduler tables come from one pool: a new table while the old one still
// serves, the old one free for the next Apply; a table that does not fit
// is refused with the numbers, before anything is written.
func TestPlanTablePool(t *testing.T) {
	tabs := newTables(planLim) // 1024 entries
	sh := planSvc("sh", 1, 1)  // 256 buckets
	p, err := plan(tabs, []dataplane.Service{sh}, planWorld())
	require.NoError(t, err)
	first := p.services[0].st
	assert.EqualValues(t, 256, first.tabLen)
	assert.Equal(t, first.tabOff, p.services[0].svc.TabOff)
	commit(tabs, p)
	assert.EqualValues(t, 1024-256, tabs.tabs.size())

	// A weight change rebuilds the buckets into new entries: both are
	// taken until the next Apply.
	p, err = plan(tabs, []dataplane.Service{planSvc("sh", 2, 1)}, planWorld())
	require.NoError(t, err)
	second := p.services[0].st
	assert.NotEqual(t, first.tabOff, second.tabOff, "the new table does not overwrite the one serving")
	assert.NotEqual(t, first.half, second.half)
	commit(tabs, p)
	assert.EqualValues(t, 1024-256, tabs.tabs.size(), "the old buckets are free again after the flip")

	// Three sh services take 768 entries and leave room to rebuild one
	// (256): they fit in 1024. A fourth would leave no such room.
	var svcs []dataplane.Service
	for i := range 4 {
		s := planSvc("sh", 1)
		s.Port = uint16(81 + i)
		svcs = append(svcs, s)
	}
	_, err = plan(newTables(planLim), svcs[:3], planWorld())
	require.NoError(t, err)
	_, err = plan(newTables(planLim), svcs, planWorld())
	assert.ErrorContains(t, err, "the scheduler tables take 1024 entries, and rebuilding this one's 256 beside it needs a free run that long; the data plane's pool has 1024 (--max-sched-entries)")
	// A table that cannot be placed at all says so.
	lim := planLim
	lim.tabEntries = 200
	w := planWorld()
	w.lim = lim
	_, err = plan(newTables(lim), svcs[:1], w)
	assert.ErrorContains(t, err, "no room for its scheduler table of 256 entries: the data plane's pool has 200 free of 200 (--max-sched-entries)")
}

// An Update (some services set, some removed, the rest not named) plans
// what an Apply of the whole resulting state plans: the same services
// written the same way, the same ones gone, the same slots, table pool,
// filters and VIPs. The services it does not name are not planned at all.
func TestPlanChangeIsPlanOfTheWhole(t *testing.T) {
	svc := func(vip netip.Addr, port uint16, sched string, fwd lvs.Forward, ws ...int32) dataplane.Service {
		s := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: port, Protocol: lvs.TCP}, Scheduler: sched}
		for i, w := range ws {
			if w >= 0 {
				s.Reals = append(s.Reals, dataplane.Real{Addr: realAddr(i + 1), Port: port, Weight: w, Forward: fwd})
			}
		}
		return s
	}
	v1, v2, v3 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	a := svc(v1, 80, "wrr", lvs.DR, 3, 2, 1)
	b := svc(v2, 80, "rr", lvs.DR, 1, 1)
	c := svc(v3, 443, "wlc", lvs.NAT, -1, -1, 1, 1)
	start := []dataplane.Service{a, b, c}
	for _, tc := range []struct {
		name string
		set  []dataplane.Service
		del  []dataplane.ServiceKey
	}{
		{"a weight", []dataplane.Service{svc(v1, 80, "wrr", lvs.DR, 3, 0, 1)}, nil},
		{"a real gone", []dataplane.Service{svc(v1, 80, "wrr", lvs.DR, 3, -1, 1)}, nil},
		{"a real added", []dataplane.Service{svc(v2, 80, "rr", lvs.DR, 1, 1, 1)}, nil},
		{"the NAT service gone", nil, []dataplane.ServiceKey{c.ServiceKey}},
		{"a new service and one gone", []dataplane.Service{svc(v3, 80, "sh", lvs.DR, -1, -1, -1, -1, 1)}, []dataplane.ServiceKey{b.ServiceKey, b.ServiceKey}},
		{"nothing named exists", nil, []dataplane.ServiceKey{{Addr: v1, Port: 81, Protocol: lvs.TCP}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := func() []dataplane.Service {
				var out []dataplane.Service
				for _, s := range start {
					if slices.Contains(tc.del, s.ServiceKey) {
						continue
					}
					if i := slices.IndexFunc(tc.set, func(n dataplane.Service) bool { return n.ServiceKey == s.ServiceKey }); i >= 0 {
						s = tc.set[i]
					}
					out = append(out, s)
				}
				for _, n := range tc.set {
					if !slices.ContainsFunc(start, func(s dataplane.Service) bool { return s.ServiceKey == n.ServiceKey }) {
						out = append(out, n)
					}
				}
				return out
			}()
			tabs := newTables(planLim)
			p0, err := plan(tabs, start, planWorld())
			require.NoError(t, err)
			commit(tabs, p0)
			for _, sp := range p0.services {
				sp.st.wrote, sp.st.written, sp.st.writtenReals, sp.st.writtenTunnels = true, sp.svc, sp.reals, sp.tunnels
			}

			full, err := plan(tabs, whole, planWorld())
			require.NoError(t, err)
			part, err := planChange(tabs, tc.set, tc.del, false, planWorld())
			require.NoError(t, err)

			var named []dataplane.ServiceKey
			for _, sp := range part.services {
				named = append(named, sp.st.key)
			}
			var setKeys []dataplane.ServiceKey
			for _, s := range tc.set {
				setKeys = append(setKeys, s.ServiceKey)
			}
			assert.Equal(t, setKeys, named, "an Update plans the services it sets, and only those")
			for _, sp := range full.services {
				i := slices.Index(named, sp.st.key)
				if i < 0 {
					assert.True(t, sp.same(), "%s: Apply writes nothing for a service the Update does not name", sp.st.key)
					continue
				}
				pp := part.services[i]
				assert.Equal(t, sp.svc, pp.svc, sp.st.key.String())
				assert.Equal(t, sp.reals, pp.reals, sp.st.key.String())
				assert.Equal(t, sp.table, pp.table, sp.st.key.String())
				assert.Equal(t, sp.removed, pp.removed, sp.st.key.String())
			}
			goneKeys := func(p *applyPlan) []dataplane.ServiceKey {
				var out []dataplane.ServiceKey
				for _, s := range p.gone {
					out = append(out, s.key)
				}
				slices.SortFunc(out, func(a, b dataplane.ServiceKey) int { return a.Addr.Compare(b.Addr)*4 + int(a.Port) - int(b.Port) })
				return out
			}
			assert.Equal(t, goneKeys(full), goneKeys(part), "gone")
			assert.Equal(t, full.svcs.after(), part.svcs.after(), "service slots")
			assert.Equal(t, full.reals.after(), part.reals.after(), "real slots")
			assert.Equal(t, full.tabs, part.tabs, "the table pool")
			assert.Equal(t, full.vipFilter, part.vipFilter, "the VIP filter")
			assert.Equal(t, full.natFilter, part.natFilter, "the NAT source filter")
			assert.Equal(t, vipsAfter(tabs.vips, full), vipsAfter(tabs.vips, part), "the VIPs")
			vipCounts := func(r *refs) map[netip.Addr]int {
				out := map[netip.Addr]int{}
				for _, s := range whole {
					if n := r.services(s.Addr); n > 0 {
						out[s.Addr] = n
					}
				}
				for _, s := range start {
					if n := r.services(s.Addr); n > 0 {
						out[s.Addr] = n
					}
				}
				return out
			}
			assert.Equal(t, vipCounts(full.refs), vipCounts(part.refs), "services by VIP")
			assert.Equal(t, full.refs.vipSlot, part.refs.vipSlot, "services by VIP filter slot")
			assert.Equal(t, full.refs.nat, part.refs.nat, "NAT reals by filter slot")
			assert.Equal(t, full.refs.tabLens, part.refs.tabLens, "tables by length")
			commit(tabs, part)
			kept := tabs.refs
			tabs.refs = nil
			assert.Equal(t, tabs.refsOf(planLim), kept, "what an Update leaves counted is what the services add up to")
		})
	}

	tabs := newTables(planLim)
	_, err := planChange(tabs, []dataplane.Service{a}, []dataplane.ServiceKey{a.ServiceKey}, false, planWorld())
	assert.ErrorContains(t, err, "both given and removed")
}

// The wanted state an Update leaves is the one Apply would have been
// given: set services replace theirs in place, new ones go last, removed
// ones leave.
func TestTablesChangeKeepsTheWantedState(t *testing.T) {
	k := func(p uint16) dataplane.ServiceKey {
		return dataplane.ServiceKey{Addr: vip, Port: p, Protocol: lvs.TCP}
	}
	s := func(p uint16, sched string) dataplane.Service {
		return dataplane.Service{ServiceKey: k(p), Scheduler: sched}
	}
	tabs := newTables(planLim)
	tabs.desired = []dataplane.Service{s(1, "rr"), s(2, "rr"), s(3, "rr")}
	tabs.change([]dataplane.Service{s(2, "wlc"), s(4, "sh")}, []dataplane.ServiceKey{k(1), k(9)})
	assert.Equal(t, []dataplane.Service{s(2, "wlc"), s(3, "rr"), s(4, "sh")}, tabs.desired)
	tabs.change([]dataplane.Service{s(3, "lc")}, nil)
	assert.Equal(t, []dataplane.Service{s(2, "wlc"), s(3, "lc"), s(4, "sh")}, tabs.desired)
	assert.Equal(t, map[dataplane.ServiceKey]int{k(2): 0, k(3): 1, k(4): 2}, tabs.desiredAt)
}
