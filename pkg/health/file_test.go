package health

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStrtol(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1\n", 1, true},
		{"  -12 apples", -12, true},
		{"+7", 7, true},
		{"0x1F", 31, true},
		{"0X1f\n", 31, true},
		{"0x", 0, true}, // "0", then the x is not a digit
		{"010", 8, true},
		{"09", 0, true}, // octal: 9 is not a digit
		{"abc", 0, true},
		{"", 0, true},
		{"\t\n 5", 5, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999999", 0, false},
	} {
		v, ok := strtol([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		if ok {
			assert.Equal(t, tc.want, v, "%q", tc.in)
		}
	}
}

func TestFileCheckValues(t *testing.T) {
	ptr := func(v int) *int { return &v }
	for _, tc := range []struct {
		name    string
		content string // "-" for no file
		weight  int
		reverse bool
		up      bool
		add     *int
	}{
		{"weight 0: 0 is up", "0\n", 0, false, true, nil},
		{"weight 0: non-zero is down", "1\n", 0, false, false, nil},
		{"weight 0: negative is down", "-3", 0, false, false, nil},
		{"weight 0 reverse: 0 is down", "0", 0, true, false, nil},
		{"weight 0 reverse: non-zero is up", "5", 0, true, true, nil},
		{"no file reads 0", "-", 0, false, true, nil},
		{"empty file reads 0", "", 0, false, true, nil},
		{"garbage reads 0", "ready\n", 0, false, true, nil},
		{"weight: value times weight is added", "3", 10, false, true, ptr(30)},
		{"weight: negative values subtract", "-2", 10, false, true, ptr(-20)},
		{"weight reverse: negated", "3", 10, true, true, ptr(-30)},
		{"weight: zero adds nothing", "0", 10, false, true, ptr(0)},
		{"weight: at IPVS_WEIGHT_FAULT is down", "-2147483648", 1, false, false, nil},
		{"weight: below it is down", "-1073741824", 2, false, false, nil},
		{"weight: just above it is up", "-2147483647", 1, false, true, ptr(-2147483647)},
		{"weight: capped at MaxInt32", "2147483648", 1, false, true, ptr(math.MaxInt32)},
		{"hex", "0x10", 1, false, true, ptr(16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			if tc.content != "-" {
				require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o644))
			}
			r := (&FileCheck{Path: path, Weight: tc.weight, Reverse: tc.reverse}).Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			assert.Equal(t, tc.add, r.AddWeight)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrFileFault)
			}
		})
	}
}

func TestFileCheckIgnoresOutOfRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	c := &FileCheck{Path: path}
	require.NoError(t, os.WriteFile(path, []byte("1"), 0o644))
	assert.False(t, c.Check(context.Background()).Up)
	// keepalived ignores a value outside [-2^31, 2^31] and keeps the last.
	require.NoError(t, os.WriteFile(path, []byte("4294967296"), 0o644))
	r := c.Check(context.Background())
	assert.False(t, r.Up, "still the last value, 1")
	assert.Contains(t, r.Err.Error(), "kept the last value")
	require.NoError(t, os.WriteFile(path, []byte("0"), 0o644))
	assert.True(t, c.Check(context.Background()).Up)
}

// TestFileRealFollowsItsFile runs FILE_CHECKs on the Monitor with a
// delay_loop of an hour: the real follows its files as they are written,
// moved in and removed, because they are watched, not polled.
func TestFileRealFollowsItsFile(t *testing.T) {
	dir := t.TempDir()
	state, extra := filepath.Join(dir, "state"), filepath.Join(dir, "extra")
	write := func(path, v string) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, []byte(v+"\n"), 0o644))
	}
	write(state, "0")
	checkNoLeak(t)
	out := make(chan Transition, 10)
	hour := Policy{DelayLoop: time.Hour}
	m := NewMonitor(MonitorConfig{Real: "vs/rs", Weight: 5, Probes: []Probe{
		{Name: "FILE_CHECK state", Checker: &FileCheck{Path: state}, Policy: hour},
		{Name: "FILE_CHECK extra", Checker: &FileCheck{Path: extra, Weight: 2}, Policy: hour},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, out) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // the first checks, and the watches set
	up, w := m.State()
	require.True(t, up)
	assert.Nil(t, w, "0 and no file: the configured weight")

	write(state, "1")
	tr := nextTransition(t, out, 2*time.Second)
	assert.False(t, tr.Up, "a non-zero value takes the real down")
	assert.Contains(t, tr.Reason, "FILE_CHECK state")

	write(state, "0")
	tr = nextTransition(t, out, 2*time.Second)
	assert.True(t, tr.Up, "0 brings it back")

	// A value in a weighted file moves the weight: 5 + 3*2.
	tmp := filepath.Join(dir, ".extra.new")
	write(tmp, "3")
	require.NoError(t, os.Rename(tmp, extra))
	tr = nextTransition(t, out, 2*time.Second)
	assert.True(t, tr.Up)
	require.NotNil(t, tr.Weight)
	assert.Equal(t, 11, *tr.Weight)

	write(extra, "-4") // 5 - 8: IPVS weight 0, the real still up
	tr = nextTransition(t, out, 2*time.Second)
	assert.True(t, tr.Up)
	assert.Equal(t, 0, *tr.Weight)

	require.NoError(t, os.Remove(extra)) // gone reads 0: the configured weight
	tr = nextTransition(t, out, 2*time.Second)
	assert.True(t, tr.Up)
	assert.Nil(t, tr.Weight)
}

func TestMonitorFileWeightsAdd(t *testing.T) {
	add := func(v int) Result { return Result{Up: true, AddWeight: &v} }
	clock := newFakeClock()
	pol := Policy{DelayLoop: 10 * time.Second}
	misc := checker(clock, resUp, weight(7), weight(7), weight(7), weight(7))
	file := checker(clock, add(3), add(3), add(-2), resDown, add(1))
	h := startMonitorClock(t, clock, MonitorConfig{Weight: 4, Probes: []Probe{
		{Name: "MISC_CHECK", Checker: misc, Policy: pol},
		{Name: "FILE_CHECK", Checker: file, Policy: pol},
	}})
	ts := drain(h.out)
	require.Len(t, ts, 1)
	assert.Equal(t, ptr(7), ts[0].Weight, "configured 4 + 3")
	ts = h.step(10*time.Second, 2)
	require.Len(t, ts, 1)
	assert.Equal(t, ptr(10), ts[0].Weight, "misc_dynamic 7 replaces the configured weight; the file adds 3")
	ts = h.step(10*time.Second, 2)
	require.Len(t, ts, 1)
	assert.Equal(t, ptr(5), ts[0].Weight, "7 - 2")
	ts = h.step(10*time.Second, 2)
	require.Len(t, ts, 1)
	assert.False(t, ts[0].Up, "the file in fault: down")
	assert.Equal(t, ptr(7), ts[0].Weight, "and it adds nothing")
	ts = h.step(10*time.Second, 2)
	require.Len(t, ts, 1)
	assert.True(t, ts[0].Up)
	assert.Equal(t, ptr(8), ts[0].Weight)
}
