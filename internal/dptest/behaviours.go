package dptest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Run runs every behaviour against dp, each as a subtest on a topology and
// a data plane of its own.
func Run(t *testing.T, dp DataPlane) {
	for _, b := range []struct {
		name string
		fn   func(*testing.T, DataPlane)
	}{
		{"DestListOrder", destListOrder},
		{"Scheduler", schedulers},
		{"WeightChange", weightChange},
		{"Quiesce", quiesce},
		{"Maglev", maglev},
		{"Remove", remove},
		{"Add", add},
		{"Replace", replace},
		{"Persistence", persistence},
		{"Counters", counters},
		{"Timeouts", timeouts},
		{"Tunnel", tunnel},
		{"IPv6", ipv6},
		{"Tunnel6", tunnel6},
		{"Tunnel46", tunnel46},
		{"Tunnel64", tunnel64},
	} {
		t.Run(b.name, func(t *testing.T) { b.fn(t, dp) })
	}
}

// destListOrder: the order ipvsadm -Ln lists reals in is the dest list
// every scheduler walks, so it decides who gets a fresh service's first
// connection.
func destListOrder(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 4)
	m := r.NewModel()
	r.Apply(t, m, r.Service("rr", 1, 1, 1, -1))
	first := r.names(m.Order())
	// The kernel inserts a new dest at the head of the list (list_add_rcu
	// in __ip_vs_update_dest): newest first, the reverse of the order
	// keepalived or pkg/dataplane/ipvs add them in. XDP keeps the same list.
	assert.Equal(t, []string{"r3", "r2", "r1"}, first)
	// So a fresh rr service's first pick is the real added last.
	src := r.Topo.ClientAddr
	got := step(t, r, m, Repeat(2, src), "fresh")
	assert.Equal(t, "r3", got[0])

	r.Apply(t, m, r.Service("rr", 1, 1, 1, 1))
	second := r.names(m.Order())
	assert.Equal(t, []string{"r4", "r3", "r2", "r1"}, second)
	step(t, r, m, Repeat(5, src), "r4 added")
}

// schedulers: a sequence of connections per scheduler, each real chosen
// as IPVS would choose it (pkg/sched over the data plane's dest list).
func schedulers(t *testing.T, dp DataPlane) {
	for _, c := range []struct {
		sched   string
		weights []int32
		sources int  // client addresses, used in turn
		conns   int  // connections from each
		held    bool // keep every connection open (counts as active)
	}{
		{"rr", []int32{1, 1, 1}, 1, 9, false},
		// XDP takes the new service's reals as one dest_changed and
		// starts at cw = mw; IPVS adds them one at a time to an empty
		// service and ends at cw = 1, so its first round takes every
		// real once (docs/DESIGN.md, "several changes applied in one
		// Apply call count as one dest_changed").
		{"wrr", []int32{3, 2, 1}, 1, 12, false},
		// sh hashes the client's address into weighted buckets.
		{"sh", []int32{2, 1, 1}, 6, 2, false},
		// dh hashes the VIP: one real for every client.
		{"dh", []int32{1, 1, 1}, 2, 2, false},
		// lc: least A*256+I, weights only 0 or not; closed connections
		// wait out FIN_WAIT as inactive and still count.
		{"lc", []int32{3, 1, 1}, 1, 9, false},
		{"wlc", []int32{3, 1}, 1, 12, false},
		// sed and nq ignore inactive connections: keep them open.
		{"sed", []int32{3, 1}, 1, 6, true},
		{"nq", []int32{3, 1}, 1, 6, true},
		// fo: the heaviest real takes every connection.
		{"fo", []int32{1, 3, 2}, 1, 4, false},
		// ovf: the heaviest until it holds more active connections than
		// its weight, then the next: keep them open.
		{"ovf", []int32{2, 3, 1}, 1, 8, true},
	} {
		t.Run(c.sched, func(t *testing.T) {
			r := newRig(t, dp, len(c.weights))
			m := r.NewModel()
			r.Apply(t, m, r.Service(c.sched, c.weights...))
			srcs := Repeat(c.conns, r.Sources(t, c.sources)...)
			var want, got []string
			if c.held {
				want, got, _ = r.Held(t, m, srcs)
			} else {
				want, got, _ = r.Sequence(t, m, srcs)
			}
			assert.Equal(t, want, got, "%s %v over the dest list %v", c.sched, c.weights, r.names(m.Order()))
			t.Logf("%s: %s %v over %v: %v", r.Name, c.sched, c.weights, r.names(m.Order()), got)
		})
	}
}

