package election

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// What a director's instance tracks, and what its tracker states make of
// it. keepalived 2.2.7 (vrrp.c vrrp_complete_instance,
// sync_group_tracking_init; add_vrrp_to_track_script,
// add_vrrp_to_interface, add_obj_to_track_file) decides it so:
//
//   - an instance tracks its own interface, unweighted (xlb does not take
//     dont_track_primary);
//   - a member of a vrrp_sync_group without sync_group_tracking_weight
//     keeps its track_interface entries at weight 0 and its track_file
//     entries of weight 1 (the default) at weight 0, and drops weighted
//     track_script and other weighted track_file entries (pkg/config
//     applies this, but sets weighted track_scripts to 0: see
//     groupDropsScript);
//   - a sync group's own trackers count for every member with their
//     weights, whatever sync_group_tracking_weight says, unless a member is
//     the address owner: then their weights are 0;
//   - an object tracked both by the instance and by its group is tracked
//     once: unweighted if either says so, else with the group's weight;
//   - any member in FAULT puts the whole group in FAULT.

type objKind uint8

const (
	objScript objKind = iota
	objIface
	objFile
)

type objKey struct {
	kind objKind
	name string
}

// object is one tracked thing on one director: a vrrp_script, an
// interface or a track_file. Its state is a number: for a script or an
// interface 0 is OK and 1 failed; for a track_file, the value in the file.
type object struct {
	key objKey
	pos config.Pos // the vrrp_script or track_file block; the instance or group for an interface
	// good and bad are the states that give the instance its highest and
	// lowest (or FAULT) outcome; relevant is false when both give the same.
	good, bad int64
	relevant  bool
}

// name is how findings name the object.
func (o *object) name() string {
	switch o.key.kind {
	case objScript:
		return "vrrp_script " + o.key.name
	case objIface:
		return "interface " + o.key.name
	}
	return "track_file " + o.key.name
}

// badState says what the bad state is: "fails", "goes down", "holds -1".
func (o *object) badState() string {
	switch o.key.kind {
	case objScript:
		if o.bad == 0 {
			return "succeeds"
		}
		return "fails"
	case objIface:
		if o.bad == 0 {
			return "comes up"
		}
		return "goes down"
	}
	return fmt.Sprintf("holds %d", o.bad)
}

// ref is one instance's tracking of an object.
type ref struct {
	obj     int
	weight  int
	reverse bool
}

// unit is one vrrp_instance's priority inputs.
type unit struct {
	name string
	base uint8
	refs []ref
}

// side is one director's instance of a virtual router with what decides
// its state: its own trackers, its sync group's, and the other members of
// its sync group (whose FAULT is its FAULT).
type side struct {
	d      int
	dir    string
	in     *config.VRRPInstance
	group  *config.SyncGroup
	self   unit
	others []unit
	objs   []object
	// outcomes are the distinct (priority, FAULT) results of its tracker
	// states, the first with every tracker in its good state.
	outcomes []outcome
}

// outcome is one (priority, FAULT) result and the fewest bad trackers
// (indices into objs) that give it.
type outcome struct {
	prio   uint8
	fault  bool
	failed []int
}

// override replaces the magnitude of every non-zero weight on an object:
// the weights the check tries when it looks for one that works.
type override struct {
	key objKey
	mag int
}

func groupOf(cfg *config.Config, name string) *config.SyncGroup {
	for i := range cfg.SyncGroups {
		if slices.Contains(cfg.SyncGroups[i].Instances, name) {
			return &cfg.SyncGroups[i]
		}
	}
	return nil
}

// newSide builds director d's side of a virtual router.
func newSide(d int, dir string, cfg *config.Config, in *config.VRRPInstance) *side {
	s := &side{d: d, dir: dir, in: in, group: groupOf(cfg, in.Name)}
	ownerInGroup := false
	if s.group != nil {
		for _, m := range s.group.Instances {
			if mi := cfg.Instance(m); mi != nil && mi.Priority == vrrp.PriorityOwner {
				ownerInGroup = true
			}
		}
	}
	s.self = s.unitOf(cfg, in, ownerInGroup)
	if s.group != nil {
		for _, m := range s.group.Instances {
			if mi := cfg.Instance(m); mi != nil && mi != in {
				s.others = append(s.others, s.unitOf(cfg, mi, ownerInGroup))
			}
		}
	}
	s.classify()
	s.outcomes = s.enumerate()
	return s
}

