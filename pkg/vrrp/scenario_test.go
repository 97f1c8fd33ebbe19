package vrrp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The priority/weight scenario of reference §B.4: advert_int 1, v2; both
// nodes track chk_web (weight -60) and chk_bonus (weight +10); A has priority
// 150, B 120. Rows build on each other the way the table reads.

const (
	web   = 0
	bonus = 1
	vital = 2 // row 7: an unweighted script
)

const us = time.Microsecond

func b4Trackers() []Tracker {
	return []Tracker{
		web:   {Weight: -60, Status: TrackOK},
		bonus: {Weight: 10, Status: TrackOK},
		vital: {Weight: 0, Status: TrackOK},
	}
}

// row1 starts A and B together and runs 10 s.
func row1(t *testing.T, aCfg Config) (s *sim, a, b *simNode) {
	t.Helper()
	s = newSim(t)
	aCfg.VRID, aCfg.Priority = 51, 150
	a = s.add("A", nodeA, aCfg, b4Trackers()...)
	b = s.add("B", nodeB, Config{VRID: 51, Priority: 120}, b4Trackers()...)
	require.Equal(t, uint8(160), a.m.Priority())
	require.Equal(t, uint8(130), b.m.Priority())
	s.do(a, a.m.Start)
	s.do(b, b.m.Start)
	s.run(10 * time.Second)
	return s, a, b
}

// row2 continues row 1: A's chk_web fails at 9.5 s, run to 20 s.
func row2(t *testing.T, aCfg Config) (s *sim, a, b *simNode) {
	t.Helper()
	s, a, b = row1(t, aCfg)
	s.run(9500 * time.Millisecond)
	s.setTracker(a, web, TrackFailed)
	require.Equal(t, uint8(100), a.m.Priority())
	s.run(20 * time.Second)
	return s, a, b
}

// row3 continues row 2: chk_bonus fails on both at 20 s, run to 60 s.
func row3(t *testing.T, aCfg Config) (s *sim, a, b *simNode) {
	t.Helper()
	s, a, b = row2(t, aCfg)
	s.setTracker(a, bonus, TrackFailed)
	s.setTracker(b, bonus, TrackFailed)
	require.Equal(t, uint8(90), a.m.Priority())
	require.Equal(t, uint8(120), b.m.Priority())
	s.run(60 * time.Second)
	return s, a, b
}

// recoverAll continues row 3: everything recovers right after B's next
// advert. It returns the time of that advert.
func recoverAll(t *testing.T, s *sim, a, b *simNode) time.Duration {
	t.Helper()
	require.Equal(t, StateMaster, b.m.State())
	tB := b.m.NextDeadline().Sub(s.t0)
	s.run(tB)
	require.Equal(t, tB, s.lastAdvert("B", tB+time.Nanosecond).at)
	s.setTracker(a, web, TrackOK)
	s.setTracker(a, bonus, TrackOK)
	s.setTracker(b, bonus, TrackOK)
	require.Equal(t, uint8(160), a.m.Priority())
	require.Equal(t, uint8(130), b.m.Priority())
	return tB
}