// weightChange: new weights under a running sequence. rr keeps its cursor;
// wrr restarts at the head of the list at about the same level
// (ip_vs_wrr_dest_changed).
func weightChange(t *testing.T, dp DataPlane) {
	t.Run("rr", func(t *testing.T) {
		r := newRig(t, dp, 3)
		m := r.NewModel()
		src := []netip.Addr{r.Topo.ClientAddr}
		r.Apply(t, m, r.Service("rr", 1, 1, 1))
		step(t, r, m, Repeat(2, src...), "before")
		r.Apply(t, m, r.Service("rr", 1, 0, 1))
		got := step(t, r, m, Repeat(4, src...), "r2 quiesced")
		assert.NotContains(t, got, "r2")
		r.Apply(t, m, r.Service("rr", 1, 5, 1)) // rr ignores the size
		step(t, r, m, Repeat(3, src...), "r2 back")
	})
	t.Run("wrr", func(t *testing.T) {
		r := newRig(t, dp, 3)
		m := r.NewModel()
		src := []netip.Addr{r.Topo.ClientAddr}
		// Equal weights: cw = mw = 1 however the service was built.
		r.Apply(t, m, r.Service("wrr", 1, 1, 1))
		step(t, r, m, Repeat(4, src...), "1,1,1")
		// One real's weight: one dest_changed on both data planes. The
		// round at cw 1 goes on from the head, then cw wraps to 3.
		r.Apply(t, m, r.Service("wrr", 3, 1, 1))
		step(t, r, m, Repeat(4, src...), "3,1,1")
		// Two weights at once: pkg/dataplane/ipvs edits r1 (3 -> 1) first, and that
		// dest_changed pulls cw down to the new top weight 1 before r3
		// (1 -> 4) raises the top to 4; XDP sees one dest_changed and
		// keeps cw at 3 (docs/DESIGN.md, known differences).
		r.Apply(t, m, r.Service("wrr", 1, 1, 4))
		step(t, r, m, Repeat(6, src...), "1,1,4")
	})
}

// step runs a sequence and checks it against the model.
func step(t *testing.T, r *Rig, m *Model, srcs []netip.Addr, what string) []string {
	t.Helper()
	want, got, _ := r.Sequence(t, m, srcs)
	assert.Equal(t, want, got, "%s, over the dest list %v", what, r.names(m.Order()))
	t.Logf("%s: %s: %v", r.Name, what, got)
	return got
}

// quiesce: weight 0 takes a real out of scheduling; its established
// connections go on.
func quiesce(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 3)
	m := r.NewModel()
	src := r.Topo.ClientAddr
	r.Apply(t, m, r.Service("rr", 1, 1, 1))
	want, got, held := r.Held(t, m, []netip.Addr{src})
	require.Equal(t, want, got)
	keep := held[0]
	x := realIndex(keep.Real)
	step(t, r, m, Repeat(2, src), "before")

	w := []int32{1, 1, 1}
	w[x] = 0
	r.Apply(t, m, r.Service("rr", w...))
	got = step(t, r, m, Repeat(6, src), keep.Real+" quiesced")
	assert.NotContains(t, got, keep.Real, "a quiesced real takes no new connections")
	for range 3 {
		assert.Equal(t, keep.Real, keep.Get(t), "the established connection to the quiesced real")
	}
	rs := realStats(t, r, r.RealAddr(x))
	assert.Zero(t, rs.Weight)
	assert.EqualValues(t, 1, rs.ActiveConns, "the held connection")

	// No real left to schedule. IPVS answers the SYN with ICMP port
	// unreachable; XDP drops it and counts no_dest (docs/DESIGN.md:
	// "No real available: dropped and counted").
	r.Apply(t, m, r.Service("rr", 0, 0, 0))
	require.False(t, m.Pick(src).IsValid())
	_, err := r.dial(src, waitNoDest)
	require.Error(t, err, "a connection with every real quiesced")
	if r.Name == "ipvs" {
		assert.ErrorContains(t, err, "connection refused")
	} else {
		assert.True(t, isTimeout(err), "XDP drops the SYN: want a timeout, got %v", err)
		st, err := r.DP.Stats()
		require.NoError(t, err)
		assert.NotZero(t, st.Reasons["no_dest"])
	}
	assert.Equal(t, keep.Real, keep.Get(t), "the established connection with every real quiesced")
}

