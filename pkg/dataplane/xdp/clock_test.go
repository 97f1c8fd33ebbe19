package xdp

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelConfigHZ(t *testing.T) {
	hz, err := configHZ([]byte("# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\n# CONFIG_HZ_1000 is not set\nCONFIG_HZ=250\nCONFIG_SCHED_HRTICK=y\n"))
	require.NoError(t, err)
	assert.Equal(t, uint64(250), hz)
	_, err = configHZ([]byte("CONFIG_HZ_250=y\n"))
	assert.ErrorContains(t, err, "no CONFIG_HZ")
	_, err = configHZ([]byte("CONFIG_HZ=fast\n"))
	assert.ErrorContains(t, err, "CONFIG_HZ=fast")
}

// ticker is a kernel's clocks as sampleJiffyClock reads them: jiffies
// moved from CLOCK_MONOTONIC by whole ticks of tick ns, and a coarse clock
// read at each tick's interrupt, late by late(j) (under a tick); a sample
// every millisecond of CLOCK_MONOTONIC.
type ticker struct {
	tick, t, phase, j0 uint64
	late               func(j uint64) uint64
}

func (k *ticker) read(s *clockSample) error {
	j := (k.t - k.phase) / k.tick
	if k.phase+j*k.tick+k.late(j) > k.t {
		j-- // this tick's interrupt has not come yet
	}
	s.j0, s.j1 = k.j0+j, k.j0+j
	s.ns = k.phase + j*k.tick + k.late(j)
	return nil
}

func (k *ticker) pause() { k.t += 1_000_000 }

func TestJiffyClockFromSamples(t *testing.T) {
	for _, c := range []struct{ hz, tick uint64 }{{100, 10_000_000}, {250, 4_000_000}, {300, 3_333_333}, {1000, 1_000_000}} {
		k := &ticker{tick: c.tick, t: 5e12, phase: 12345, j0: 4294667296, late: func(j uint64) uint64 { return (j * 7919) % (c.tick / 2) }}
		got, err := sampleJiffyClock(c.hz, k.read, k.pause)
		require.NoError(t, err, "HZ=%d", c.hz)
		require.Equal(t, c.tick, got.tick, "HZ=%d: the kernel's TICK_NSEC", c.hz)
		// Later, the clock reads the coarse clock's time within a tick,
		// and CLOCK_MONOTONIC's less than a tick ahead (by the least
		// lateness of the ticks sampled).
		for range 5000 {
			k.pause()
			var s clockSample
			require.NoError(t, k.read(&s))
			d := int64(got.now(s.j0) - s.ns)
			require.Less(t, max(d, -d), int64(c.tick), "HZ=%d", c.hz)
			require.Less(t, got.now(s.j0), k.t+c.tick, "HZ=%d", c.hz)
		}
	}
	// A config that names another HZ than the kernel ticks at.
	k := &ticker{tick: 1_000_000, t: 5e12, j0: 1, late: func(uint64) uint64 { return 0 }}
	_, err := sampleJiffyClock(100, k.read, k.pause)
	require.True(t, errors.Is(err, errNoJiffyClock), "%v", err)
}

// On this kernel: the clock reads the coarse clock's time within two
// ticks, and CLOCK_MONOTONIC's (read after it) within 100 ms and never
// a tick ahead;
// or, where the kernel's config cannot be read, the coarse clock stays.
func TestJiffyClockOnThisKernel(t *testing.T) {
	requireRoot(t)
	c, err := measureJiffyClock()
	if _, cerr := kernelHZ(); cerr != nil {
		require.True(t, errors.Is(err, errNoJiffyClock), "no config (%v): %v", cerr, err)
		t.Logf("no kernel config (%v): the data plane keeps the coarse clock", cerr)
		return
	}
	require.NoError(t, err)
	p, err := clockProgram()
	require.NoError(t, err)
	defer p.Close()
	buf := make([]byte, 64)
	for range 200 {
		var s clockSample
		require.NoError(t, s.read(p, buf))
		mono := monotonicNow()
		got := c.now(s.j1)
		if s.j0 == s.j1 {
			d := int64(got - s.ns)
			require.Less(t, max(d, -d), 2*int64(c.tick), "the clock strays from the coarse clock")
		}
		require.LessOrEqual(t, got, mono+c.tick, "the clock runs ahead of CLOCK_MONOTONIC")
		require.Less(t, mono-got, uint64(100*time.Millisecond), "the clock lags CLOCK_MONOTONIC")
		time.Sleep(time.Millisecond)
	}
	t.Logf("tick %d ns", c.tick)
}
