package vrrp

// TrackStatus is the state of one tracked object: a track_script,
// track_interface, track_process or track_bfd.
type TrackStatus uint8

const (
	// TrackInit is a script that has not reported yet (or reached rise/fall).
	// It contributes nothing and, unweighted, does not fault the instance.
	TrackInit TrackStatus = iota
	TrackOK
	TrackFailed
)

// MaxTrackWeight bounds tracker weights, as keepalived's parser does.
const MaxTrackWeight = 253

// Tracker is one tracked object as a vrrp_instance sees it.
type Tracker struct {
	// Weight is in -253..253 (clamped). Zero means unweighted: a failure
	// puts the instance in FAULT instead of changing its priority.
	Weight int
	// Reverse flips the sign of the contribution, and for an unweighted
	// tracker makes success, not failure, the fault.
	Reverse bool
	Status  TrackStatus
}

// EffectivePriority computes a vrrp_instance's effective priority from its
// base priority and trackers, as keepalived does:
//
//   - weight > 0 adds weight (·−1 if reverse) while the tracker is OK;
//   - weight < 0 adds weight (·−1 if reverse) while it has failed;
//   - weight = 0 adds nothing; failure (success if reverse) means fault.
//
// The sum is clamped to 1..254. An address owner (base 255) stays at 255:
// keepalived removes weighted trackers from owners. Unweighted trackers can
// still fault an owner.
func EffectivePriority(base uint8, trackers []Tracker) (priority uint8, fault bool) {
	total := int(base)
	for _, t := range trackers {
		w := min(max(t.Weight, -MaxTrackWeight), MaxTrackWeight)
		m := 1
		if t.Reverse {
			m = -1
		}
		switch {
		case t.Status == TrackInit:
		case w == 0:
			if (t.Status == TrackOK) != (m == 1) {
				fault = true
			}
		case w > 0 && t.Status == TrackOK, w < 0 && t.Status == TrackFailed:
			total += w * m
		}
	}
	if base == PriorityOwner {
		return PriorityOwner, fault
	}
	return uint8(min(max(total, 1), int(PriorityOwner)-1)), fault
}

// FileTracker is a track_file's value as a tracker, as keepalived's
// process_update_vrrp_track_file_status applies it: with weight 0 a
// non-zero value is a failure (zero is, with reverse); otherwise
// value×weight (negated by reverse) is added to the priority, capped at
// MaxTrackWeight, and -254 or below is FAULT. ok is false when the file
// adds nothing (a value of 0 with a weight).
func FileTracker(value int64, weight int, reverse bool) (t Tracker, ok bool) {
	if weight == 0 {
		st := TrackOK
		if value != 0 {
			st = TrackFailed
		}
		return Tracker{Reverse: reverse, Status: st}, true
	}
	r := value * int64(weight)
	if reverse {
		r = -r
	}
	switch {
	case r < -MaxTrackWeight:
		return Tracker{Status: TrackFailed}, true // unweighted failure: FAULT
	case r > 0:
		return Tracker{Weight: int(min(r, MaxTrackWeight)), Status: TrackOK}, true
	case r < 0:
		return Tracker{Weight: int(r), Status: TrackFailed}, true
	}
	return Tracker{}, false
}