// maglev: mh as the kernel builds and looks up its table, over many
// clients: the table follows the dests' addresses, ports and weights; a
// quiesced real keeps its entries (last_weight), so with mh-fallback its
// clients rehash to others while every other client stays; a removed real's
// entries go to the rest.
func maglev(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 4)
	m := r.NewModel()
	srcs := r.Sources(t, 24)
	r.Apply(t, m, r.Service("mh", 2, 1, 1, 3))
	before := step(t, r, m, srcs, "mh 2,1,1,3")

	svc := r.Service("mh", 2, 1, 0, 3)
	svc.Flags = lvs.Sched1 // mh-fallback
	r.Apply(t, m, svc)
	got := step(t, r, m, srcs, "r3 quiesced, mh-fallback")
	assert.NotContains(t, got, "r3")
	for i := range got {
		if before[i] != "r3" {
			assert.Equal(t, before[i], got[i], "a client of a real that stays keeps it")
		}
	}

	svc = r.Service("mh", 2, 1, -1, 3)
	r.Apply(t, m, svc)
	step(t, r, m, srcs, "r3 removed")

	// mh-port: the client's port enters the hash; every tuple used once.
	svc.Flags = lvs.Sched2
	r.Apply(t, m, svc)
	var from []netip.AddrPort
	for i := range 24 {
		from = append(from, netip.AddrPortFrom(srcs[i%4], uint16(20011+977*i)))
	}
	want, got, _ := r.SequenceFrom(t, m, from)
	assert.Equal(t, want, got, "mh-port over %v", r.names(m.Order()))
	t.Logf("%s: mh-port: %v", r.Name, got)

	// Other tables: equal weights, weights by their gcd, a weight too
	// large for the table's bits (shifted), each over the same clients.
	// A rig of its own: r3, removed above, would come back from IPVS's
	// trash with its old connection counts, which the model drops.
	r = newRig(t, dp, 4)
	m = r.NewModel()
	srcs = r.Sources(t, 24)
	for _, ws := range [][]int32{{1, 1, 1, 1}, {6, 4, 2, 2}, {300, 1, 1, 1}} {
		r.Apply(t, m, r.Service("mh", ws...))
		step(t, r, m, srcs, fmt.Sprintf("mh %v", ws))
	}
}

func realStats(t *testing.T, r *Rig, a netip.Addr) dataplane.RealStats {
	t.Helper()
	s := r.Stats(t)
	i := slices.IndexFunc(s.Reals, func(rs dataplane.RealStats) bool { return rs.Addr == a })
	require.GreaterOrEqual(t, i, 0, "real %s in Stats", a)
	return s.Reals[i]
}

// remove: a real leaves the service. New connections avoid it, rr's cursor
// on it moves to its predecessor, and its established connection is
// dropped (expire_nodest_conn=0).
func remove(t *testing.T, dp DataPlane) {
	for _, c := range []struct {
		sched   string
		weights []int32
	}{{"rr", []int32{1, 1, 1}}, {"wrr", []int32{3, 2, 1}}} {
		t.Run(c.sched, func(t *testing.T) {
			r := newRig(t, dp, 3)
			m := r.NewModel()
			src := r.Topo.ClientAddr
			r.Apply(t, m, r.Service(c.sched, c.weights...))
			step(t, r, m, Repeat(2, src), "before")
			// The connection the scheduler's cursor is on: that real goes.
			want, got, held := r.Held(t, m, []netip.Addr{src})
			require.Equal(t, want, got)
			keep := held[0]
			x := realIndex(keep.Real)

			w := slices.Clone(c.weights)
			w[x] = -1
			r.Apply(t, m, r.Service(c.sched, w...))
			got = step(t, r, m, Repeat(6, src), keep.Real+" removed")
			assert.NotContains(t, got, keep.Real)
			assert.Len(t, r.Stats(t).Reals, 2)

			_, err := keep.TryGet(waitNoDest)
			assert.True(t, isTimeout(err), "the removed real's connection is dropped: want a timeout, got %v", err)
			conns, err := r.DP.Conns()
			require.NoError(t, err)
			i := slices.IndexFunc(conns, func(c dataplane.Conn) bool { return c.Client == keep.Client })
			if r.Name == "ipvs" {
				// IPVS keeps the entry, its real and timer frozen, until
				// it expires, and /proc/net/ip_vs_conn lists it.
				if assert.GreaterOrEqual(t, i, 0, "the removed real's connection in Conns") {
					assert.Equal(t, netip.AddrPortFrom(r.RealAddr(x), 80), conns[i].Real)
				}
			} else {
				// XDP's Conns leaves out flows whose real is gone: their
				// entries only wait to time out.
				assert.Less(t, i, 0, "the removed real's connection in Conns")
			}
		})
	}
}

