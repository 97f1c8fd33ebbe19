package dptest

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

var (
	ra = netip.MustParseAddr("10.0.0.1")
	rb = netip.MustParseAddr("10.0.0.2")
	rc = netip.MustParseAddr("10.0.0.3")
	rd = netip.MustParseAddr("10.0.0.4")
)

var letter = map[netip.Addr]string{ra: "A", rb: "B", rc: "C", rd: "D", {}: "-"}

func svcOf(scheduler string, reals ...any) dataplane.Service {
	s := dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80, Protocol: lvs.TCP},
		Scheduler: scheduler}
	for i := 0; i < len(reals); i += 2 {
		s.Reals = append(s.Reals, dataplane.Real{Addr: reals[i].(netip.Addr), Port: 80, Weight: int32(reals[i+1].(int)), Forward: lvs.DR})
	}
	return s
}

func picks(m *Model, n int) string {
	var out string
	for range n {
		out += letter[m.Pick(ra)]
	}
	return out
}

// IPVS builds a new wrr service one dest at a time from an empty one, and
// each add is a dest_changed: cw ends at 1, so the first round takes every
// dest once, newest first, before the cycle from the top weight begins.
func TestModelWRRFreshIPVS(t *testing.T) {
	m := NewModel(false)
	require.NoError(t, m.Apply(svcOf("wrr", ra, 3, rb, 2, rc, 1), []netip.Addr{rc, rb, ra}))
	assert.Equal(t, "CBA"+"A"+"BA"+"CBA"+"A"+"BA", picks(m, 12))
}

// XDP takes the whole Apply as one dest_changed from the empty service:
// cw starts at the top weight (sched.NewWRR).
func TestModelWRRFreshBatched(t *testing.T) {
	m := NewModel(true)
	require.NoError(t, m.Apply(svcOf("wrr", ra, 3, rb, 2, rc, 1), []netip.Addr{ra, rb, rc}))
	assert.Equal(t, "AABABC"+"AABABC", picks(m, 12))
}

// Two weights edited in one Apply: IPVS sees two dest_changed, and the
// first can pull cw down to an intermediate top weight; one dest_changed
// keeps it.
func TestModelWRRSeveralEdits(t *testing.T) {
	for _, batched := range []bool{false, true} {
		m := NewModel(batched)
		require.NoError(t, m.Apply(svcOf("wrr", ra, 1, rb, 1, rc, 1), []netip.Addr{ra, rb, rc}))
		require.NoError(t, m.Apply(svcOf("wrr", ra, 3, rb, 1, rc, 1), []netip.Addr{ra, rb, rc}))
		// cw 1: A B C, then cw wraps to 3.
		require.Equal(t, "ABCA", picks(m, 4))
		require.EqualValues(t, 3, m.wrr.CW)
		require.NoError(t, m.Apply(svcOf("wrr", ra, 1, rb, 1, rc, 4), []netip.Addr{ra, rb, rc}))
		if batched {
			assert.EqualValues(t, 3, m.wrr.CW)
			assert.Equal(t, "CCABCC", picks(m, 6))
		} else {
			// A 3->1 first: mw 1 pulls cw to 1; C 1->4 then keeps it.
			assert.EqualValues(t, 1, m.wrr.CW)
			assert.Equal(t, "ABCCCC", picks(m, 6))
		}
	}
}

// rr's cursor on a deleted dest moves to its predecessor, which in IPVS can
// be a dest added in the same Apply (it went in at the head).
func TestModelRRDeleteAfterAdd(t *testing.T) {
	m := NewModel(false)
	require.NoError(t, m.Apply(svcOf("rr", ra, 1, rb, 1), []netip.Addr{rb, ra}))
	require.Equal(t, "B", picks(m, 1))
	require.NoError(t, m.Apply(svcOf("rr", ra, 1, rc, 1), []netip.Addr{rc, ra}))
	// List C B A with the cursor on B; B goes, the cursor to C: next is A.
	assert.Equal(t, "ACA", picks(m, 3))

	m = NewModel(true)
	require.NoError(t, m.Apply(svcOf("rr", rb, 1, ra, 1), []netip.Addr{rb, ra}))
	require.Equal(t, "B", picks(m, 1))
	require.NoError(t, m.Apply(svcOf("rr", ra, 1, rc, 1), []netip.Addr{ra, rc}))
	// List B A C with the cursor on B; B goes, the cursor to the head.
	assert.Equal(t, "ACA", picks(m, 3))
}

func TestModelRejectsOtherOrders(t *testing.T) {
	m := NewModel(false)
	require.NoError(t, m.Apply(svcOf("rr", ra, 1, rb, 1), []netip.Addr{rb, ra}))
	assert.Error(t, m.Apply(svcOf("rr", ra, 1, rb, 1, rc, 1, rd, 1), []netip.Addr{rc, rd, rb, ra}))
}

func TestModelLeastConnAndPersistence(t *testing.T) {
	m := NewModel(false)
	require.NoError(t, m.Apply(svcOf("wlc", ra, 3, rb, 1), []netip.Addr{rb, ra}))
	var got string
	for range 8 {
		r := m.Pick(ra)
		m.Opened(r)
		m.Closed(r)
		got += letter[r]
	}
	// B is first in the list: it wins the first tie, then A has room for
	// three per one of B's.
	assert.Equal(t, "BAAABAAA", got)

	m = NewModel(false)
	s := svcOf("rr", ra, 1, rb, 1)
	s.Persistence = 300e9
	require.NoError(t, m.Apply(s, []netip.Addr{rb, ra}))
	c1, c2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	assert.Equal(t, rb, m.Pick(c1))
	assert.Equal(t, rb, m.Pick(c1))
	assert.Equal(t, ra, m.Pick(c2))
	s.Reals[1].Weight = 0
	require.NoError(t, m.Apply(s, []netip.Addr{rb, ra}))
	assert.Equal(t, rb, m.Pick(c1), "a quiesced real keeps its template")
}