func (s *side) objIndex(k objKey, pos config.Pos) int {
	i := slices.IndexFunc(s.objs, func(o object) bool { return o.key == k })
	if i < 0 {
		s.objs = append(s.objs, object{key: k, pos: pos})
		i = len(s.objs) - 1
	}
	return i
}

func (s *side) unitOf(cfg *config.Config, in *config.VRRPInstance, ownerInGroup bool) unit {
	u := unit{name: in.Name, base: in.Priority}
	add := func(k objKey, pos config.Pos, w int, rev bool) {
		i := s.objIndex(k, pos)
		if j := slices.IndexFunc(u.refs, func(r ref) bool { return r.obj == i }); j >= 0 {
			if u.refs[j].weight != 0 {
				u.refs[j].weight, u.refs[j].reverse = w, rev
			}
			return
		}
		u.refs = append(u.refs, ref{obj: i, weight: w, reverse: rev})
	}
	for _, ts := range in.TrackScripts {
		sc := cfg.Script(ts.Name)
		if sc == nil {
			continue
		}
		add(objKey{objScript, ts.Name}, sc.Pos, ts.Weight, ts.Reverse)
	}
	for _, ti := range in.TrackInterfaces {
		add(objKey{objIface, ti.Name}, in.Pos, ti.Weight, ti.Reverse)
	}
	for _, tf := range in.TrackFiles {
		if f := cfg.TrackFile(tf.Name); f != nil {
			add(objKey{objFile, tf.Name}, f.Pos, tf.Weight, tf.Reverse)
		}
	}
	if g := s.group; g != nil {
		gw := func(w int) int {
			if ownerInGroup {
				return 0
			}
			return w
		}
		for _, ts := range g.TrackScripts {
			if sc := cfg.Script(ts.Name); sc != nil {
				add(objKey{objScript, ts.Name}, sc.Pos, gw(ts.Weight), ts.Reverse)
			}
		}
		for _, ti := range g.TrackInterfaces {
			add(objKey{objIface, ti.Name}, g.Pos, gw(ti.Weight), ti.Reverse)
		}
		for _, tf := range g.TrackFiles {
			if f := cfg.TrackFile(tf.Name); f != nil {
				add(objKey{objFile, tf.Name}, f.Pos, gw(tf.Weight), tf.Reverse)
			}
		}
	}
	// Last, so that a tracker, not the interface, stands for the FAULT
	// outcome when both give it.
	if in.Interface != "" {
		add(objKey{objIface, in.Interface}, in.Pos, 0, false)
	}
	return u
}

// tracker is a ref in state v as pkg/vrrp sees it; ok is false when it
// contributes nothing.
func (s *side) tracker(r ref, v int64, ov *override) (vrrp.Tracker, bool) {
	w := r.weight
	if ov != nil && w != 0 && s.objs[r.obj].key == ov.key {
		w = ov.mag
		if r.weight < 0 {
			w = -w
		}
	}
	if s.objs[r.obj].key.kind != objFile {
		st := vrrp.TrackOK
		if v != 0 {
			st = vrrp.TrackFailed
		}
		return vrrp.Tracker{Weight: w, Reverse: r.reverse, Status: st}, true
	}
	return vrrp.FileTracker(v, w, r.reverse)
}

func (s *side) evalUnit(u unit, vals []int64, ov *override) (uint8, bool) {
	ts := make([]vrrp.Tracker, 0, len(u.refs))
	for _, r := range u.refs {
		if t, ok := s.tracker(r, vals[r.obj], ov); ok {
			ts = append(ts, t)
		}
	}
	return vrrp.EffectivePriority(u.base, ts)
}

// eval is the instance's effective priority and FAULT with its objects in
// states vals.
func (s *side) eval(vals []int64, ov *override) (uint8, bool) {
	p, fault := s.evalUnit(s.self, vals, ov)
	for _, o := range s.others {
		if _, f := s.evalUnit(o, vals, ov); f {
			fault = true
		}
	}
	return p, fault
}