func TestScenarioB4(t *testing.T) {
	t.Run("row 1: A 160, B 130, A master", func(t *testing.T) {
		s, _, _ := row1(t, Config{})
		mdiA := MasterDownInterval(2, 160, time.Second, 3)
		require.Equal(t, 3375*time.Millisecond, mdiA)
		assert.Equal(t, []simEvent{
			{at: 0, node: "A", state: StateBackup},
			{at: mdiA, node: "A", state: StateMaster},
		}, s.transitions("A", 0))
		assert.Equal(t, []simEvent{{at: 0, node: "B", state: StateBackup}}, s.transitions("B", 0))
		ads := s.adverts("A", 0, 10*time.Second)
		require.Len(t, ads, 7) // 3.375, 4.375 ... 9.375
		for i, ad := range ads {
			assert.Equal(t, mdiA+time.Duration(i)*time.Second, ad.at)
			assert.Equal(t, uint8(160), ad.prio)
		}
		assert.Empty(t, s.adverts("B", 0, 10*time.Second))
	})

	t.Run("row 2: A web fails, 100 < 130, B takes over 3+126/256 s after A's last 160", func(t *testing.T) {
		s, _, _ := row2(t, Config{})
		last160 := 9375 * time.Millisecond
		for _, ad := range s.adverts("A", 9500*time.Millisecond, 20*time.Second) {
			assert.Equal(t, uint8(100), ad.prio, "B discards these")
		}
		takeover := last160 + 3*time.Second + 492_187*us // 126/256 s, rounded down to µs
		assert.Equal(t, []simEvent{{at: takeover, node: "B", state: StateMaster}}, s.transitions("B", time.Second))
		assert.Equal(t, []simEvent{{at: takeover, node: "A", state: StateBackup}}, s.transitions("A", 9*time.Second),
			"A sees 130 > 100 at once")
		assert.Equal(t, takeover, s.adverts("B", 0, 20*time.Second)[0].at)
		assert.Len(t, s.adverts("A", 9500*time.Millisecond, 20*time.Second), 3) // 10.375, 11.375, 12.375
		assert.Empty(t, s.adverts("A", takeover+time.Nanosecond, 20*time.Second))
	})

	t.Run("row 3: A 90, B 120, B stays master", func(t *testing.T) {
		s, a, b := row3(t, Config{})
		assert.Empty(t, s.transitions("A", 19*time.Second))
		assert.Empty(t, s.transitions("B", 19*time.Second))
		assert.Equal(t, StateMaster, b.m.State())
		assert.Equal(t, StateBackup, a.m.State())
		ads := s.adverts("B", 20*time.Second, 60*time.Second)
		require.Len(t, ads, 40)
		for _, ad := range ads {
			assert.Equal(t, uint8(120), ad.prio)
		}
	})

	t.Run("row 4: both recover, A discards B's 130 and preempts after 3+96/256 s", func(t *testing.T) {
		s, a, b := row3(t, Config{})
		tB := recoverAll(t, s, a, b)
		s.run(tB + 10*time.Second)
		takeover := tB + 3375*time.Millisecond
		assert.Equal(t, []simEvent{{at: takeover, node: "A", state: StateMaster}}, s.transitions("A", tB))
		assert.Equal(t, []simEvent{{at: takeover, node: "B", state: StateBackup}}, s.transitions("B", tB))
		for _, ad := range s.adverts("B", tB+time.Nanosecond, takeover) {
			assert.Equal(t, uint8(130), ad.prio)
		}
	})

	t.Run("row 4a: A nopreempt accepts B's adverts, B stays master", func(t *testing.T) {
		s, a, b := row3(t, Config{NoPreempt: true})
		tB := recoverAll(t, s, a, b)
		s.run(tB + 120*time.Second)
		assert.Empty(t, s.transitions("A", tB))
		assert.Empty(t, s.transitions("B", tB))
		assert.Equal(t, StateMaster, b.m.State())
		assert.Len(t, s.adverts("B", tB+time.Nanosecond, tB+120*time.Second+time.Nanosecond), 120)
	})

	t.Run("row 4b: A preempt_delay 30 accepts for 30 s, takeover after 33.375 s", func(t *testing.T) {
		s, a, b := row3(t, Config{PreemptDelay: 30 * time.Second})
		tB := recoverAll(t, s, a, b)
		s.run(tB + 60*time.Second)
		// First lower advert at tB+1 starts the 30 s; tB+2 .. tB+30 are
		// accepted, tB+31 is not; the down timer runs out 3.375 s after tB+30.
		takeover := tB + 33375*time.Millisecond
		assert.Equal(t, []simEvent{{at: takeover, node: "A", state: StateMaster}}, s.transitions("A", tB))
		assert.Equal(t, []simEvent{{at: takeover, node: "B", state: StateBackup}}, s.transitions("B", tB))
		assert.InDelta(t, 33.4, takeover.Seconds()-tB.Seconds(), 0.05)
	})

	t.Run("row 5: base 250 + 10 clamps to 254", func(t *testing.T) {
		p, fault := EffectivePriority(250, b4Trackers())
		assert.Equal(t, uint8(254), p)
		assert.False(t, fault)

		s := newSim(t)
		a := s.add("A", nodeA, Config{VRID: 51, Priority: 250}, b4Trackers()...)
		s.do(a, a.m.Start)
		s.run(5 * time.Second)
		ads := s.adverts("A", 0, 5*time.Second)
		require.NotEmpty(t, ads)
		assert.Equal(t, uint8(254), ads[0].prio)
		assert.Equal(t, MasterDownInterval(2, 254, time.Second, 3), ads[0].at)
	})

	t.Run("row 6: base 50 with web failed is -10, clamps to 1", func(t *testing.T) {
		tr := b4Trackers()
		tr[web].Status, tr[bonus].Status = TrackFailed, TrackFailed
		p, fault := EffectivePriority(50, tr)
		assert.Equal(t, uint8(1), p)
		assert.False(t, fault)
	})

	t.Run("row 7: unweighted script fails on master A, B takes over after its skew", func(t *testing.T) {
		s, a, b := row1(t, Config{})
		require.Equal(t, StateMaster, a.m.State())
		s.run(9500 * time.Millisecond)
		s.setTracker(a, vital, TrackFailed)
		assert.Equal(t, StateFault, a.m.State())
		stop := s.adverts("A", 9500*time.Millisecond, 10*time.Second)
		require.Len(t, stop, 1)
		assert.Equal(t, PriorityStop, stop[0].prio)

		s.run(20 * time.Second)
		takeover := 9500*time.Millisecond + 492_187*us // skew of 130: 126/256 s
		assert.Equal(t, []simEvent{{at: takeover, node: "B", state: StateMaster}}, s.transitions("B", time.Second))
		assert.Equal(t, []simEvent{{at: 9500 * time.Millisecond, node: "A", state: StateFault}}, s.transitions("A", 5*time.Second))
		assert.Empty(t, s.adverts("A", 10*time.Second, 20*time.Second))
		assert.Equal(t, StateMaster, b.m.State())

		// The script recovers: A comes back as backup and preempts B (160 > 130).
		s.setTracker(a, vital, TrackOK)
		s.run(30 * time.Second)
		assert.Equal(t, []simEvent{
			{at: 20 * time.Second, node: "A", state: StateBackup},
			{at: 20*time.Second + 3375*time.Millisecond, node: "A", state: StateMaster},
		}, s.transitions("A", 19*time.Second))
	})

	t.Run("row 8: weight -60 reverse, script failed, adds 60", func(t *testing.T) {
		p, fault := EffectivePriority(150, []Tracker{{Weight: -60, Reverse: true, Status: TrackFailed}})
		assert.Equal(t, uint8(210), p)
		assert.False(t, fault)
		p, _ = EffectivePriority(150, []Tracker{{Weight: -60, Reverse: true, Status: TrackOK}})
		assert.Equal(t, uint8(150), p)
	})
}
