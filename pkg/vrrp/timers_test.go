package vrrp

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestTimersB2 is the table of reference §B.2 (advert_int 1 s / 100 cs), in
// the exact microseconds keepalived computes.
func TestTimersB2(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		priority      uint8
		v2Skew, v2MDI time.Duration // reference: 0.0039 / 3.0039 s ...
		v3Skew        time.Duration // reference: 0.39 cs ...
	}{
		{255, 3906 * us, 3_003_906 * us, 3906 * us},
		{150, 414_062 * us, 3_414_062 * us, 414_062 * us},
		{100, 609_375 * us, 3_609_375 * us, 609_375 * us},
		{1, 996_093 * us, 3_996_093 * us, 996_093 * us},
	} {
		t.Run(fmt.Sprint(tc.priority), func(t *testing.T) {
			assert.Equal(t, tc.v2Skew, SkewTime(Version2, tc.priority, time.Second))
			assert.Equal(t, tc.v2MDI, MasterDownInterval(Version2, tc.priority, time.Second, 3))
			assert.Equal(t, tc.v3Skew, SkewTime(Version3, tc.priority, time.Second))
			assert.Equal(t, 3*time.Second+tc.v3Skew, MasterDownInterval(Version3, tc.priority, time.Second, 0))

			// The rounded values of the reference table.
			assert.InDelta(t, 256-float64(tc.priority), tc.v2Skew.Seconds()*256, 1)
			assert.InDelta(t, (256-float64(tc.priority))*100/256, float64(tc.v3Skew)/float64(10*time.Millisecond), 0.01)
		})
	}
}

func TestTimersOther(t *testing.T) {
	us := time.Microsecond
	// v2 skew does not depend on the interval.
	assert.Equal(t, 609_375*us, SkewTime(Version2, 100, 3*time.Second))
	assert.Equal(t, 9_609_375*us, MasterDownInterval(Version2, 100, 3*time.Second, 3))
	// v3 scales with Master_Adver_Interval: owner at 50 cs.
	assert.Equal(t, 1953*us, SkewTime(Version3, 255, 500*time.Millisecond))
	assert.Equal(t, 1_501_953*us, MasterDownInterval(Version3, 255, 500*time.Millisecond, 3))
	// 40.95 s does not overflow.
	assert.Equal(t, 40_790_039*us, SkewTime(Version3, 1, 40950*time.Millisecond))
	// down_timer_adverts.
	assert.Equal(t, 5_609_375*us, MasterDownInterval(Version2, 100, time.Second, 5))
	// Row 2 and row 7 of §B.4: B at 130.
	assert.Equal(t, 492_187*us, SkewTime(Version2, 130, time.Second))
	assert.Equal(t, 3_492_187*us, MasterDownInterval(Version2, 130, time.Second, 3))
	// Row 4: A at 160, 3 + 96/256 s exactly.
	assert.Equal(t, 3_375_000*us, MasterDownInterval(Version2, 160, time.Second, 3))
}
