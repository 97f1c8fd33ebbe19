package health

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMonitorOnChecker: each checker's own changes are told, with whether
// they moved the real (keepalived mails each checker change).
func TestMonitorOnChecker(t *testing.T) {
	clock := newFakeClock()
	var mu sync.Mutex
	var got []CheckerChange
	pol := Policy{DelayLoop: 10 * time.Second}
	h := startMonitorClock(t, clock, MonitorConfig{
		Probes: []Probe{
			{Name: "A", Checker: checker(clock, resUp, resDown, resDown, resDown, resUp), Policy: pol},
			{Name: "B", Checker: checker(clock, resUp, resUp, resDown, resDown, resDown, resUp), Policy: pol},
		},
		OnChecker: func(c CheckerChange) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, c)
		},
	})
	changes := func() []CheckerChange {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	assert.Empty(t, changes(), "checkers that pass from the start change nothing")
	h.step(10*time.Second, 2)
	c := changes()
	require.Len(t, c, 1)
	assert.Equal(t, "A", c[0].Name)
	assert.False(t, c[0].Up)
	assert.ErrorIs(t, c[0].Err, ErrTimeout)
	assert.True(t, c[0].RealChanged, "A down takes the real down")
	assert.False(t, c[0].RealUp)
	h.step(10*time.Second, 2)
	c = changes()
	require.Len(t, c, 1)
	assert.Equal(t, "B", c[0].Name)
	assert.False(t, c[0].RealChanged, "the real was down already")
	h.step(10*time.Second, 2)
	h.step(10*time.Second, 2)
	c = changes()
	require.Len(t, c, 1)
	assert.Equal(t, "A", c[0].Name)
	assert.True(t, c[0].Up)
	assert.False(t, c[0].RealUp, "B is still down")
	h.step(10*time.Second, 2)
	c = changes()
	require.Len(t, c, 1)
	assert.Equal(t, "B", c[0].Name)
	assert.True(t, c[0].RealChanged)
	assert.True(t, c[0].RealUp)
}
