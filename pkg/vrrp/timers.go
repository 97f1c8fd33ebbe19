package vrrp

import "time"

// DefaultDownTimerAdverts is the "3" in Master_Down_Interval, keepalived's
// down_timer_adverts.
const DefaultDownTimerAdverts = 3

// SkewTime is Skew_Time (RFC 3768 §6.1, RFC 9568 §6.1) computed the way
// keepalived's VRRP_TIMER_SKEW does, in whole microseconds rounded down:
//
//	v2: (256 − priority) · 10⁶ / 256 µs
//	v3: (256 − priority) · Master_Adver_Interval[cs] · 625 / 16 µs
//
// priority is the effective priority (255 for an owner). masterAdverInt is
// only used by v3, truncated to whole centiseconds as keepalived keeps it.
func SkewTime(version, priority uint8, masterAdverInt time.Duration) time.Duration {
	p := uint64(256 - int(priority))
	if version == Version3 {
		cs := uint64(masterAdverInt / (10 * time.Millisecond))
		return time.Duration(p*cs*625/16) * time.Microsecond
	}
	return time.Duration(p*1_000_000/256) * time.Microsecond
}

// MasterDownInterval is Master_Down_Interval =
// downTimerAdverts · Master_Adver_Interval + Skew_Time, in microseconds as
// keepalived's VRRP_MS_DOWN_TIMER computes it. downTimerAdverts ≤ 0 means
// DefaultDownTimerAdverts.
func MasterDownInterval(version, priority uint8, masterAdverInt time.Duration, downTimerAdverts int) time.Duration {
	if downTimerAdverts <= 0 {
		downTimerAdverts = DefaultDownTimerAdverts
	}
	adv := masterAdverInt.Truncate(time.Microsecond)
	if version == Version3 {
		adv = masterAdverInt.Truncate(10 * time.Millisecond)
	}
	return time.Duration(downTimerAdverts)*adv + SkewTime(version, priority, masterAdverInt)
}
