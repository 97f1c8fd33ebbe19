package sched

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// Every entry has what its Table needs, and the names are the kernel's
// fourteen, once each.
func TestRegistryComplete(t *testing.T) {
	assert.ElementsMatch(t, []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}, Names(nil))
	for _, s := range Schedulers {
		switch s.Table {
		case TableSequence:
			assert.True(t, s.Start != nil && s.Resume != nil, s.Name)
		case TableBuckets:
			assert.NotNil(t, s.Buckets, s.Name)
		}
		if InXDP(&s) {
			assert.NotNil(t, s.New, "%s: the XDP data plane computes it, tests need its reference", s.Name)
		}
	}
}

// The names ipvsadm prints for -b flags (print_sched_flags) and reads.
func TestFlagNames(t *testing.T) {
	assert.Equal(t, []string{"sh-fallback", "sh-port"}, FlagNames("sh", lvs.Sched1|lvs.Sched2|lvs.OnePacket))
	assert.Equal(t, []string{"mh-port"}, FlagNames("mh", lvs.Sched2))
	assert.Equal(t, []string{"flag-1", "flag-3"}, FlagNames("rr", lvs.Sched1|lvs.Sched3))
	assert.Empty(t, FlagNames("wrr", 0))
	for _, c := range []struct {
		name  string
		bit   lvs.SvcFlags
		owner string
	}{{"sh-port", lvs.Sched2, "sh"}, {"mh-fallback", lvs.Sched1, "mh"}, {"flag-3", lvs.Sched3, ""}, {"flag-1", lvs.Sched1, ""}} {
		bit, owner, ok := FlagByName(c.name)
		require.True(t, ok, c.name)
		assert.Equal(t, c.bit, bit, c.name)
		assert.Equal(t, c.owner, owner, c.name)
	}
	for _, bad := range []string{"flag-4", "flag-", "sh_port", ""} {
		_, _, ok := FlagByName(bad)
		assert.False(t, ok, bad)
	}
}

// A Sequencer is the same state machine as the typed one it wraps: the
// same sequence, the state after n picks, and a state rebuilt from its Mark.
func TestSequencersMatchTheirSchedulers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		ds := make([]Dest, 1+rng.IntN(6))
		for i := range ds {
			ds[i] = Dest{Weight: rng.Int32N(5)}
		}
		rr, _ := Lookup("rr")
		picks, states, loop, err := Sequence(rr.Start(ds), ds, 4096)
		wantP, wantS, wantL, wantErr := RRSequence(RR{Cursor: -1}, ds, 4096)
		require.Equal(t, wantErr, err)
		assert.Equal(t, wantP, picks)
		assert.Equal(t, wantL, loop)
		assert.Equal(t, len(wantS), len(states))

		wrr, _ := Lookup("wrr")
		start := wrr.Start(ds)
		picks, states, loop, err = Sequence(start, ds, 4096)
		wP, wS, wL, wErr := WRRSequence(NewWRR(ds), ds, 4096)
		require.Equal(t, wErr, err)
		assert.Equal(t, wP, picks)
		assert.Equal(t, wL, loop)
		require.Equal(t, len(wS), len(states))
		if len(picks) == 0 {
			continue
		}
		// After n picks, stepping and StateAt agree; Resume(Mark)
		// regenerates the same sequence.
		n := uint64(rng.IntN(3 * len(picks)))
		s := start
		for range n {
			s, _ = s.Next(ds)
		}
		at := StateAt(picks, states, loop, n, ds)
		s1, p1 := s.Next(ds)
		s2, p2 := at.Next(ds)
		assert.Equal(t, p1, p2)
		assert.Equal(t, s1, s2)
		a, b := states[0].Mark()
		again, _, _, err := Sequence(wrr.Resume(ds, a, b), ds, 4096)
		require.NoError(t, err)
		assert.Equal(t, picks, again)
	}
}

// The reference pickers the behaviour suite uses are the package's own
// functions.
func TestPickersAreTheReferences(t *testing.T) {
	ds := []Dest{{Weight: 2, Active: 3, Inactive: 1}, {Weight: 1}, {Weight: 3, Active: 1}}
	for name, want := range map[string]func([]Dest) int{"lc": LC, "wlc": WLC, "sed": SED, "nq": NQ} {
		s, _ := Lookup(name)
		assert.Equal(t, want(ds), s.New(ds, 0).Pick(ds, Conn{}), name)
	}
	src := netip.MustParseAddr("192.168.1.10")
	sh, _ := Lookup("sh")
	tab := SHTable(ds)
	assert.Equal(t, SHPick(&tab, ds, SHKey(src, 0), false), sh.New(ds, 0).Pick(ds, Conn{Src: src, SPort: 99}))
	assert.Equal(t, SHPick(&tab, ds, SHKey(src, 99), true), sh.New(ds, lvs.Sched1|lvs.Sched2).Pick(ds, Conn{Src: src, SPort: 99}))
	dh, _ := Lookup("dh")
	dtab := DHTable(ds)
	assert.Equal(t, DHPick(&dtab, ds, src), dh.New(ds, 0).Pick(ds, Conn{Dst: src}))
}
