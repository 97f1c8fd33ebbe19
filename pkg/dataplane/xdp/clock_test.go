package xdp

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ticker makes clock samples of a kernel with the given tick: jiffies
// from j0, the coarse clock at each tick's time plus late ns, a sample
// every step of time.
type ticker struct {
	tick, step, t uint64
	j0            uint64
	late          func(j uint64) uint64
}

func (k *ticker) read(s *clockSample) error {
	k.t += k.step
	j := k.t / k.tick
	s.j0, s.j1 = k.j0+j, k.j0+j
	s.ns = 5e12 + j*k.tick + k.late(j)
	return nil
}

func fakeNow() func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time { t = t.Add(time.Microsecond); return t }
}

func TestJiffyClockFromSamples(t *testing.T) {
	for _, c := range []struct {
		hz   uint64
		tick uint64 // the kernel's TICK_NSEC for hz
	}{{100, 10_000_000}, {250, 4_000_000}, {300, 3_333_333}, {1000, 1_000_000}} {
		// Ticks late by up to 40 us, as interrupts are.
		k := &ticker{tick: c.tick, step: 2_000, j0: 4294667296, late: func(j uint64) uint64 { return (j * 7919) % 40_000 }}
		got, err := sampleJiffyClock(k.read, fakeNow(), time.Second)
		require.NoError(t, err, "HZ=%d", c.hz)
		require.Equal(t, c.tick, got.tick, "HZ=%d", c.hz)
		// The clock reads the coarse clock's time within a tick.
		var s clockSample
		for range 1000 {
			require.NoError(t, k.read(&s))
			d := int64(got.now(s.j0) - s.ns)
			require.Less(t, max(d, -d), int64(c.tick), "HZ=%d", c.hz)
		}
	}
	// A tick of no whole HZ, and a kernel whose jiffies never move.
	k := &ticker{tick: 4_700_000, step: 2_000, j0: 1, late: func(uint64) uint64 { return 0 }}
	_, err := sampleJiffyClock(k.read, fakeNow(), time.Second)
	require.True(t, errors.Is(err, errNoJiffyClock), "%v", err)
	k = &ticker{tick: 1 << 62, step: 2_000, j0: 1, late: func(uint64) uint64 { return 0 }}
	_, err = sampleJiffyClock(k.read, fakeNow(), 100*time.Millisecond)
	require.True(t, errors.Is(err, errNoJiffyClock), "%v", err)
}

// The clock measured on this kernel reads CLOCK_MONOTONIC within a tick,
// as the coarse clock it replaces does.
func TestJiffyClockOnThisKernel(t *testing.T) {
	requireRoot(t)
	c, err := measureJiffyClock()
	require.NoError(t, err)
	require.Contains(t, []uint64{1_000_000, 3_333_333, 4_000_000, 10_000_000}, c.tick)
	p, err := clockProgram()
	require.NoError(t, err)
	defer p.Close()
	buf := make([]byte, 64)
	for range 200 {
		var s clockSample
		require.NoError(t, s.read(p, buf))
		mono := monotonicNow()
		got := c.now(s.j1)
		require.LessOrEqual(t, got, mono+c.tick, "the clock runs ahead of CLOCK_MONOTONIC")
		require.Less(t, mono-got, 3*c.tick, "the clock lags CLOCK_MONOTONIC by more than a tick")
		time.Sleep(time.Millisecond)
	}
	t.Logf("tick %d ns", c.tick)
}