// replace: one Apply removes the real rr's cursor is on and adds another.
// pkg/dataplane/ipvs adds before it deletes (so the service never runs out of reals),
// so when the removed real was first of the old ones, its predecessor, and
// the cursor's new place, is the real just added: the next pick is the one
// after it.
func replace(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 3)
	m := r.NewModel()
	src := r.Topo.ClientAddr
	r.Apply(t, m, r.Service("rr", 1, 1, -1)) // list r2 r1
	got := step(t, r, m, Repeat(1, src), "r1, r2")
	require.Equal(t, []string{"r2"}, got, "the cursor on the head real")
	r.Apply(t, m, r.Service("rr", 1, -1, 1)) // r3 in, r2 out: list r3 r1
	step(t, r, m, Repeat(4, src), "r2 replaced by r3")
}

// add: a new real takes connections from the next pick on; where it goes
// in the dest list is the data plane's (see destListOrder).
func add(t *testing.T, dp DataPlane) {
	for _, c := range []struct {
		sched         string
		before, after []int32
	}{{"rr", []int32{1, 1, 1, -1}, []int32{1, 1, 1, 1}}, {"wrr", []int32{2, 1, 1, -1}, []int32{2, 1, 1, 2}}} {
		t.Run(c.sched, func(t *testing.T) {
			r := newRig(t, dp, 4)
			m := r.NewModel()
			src := r.Topo.ClientAddr
			r.Apply(t, m, r.Service(c.sched, c.before...))
			step(t, r, m, Repeat(4, src), "before")
			r.Apply(t, m, r.Service(c.sched, c.after...))
			got := step(t, r, m, Repeat(8, src), "r4 added")
			assert.Contains(t, got, "r4")
		})
	}
}

// persistence: a client keeps its real across weight changes, quiescing
// included (expire_quiescent_template=0), while new clients are scheduled.
func persistence(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 3)
	m := r.NewModel()
	s := r.Sources(t, 4)
	svc := r.Service("wrr", 1, 1, 1)
	svc.Persistence = 300 * time.Second
	r.Apply(t, m, svc)
	got := step(t, r, m, s[:3], "three clients") // one real each, wrr 1,1,1
	require.ElementsMatch(t, []string{"r1", "r2", "r3"}, got)
	home := map[netip.Addr]string{s[0]: got[0], s[1]: got[1], s[2]: got[2]}
	step(t, r, m, []netip.Addr{s[0], s[0], s[1], s[2], s[1]}, "again")

	svc = r.Service("wrr", 1, 3, 2)
	svc.Persistence = 300 * time.Second
	r.Apply(t, m, svc)
	got = step(t, r, m, []netip.Addr{s[0], s[1], s[2], s[3], s[3], s[0]}, "weights 1,3,2")
	assert.Equal(t, []string{home[s[0]], home[s[1]], home[s[2]]}, got[:3], "clients keep their reals across a weight change")
	assert.Equal(t, got[3], got[4], "a new client keeps the real it was given")
	home[s[3]] = got[3]

	x := realIndex(home[s[0]])
	svc.Reals[x].Weight = 0
	r.Apply(t, m, svc)
	got = step(t, r, m, []netip.Addr{s[0], s[0]}, home[s[0]]+" quiesced")
	assert.Equal(t, []string{home[s[0]], home[s[0]]}, got, "a quiesced real keeps its persistent client")

	conns, err := r.DP.Conns()
	require.NoError(t, err)
	var templates []string
	for _, c := range conns {
		if c.Client.Port() == 0 {
			templates = append(templates, c.Client.Addr().String()+" -> "+r.RealName(c.Real.Addr()))
		}
	}
	slices.Sort(templates)
	if r.Name == "ipvs" {
		// /proc/net/ip_vs_conn lists the persistence templates: client
		// port 0, state NONE (ASSURED once a connection under it was
		// established).
		var want []string
		for _, a := range s {
			want = append(want, a.String()+" -> "+home[a])
		}
		slices.Sort(want)
		assert.Equal(t, want, templates)
	} else {
		// XDP keeps templates in a map of their own; Conns lists flows.
		assert.Empty(t, templates)
	}
}