func score(p uint8, fault bool) int {
	if fault {
		return -1
	}
	return int(p)
}

// classify finds each object's good and bad state: the one giving the
// highest and the lowest outcome with the others in their good states. A
// script or interface has two states; a track_file is tried at 0, 1 and -1,
// and is good at 0 unless 0 faults.
func (s *side) classify() {
	vals := make([]int64, len(s.objs))
	for pass := 0; pass < 2; pass++ {
		for i := range s.objs {
			o := &s.objs[i]
			cands := []int64{0, 1}
			if o.key.kind == objFile {
				cands = []int64{0, 1, -1}
			}
			saved := vals[i]
			hi, lo := -2, 1<<30
			zero := 0
			for _, c := range cands {
				vals[i] = c
				sc := score(s.eval(vals, nil))
				if c == 0 {
					zero = sc
				}
				if sc > hi {
					hi, o.good = sc, c
				}
				if sc < lo {
					lo, o.bad = sc, c
				}
			}
			// A track_file is healthy at 0 (a missing file reads 0) unless
			// 0 is its FAULT.
			if o.key.kind == objFile && zero >= 0 {
				hi, o.good = zero, 0
			}
			o.relevant = hi != lo
			vals[i] = saved
			if o.relevant {
				vals[i] = o.good
			}
		}
	}
}

// maxEnumerate is the most relevant objects whose every subset is tried;
// beyond it, subsets of at most two.
const maxEnumerate = 12

// enumerate lists the distinct outcomes of the relevant objects' states,
// each with the fewest bad objects that give it, the all-good one first.
func (s *side) enumerate() []outcome {
	var rel []int
	for i, o := range s.objs {
		if o.relevant {
			rel = append(rel, i)
		}
	}
	masks := make([]uint64, 0, 1<<min(len(rel), maxEnumerate))
	if len(rel) <= maxEnumerate {
		for m := uint64(0); m < 1<<len(rel); m++ {
			masks = append(masks, m)
		}
	} else {
		masks = append(masks, 0)
		for i := range rel {
			masks = append(masks, 1<<i)
			for j := i + 1; j < len(rel); j++ {
				masks = append(masks, 1<<i|1<<j)
			}
		}
	}
	slices.SortStableFunc(masks, func(a, b uint64) int { return bits.OnesCount64(a) - bits.OnesCount64(b) })
	var out []outcome
	for _, m := range masks {
		vals := s.values(nil)
		var failed []int
		for bi, oi := range rel {
			if m&(1<<bi) != 0 {
				vals[oi] = s.objs[oi].bad
				failed = append(failed, oi)
			}
		}
		p, f := s.eval(vals, nil)
		if f {
			p = 0
		}
		if slices.ContainsFunc(out, func(o outcome) bool { return o.prio == p && o.fault == f }) {
			continue
		}
		out = append(out, outcome{prio: p, fault: f, failed: failed})
	}
	return out
}

// values are the objects' good states, with the objects in failed bad.
func (s *side) values(failed []int) []int64 {
	vals := make([]int64, len(s.objs))
	for i, o := range s.objs {
		if o.relevant {
			vals[i] = o.good
		}
	}
	for _, i := range failed {
		vals[i] = s.objs[i].bad
	}
	return vals
}

// weights describes how the instance tracks object i: "weight -20",
// "weight 0 (FAULT)", "weight 10 reverse".
func (s *side) weights(i int) string {
	var ws []string
	for _, r := range s.self.refs {
		if r.obj != i {
			continue
		}
		w := fmt.Sprintf("weight %d", r.weight)
		if r.weight == 0 {
			w += " (FAULT)"
		}
		if r.reverse {
			w += " reverse"
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return "via its sync group's other members (FAULT)"
	}
	return strings.Join(ws, ", ")
}

// describe names the bad objects of an outcome: "vrrp_script chk fails".
func (s *side) describe(failed []int) string {
	var parts []string
	for _, i := range failed {
		parts = append(parts, s.objs[i].name()+" "+s.objs[i].badState())
	}
	return strings.Join(parts, ", ")
}