// counters: Stats and Conns after a known set of connections, as ipvsadm
// -Ln --stats and -Lnc show them.
func counters(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 3)
	m := r.NewModel()
	src := r.Topo.ClientAddr
	r.Apply(t, m, r.Service("rr", 1, 1, 1))
	want, got, closed := r.Sequence(t, m, Repeat(7, src))
	require.Equal(t, want, got)
	want, got, held := r.Held(t, m, []netip.Addr{src})
	require.Equal(t, want, got)
	served := map[netip.Addr]uint64{}
	for _, c := range append(slices.Clone(closed), held...) {
		served[r.RealAddr(realIndex(c.Real))]++
	}

	// IPVS folds its per-CPU counters into what it reports when its rate
	// estimator runs, every 2 s, for the service and each real in turn;
	// XDP's are read as they are.
	Eventually(t, waitState, "connection and packet counters", func() (bool, string) {
		s := r.Stats(t)
		ok := s.Conns == 8
		var packets uint64
		for _, rs := range s.Reals {
			ok = ok && rs.Conns == served[rs.Addr]
			packets += rs.Packets
		}
		// Each closed connection is at least SYN, ACK, request, FIN;
		// the held one SYN, ACK, request.
		ok = ok && s.Packets == packets && s.Packets >= 7*4+3
		return ok, statsLine(r, s)
	})
	s := r.Stats(t)
	assert.GreaterOrEqual(t, s.Bytes, 40*s.Packets, "at least the IP and TCP headers")
	assert.Zero(t, s.OutPackets, "DR replies bypass the director")
	r.WaitCounts(t, m) // closed ones inactive (FIN_WAIT), the held one active

	table, err := r.DP.Conns()
	require.NoError(t, err)
	// No persistence: no templates, one entry per connection.
	assert.Len(t, table, 8)
	check := func(c *Conn, state string, lo, hi time.Duration) {
		i := slices.IndexFunc(table, func(e dataplane.Conn) bool { return e.Client == c.Client })
		if !assert.GreaterOrEqual(t, i, 0, "connection from %s in Conns", c.Client) {
			return
		}
		e := table[i]
		assert.Equal(t, state, e.State, "connection from %s", c.Client)
		assert.Equal(t, lvs.TCP, e.Protocol)
		assert.Equal(t, netip.AddrPortFrom(r.Topo.VIP, 80), e.Virtual)
		assert.Equal(t, netip.AddrPortFrom(r.RealAddr(realIndex(c.Real)), 80), e.Real)
		assert.True(t, e.Expires > lo && e.Expires <= hi, "connection from %s expires in %v, want (%v, %v]", c.Client, e.Expires, lo, hi)
	}
	for _, c := range closed {
		// The client's FIN: FIN_WAIT, 120 s, re-armed by its last ACK.
		check(c, "FIN_WAIT", 0, 120*time.Second)
	}
	check(held[0], "ESTABLISHED", 800*time.Second, 900*time.Second)
}

func statsLine(r *Rig, s dataplane.ServiceStats) string {
	line := fmt.Sprintf("service %d conns %d packets", s.Conns, s.Packets)
	for _, rs := range s.Reals {
		line += fmt.Sprintf(", %s %d conns %d packets", r.RealName(rs.Addr), rs.Conns, rs.Packets)
	}
	return line
}

// timeouts: ipvsadm --set and -L --timeout, and the connection table
// using the new values.
func timeouts(t *testing.T, dp DataPlane) {
	r := newRig(t, dp, 1)
	got, err := r.DP.Timeouts()
	require.NoError(t, err)
	assert.Equal(t, dataplane.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}, got, "IPVS's defaults")

	set := dataplane.Timeouts{TCP: 600 * time.Second, TCPFin: 60 * time.Second, UDP: 200 * time.Second}
	require.NoError(t, r.DP.SetTimeouts(set))
	got, err = r.DP.Timeouts()
	require.NoError(t, err)
	assert.Equal(t, set, got)

	// A zero leaves that timeout as it is.
	require.NoError(t, r.DP.SetTimeouts(dataplane.Timeouts{TCPFin: 30 * time.Second}))
	got, err = r.DP.Timeouts()
	require.NoError(t, err)
	set.TCPFin = 30 * time.Second
	assert.Equal(t, set, got)
	assert.Error(t, r.DP.SetTimeouts(dataplane.Timeouts{TCP: 500 * time.Millisecond}), "under a second")
	got, err = r.DP.Timeouts()
	require.NoError(t, err)
	assert.Equal(t, set, got, "a refused change changes nothing")

	m := r.NewModel()
	r.Apply(t, m, r.Service("rr", 1))
	src := r.Topo.ClientAddr
	_, _, closed := r.Sequence(t, m, []netip.Addr{src})
	_, _, held := r.Held(t, m, []netip.Addr{src})
	require.NoError(t, closed[0].Err)
	require.NoError(t, held[0].Err)
	table, err := r.DP.Conns()
	require.NoError(t, err)
	for _, c := range []struct {
		conn   *Conn
		state  string
		lo, hi time.Duration
	}{{closed[0], "FIN_WAIT", 0, 30 * time.Second}, {held[0], "ESTABLISHED", 540 * time.Second, 600 * time.Second}} {
		i := slices.IndexFunc(table, func(e dataplane.Conn) bool { return e.Client == c.conn.Client })
		if assert.GreaterOrEqual(t, i, 0, "connection from %s in Conns", c.conn.Client) {
			e := table[i]
			assert.Equal(t, c.state, e.State)
			assert.True(t, e.Expires > c.lo && e.Expires <= c.hi, "%s expires in %v, want (%v, %v]", c.state, e.Expires, c.lo, c.hi)
		}
	}
}

// ipv6: an IPv6 service by DR takes connections in IPVS's order (wrr,
// weights 3:1:2) and lists them with their IPv6 addresses.
func ipv6(t *testing.T, dp DataPlane) {
	r := newRig6(t, dp, 3)
	m := r.NewModel()
	r.Apply(t, m, r.Service("wrr", 3, 1, 2))
	want, got, _ := r.Sequence(t, m, Repeat(12, testutil.ClientAddr6))
	assert.Equal(t, want, got)
	conns, err := r.DP.Conns()
	require.NoError(t, err)
	require.Len(t, conns, 12)
	for _, c := range conns {
		assert.Equal(t, testutil.ClientAddr6, c.Client.Addr())
		assert.Equal(t, netip.AddrPortFrom(VIP6, 80), c.Virtual)
		assert.Contains(t, r.realAddrs(), c.Real.Addr())
	}
}

// tunnel: the same real servers configured as IPVS's TUN reals (ipip on
// tunl0, gue behind a fou port, gre on gre0), one of each in one rr
// service, take connections in IPVS's order, and each takes an upload
// whose full-size segments do not fit its tunnel (the client learns the
// path MTU from the director's ICMP fragmentation needed) whole.
func tunnel(t *testing.T, dp DataPlane) {
	testutil.RequireTunnelDevices(t)
	r := newRig(t, dp, 3)
	tunnels(t, r, func(i int, tun lvs.Tunnel) error { return r.Topo.TunnelReal(i, tun.Type.String(), tun.Port) })
}

// tunnel6: tunnel for an IPv6 service, as ip_vs_tunnel_xmit_v6 sends it:
// the reals configured as for IPVS (ip6ip6 on ip6tnl0, gue behind a fou
// port opened for IPv6, gre on ip6gre0); the client learns the path MTU
// from the director's ICMPv6 Packet Too Big.
func tunnel6(t *testing.T, dp DataPlane) {
	testutil.RequireTunnel6Devices(t)
	r := newRig6(t, dp, 3)
	tunnels(t, r, func(i int, tun lvs.Tunnel) error { return r.Topo.TunnelReal6(i, VIP6, tun.Type.String(), tun.Port) })
}

// tunnel46: tunnel across families, an IPv4 service with IPv6 reals (IPv4
// in IPv6, as ip_vs_tunnel_xmit_v6 sends it): the reals configured as for
// IPVS (the VIP on ip6tnl0 in mode any, behind a fou port opened for
// IPv6, on ip6gre0).
func tunnel46(t *testing.T, dp DataPlane) {
	testutil.RequireTunnel64Devices(t)
	r := newRig6(t, dp, 3)
	r.Key.Addr = r.Topo.VIP // the reals stay IPv6's
	tunnels(t, r, func(i int, tun lvs.Tunnel) error { return r.Topo.TunnelReal46(i, tun.Type.String(), tun.Port) })
}

// tunnel64: an IPv6 service with IPv4 reals (IPv6 in IPv4, as
// ip_vs_tunnel_xmit sends it): the VIP on sit0, behind an IPv4 fou port,
// on gre0.
func tunnel64(t *testing.T, dp DataPlane) {
	testutil.RequireTunnel64Devices(t)
	r := newRig6(t, dp, 3)
	r.reals6 = nil // the service stays IPv6's, the reals IPv4's
	tunnels(t, r, func(i int, tun lvs.Tunnel) error { return r.Topo.TunnelReal64(i, VIP6, tun.Type.String(), tun.Port) })
}

// tunnels runs the tunnel behaviour on r, whose real i setup makes a TUN
// real of tunnel tun.
func tunnels(t *testing.T, r *Rig, setup func(i int, tun lvs.Tunnel) error) {
	tuns := []lvs.Tunnel{{}, {Type: lvs.TunGUE, Port: 6080}, {Type: lvs.TunGRE}}
	svc := dataplane.Service{ServiceKey: r.Key, Scheduler: "rr"}
	for i, tun := range tuns {
		require.NoError(t, setup(i, tun))
		svc.Reals = append(svc.Reals, dataplane.Real{Addr: r.RealAddr(i), Port: 80, Weight: 1, Forward: lvs.TUN, Tunnel: tun})
	}
	m := r.NewModel()
	r.Apply(t, m, svc)
	// What the data plane holds is what was asked: each real's tunnel.
	for _, rs := range r.Stats(t).Reals {
		i := slices.Index(r.realAddrs(), rs.Addr)
		require.GreaterOrEqual(t, i, 0, "%s is one of the reals", rs.Addr)
		assert.Equal(t, lvs.TUN, rs.Forward, "%s", rs.Addr)
		assert.Equal(t, tuns[i], rs.Tunnel, "%s", rs.Addr)
	}
	client := r.Topo.ClientAddr
	if r.Key.Addr.Is6() {
		client = testutil.ClientAddr6
	}
	want, got, _ := r.Sequence(t, m, Repeat(6, client))
	assert.Equal(t, want, got)

	const size = 1 << 20
	sum := sha256.New()
	_, _ = io.Copy(sum, io.LimitReader(testutil.Pattern(), size))
	c := r.Topo.HTTPClient()
	c.Timeout = 2 * waitIO
	seen := map[string]bool{}
	for i := range tuns {
		resp, err := c.Post(fmt.Sprintf("http://%s/sha256", netip.AddrPortFrom(r.Key.Addr, r.Key.Port)), "application/octet-stream",
			io.LimitReader(testutil.Pattern(), size))
		require.NoError(t, err, "upload %d", i)
		ans, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		name, hex, _ := strings.Cut(string(ans), " ")
		assert.Equal(t, fmt.Sprintf("%x", sum.Sum(nil)), hex, "upload %d to %s", i, name)
		seen[name] = true
	}
	assert.Len(t, seen, 3, "each tunnel took an upload: %v", seen)
}
