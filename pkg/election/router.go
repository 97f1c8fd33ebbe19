package election

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/vrrp"
)

// router is one virtual router under analysis.
type router struct {
	name  string
	key   routerKey
	sides []*side
	// drop[i][j] says why director i drops director j's adverts.
	drop     [][][]string
	findings []Finding
	// nominal are the directors (indices into Check's) that can be MASTER
	// with every director healthy.
	nominal []int
}

// down marks a director down in a combination.
const down = -1

// maxCombinations bounds the full walk; beyond it only combinations with
// at most two directors away from their healthy state are walked.
const maxCombinations = 1 << 18

func newRouter(ds []Director, m matched) *router {
	r := &router{key: m.key, name: routerName(m.key.vrid, m.key.v6)}
	for _, x := range m.insts {
		r.sides = append(r.sides, newSide(x.d, ds[x.d].Name, ds[x.d].Config, x.in))
	}
	n := len(r.sides)
	r.drop = make([][][]string, n)
	for i := range n {
		r.drop[i] = make([][]string, n)
		for j := range n {
			if i != j {
				r.drop[i][j] = drops(r.sides[i].in, r.sides[j].in, ds[r.sides[i].d].Config, ds[r.sides[j].d].Config)
			}
		}
	}
	return r
}

func (r *router) add(sev Severity, kind Kind, format string, args ...any) {
	r.findings = append(r.findings, Finding{Severity: sev, Kind: kind, Router: r.name, Message: fmt.Sprintf(format, args...)})
}

// label names director i's instance: "a.conf:12 VI_1", with the director
// when the instance is in an included file.
func (r *router) label(i int) string {
	s := r.sides[i]
	l := fmt.Sprintf("%s %s", s.in.Pos, s.in.Name)
	if s.in.Pos.File != s.dir {
		l += " (director " + s.dir + ")"
	}
	return l
}

// nodes is the directors' states in a combination: combo[i] indexes
// sides[i].outcomes, or is down.
func (r *router) nodes(combo []int) []node {
	out := make([]node, len(combo))
	for i, c := range combo {
		if c == down {
			continue
		}
		o := r.sides[i].outcomes[c]
		out[i] = node{eligible: !o.fault, prio: o.prio}
	}
	return out
}

// results are the distinct ends of an election in one combination, from
// every history: a fresh start, and each director that could be MASTER
// having been MASTER before.
func (r *router) results(nodes []node) (ends [][]bool, unsettled bool) {
	try := func(init []bool) {
		m, ok := r.settle(nodes, init)
		if !ok {
			unsettled = true
		}
		if !slices.ContainsFunc(ends, func(e []bool) bool { return slices.Equal(e, m) }) {
			ends = append(ends, m)
		}
	}
	try(nil)
	for i := range nodes {
		if nodes[i].eligible {
			init := make([]bool, len(nodes))
			init[i] = true
			try(init)
		}
	}
	return ends, unsettled
}

func (r *router) masterNames(m []bool) []string {
	var out []string
	for i, ok := range m {
		if ok {
			out = append(out, r.label(i))
		}
	}
	return out
}

// describe says what a combination is: "with every director healthy",
// "when b.conf is down and a.conf's vrrp_script chk fails".
func (r *router) describe(combo []int) string {
	var parts []string
	for i, c := range combo {
		switch {
		case c == down:
			parts = append(parts, r.sides[i].dir+" is down")
		case len(r.sides[i].outcomes[c].failed) > 0:
			parts = append(parts, r.sides[i].dir+"'s "+r.sides[i].describe(r.sides[i].outcomes[c].failed))
		}
	}
	if len(parts) == 0 {
		return "with every director healthy"
	}
	return "when " + joinAnd(parts)
}

// cost weighs a combination's failures, for picking the simplest example:
// a tracker failing 2, a director down 3.
func (r *router) cost(combo []int) int {
	n := 0
	for i, c := range combo {
		if c == down {
			n += 3
		} else {
			n += 2 * len(r.sides[i].outcomes[c].failed)
		}
	}
	return n
}

// analyse works through the router's combinations and records findings.
func (r *router) analyse() Router {
	rt := Router{Name: r.name, VRID: r.key.vrid, IPv6: r.key.v6, VIPs: vips(r.sides[0].in)}
	for _, s := range r.sides {
		rt.Members = append(rt.Members, Member{Director: s.dir, Instance: s.in.Name, Pos: s.in.Pos, Priority: s.outcomes[0].prio})
	}
	if len(r.sides) == 1 {
		r.add(Info, KindAlone, "only %s has this virtual router: no other director takes the VIP over", r.label(0))
		rt.Master = []string{r.label(0)}
		r.nominal = []int{r.sides[0].d}
		rt.Combinations = len(r.sides[0].outcomes) + 1
		return rt
	}
	r.checkOwners()
	r.checkAdvertInt()
	nominal := make([]int, len(r.sides))
	ends, _ := r.results(r.nodes(nominal))
	for _, e := range ends {
		for i, ok := range e {
			if ok && !slices.Contains(r.nominal, r.sides[i].d) {
				r.nominal = append(r.nominal, r.sides[i].d)
				rt.Master = append(rt.Master, r.label(i))
			}
		}
	}
	r.notePreempt()
	r.checkTies(nominal)
	r.checkHistory(ends)
	r.checkStaysMaster(nominal, ends)
	rt.Combinations = r.walk()
	slices.SortStableFunc(r.findings, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return rt
}

func (r *router) checkOwners() {
	var owners []string
	for i, s := range r.sides {
		if s.in.Priority == vrrp.PriorityOwner {
			owners = append(owners, r.label(i))
		}
	}
	if len(owners) > 1 {
		r.add(Warning, KindOwner, "%s are "+plural(len(owners)-1, "both", "all")+" the address owner (priority 255): keepalived logs \"CONFIGURATION ERROR\" and a MASTER that hears another owner lowers its own priority to 254 until keepalived reloads; give one owner only",
			joinAnd(owners))
	}
}

// notePreempt notes what delays or pins a failback: preempt_delay, and an
// address owner, which no weighted tracker moves.
func (r *router) notePreempt() {
	for i, s := range r.sides {
		switch {
		case s.in.Priority == vrrp.PriorityOwner:
			r.add(Info, KindOwner, "%s is the address owner (priority 255): weighted trackers do not move it (keepalived ignores them), only a FAULT does: its interface, or a tracker of weight 0", r.label(i))
		case s.in.PreemptDelay > 0:
			r.add(Info, KindHistory, "%s has preempt_delay %s: it takes the VIP from a MASTER of lower priority only that long after first hearing it, plus its down timer", r.label(i), s.in.PreemptDelay)
		}
	}
}

// checkAdvertInt notes VRRPv3 instances with different intervals: keepalived
// does not drop their adverts, a BACKUP adopts the MASTER's interval.
func (r *router) checkAdvertInt() {
	for i := range r.sides {
		for j := i + 1; j < len(r.sides); j++ {
			a, b := r.sides[i].in, r.sides[j].in
			if a.Version == 3 && b.Version == 3 && a.AdvertInterval != b.AdvertInterval {
				r.add(Info, KindAdvertInt, "%s has advert_int %s and %s %s: VRRPv3 takes the adverts anyway, a BACKUP adopts its MASTER's interval for its down timer",
					r.label(i), a.AdvertInterval, r.label(j), b.AdvertInterval)
			}
		}
	}
}

func (r *router) checkTies(nominal []int) {
	nodes := r.nodes(nominal)
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			if !nodes[i].eligible || !nodes[j].eligible || nodes[i].prio != nodes[j].prio || nodes[i].prio == vrrp.PriorityOwner {
				continue // owners have a finding of their own
			}
			a, b := r.sides[i].in.UnicastSrcIP, r.sides[j].in.UnicastSrcIP
			addr := "the higher primary address wins (the files do not say which: no unicast_src_ip)"
			if a.IsValid() && b.IsValid() {
				w := r.label(i) + "'s " + a.String()
				if b.Compare(a) > 0 {
					w = r.label(j) + "'s " + b.String()
				}
				addr = "the higher primary address wins, " + w
			}
			r.add(Warning, KindTie, "%s and %s both have priority %d with every tracker healthy: a BACKUP does not take over from an equal priority, so whichever is MASTER first keeps the VIP, and when both claim it at once %s",
				r.label(i), r.label(j), nodes[i].prio, addr)
		}
	}
}

// checkHistory notes nopreempt making the healthy state's MASTER depend on
// the past (ties have their own finding).
func (r *router) checkHistory(ends [][]bool) {
	if len(ends) < 2 {
		return
	}
	var np []string
	for i, s := range r.sides {
		if s.in.Nopreempt {
			np = append(np, r.label(i))
		}
	}
	if len(np) == 0 {
		return
	}
	var who []string
	for _, e := range ends {
		who = append(who, joinAnd(r.masterNames(e)))
	}
	r.add(Info, KindHistory, "with every director healthy the MASTER depends on history (%s): %s ha%s nopreempt and do%s not take the VIP back from a live MASTER",
		strings.Join(who, " or "), joinAnd(np), plural(len(np), "s", "ve"), plural(len(np), "es", ""))
}

func count(m []bool) int {
	n := 0
	for _, ok := range m {
		if ok {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// checkStaysMaster looks, for every director that is MASTER with every
// director healthy, at each of its trackers failing alone: if it is still
// MASTER after the election, no failover happens.
func (r *router) checkStaysMaster(nominal []int, ends [][]bool) {
	nodes := r.nodes(nominal)
	var masters []int
	for _, e := range ends {
		if i := slices.Index(e, true); count(e) == 1 && !slices.Contains(masters, i) {
			masters = append(masters, i)
		}
	}
	for _, m := range masters {
		s := r.sides[m]
		only := make([]bool, len(nodes))
		only[m] = true
		for oi := range s.objs {
			o := &s.objs[oi]
			if !o.relevant {
				continue
			}
			p, fault := s.eval(s.values([]int{oi}), nil)
			if fault {
				continue
			}
			failed := slices.Clone(nodes)
			failed[m] = node{eligible: true, prio: p}
			after, _ := r.settle(failed, only)
			if !after[m] || count(after) > 1 {
				continue // moved, or split: a finding of its own
			}
			r.add(Error, KindStaysMaster, "when %s (%s, %s) %s on %s, its priority goes from %d to %d and it stays MASTER: %s%s",
				o.name(), o.pos, s.weights(oi), o.badState(), r.label(m), nodes[m].prio, p, r.why(m, failed), r.fix(m, oi))
		}
	}
}

// why explains why director m is still MASTER in nodes.
func (r *router) why(m int, nodes []node) string {
	best := -1
	var np []string
	for j := range nodes {
		if j == m || !nodes[j].eligible || !r.takes(j, m) {
			continue
		}
		if r.sides[j].in.Nopreempt {
			np = append(np, r.label(j))
			continue
		}
		if best < 0 || nodes[j].prio > nodes[best].prio {
			best = j
		}
	}
	var parts []string
	if best >= 0 {
		parts = append(parts, fmt.Sprintf("the best other director, %s, has %d, and a BACKUP takes over only from a lower priority", r.label(best), nodes[best].prio))
	}
	if len(np) > 0 {
		parts = append(parts, fmt.Sprintf("%s ha%s nopreempt and never take%s over from a live MASTER", joinAnd(np), plural(len(np), "s", "ve"), plural(len(np), "s", "")))
	}
	if len(parts) == 0 {
		return "no other director can be MASTER"
	}
	return strings.Join(parts, "; ")
}

// fix finds the smallest weight (same sign) for object oi, set wherever
// this router's directors track an object of that name, with which
// director m is still MASTER while healthy but loses the VIP when oi goes
// bad.
func (r *router) fix(m, oi int) string {
	s := r.sides[m]
	key := s.objs[oi].key
	sign := 0
	for _, ref := range s.self.refs {
		if ref.obj == oi && ref.weight != 0 {
			sign = 1
			if ref.weight < 0 {
				sign = -1
			}
		}
	}
	if sign == 0 {
		return "; only its sync group's other members track it"
	}
	maxMag := vrrp.MaxTrackWeight
	if key.kind == objFile {
		maxMag = 254
	}
	only := make([]bool, len(r.sides))
	only[m] = true
	for mag := 1; mag <= maxMag; mag++ {
		ov := &override{key: key, mag: mag}
		healthy := make([]node, len(r.sides))
		for i, si := range r.sides {
			p, f := si.eval(si.values(nil), ov)
			healthy[i] = node{eligible: !f, prio: p}
		}
		if held, _ := r.settle(healthy, only); !held[m] {
			continue
		}
		failed := slices.Clone(healthy)
		p, f := s.eval(s.values([]int{oi}), ov)
		failed[m] = node{eligible: !f, prio: p}
		if after, _ := r.settle(failed, only); !after[m] {
			what := "weight"
			if key.kind == objFile {
				what = "weight (value × weight)"
			}
			return fmt.Sprintf(". The smallest %s that moves the VIP is %d", what, sign*mag)
		}
	}
	return ". No weight of that sign moves the VIP: use weight 0, which puts the director in FAULT when it fails"
}

// onlyOwnInterfaces: every director of the combination is down or has lost
// only its own interface, which is true of any virtual router and not
// worth a line.
func (r *router) onlyOwnInterfaces(combo []int) bool {
	for i, c := range combo {
		if c == down {
			continue
		}
		for _, oi := range r.sides[i].outcomes[c].failed {
			if o := r.sides[i].objs[oi].key; o.kind != objIface || o.name != r.sides[i].in.Interface {
				return false
			}
		}
	}
	return true
}

// walk works through every combination (or, when there are too many, those
// with at most two directors away from healthy) and records who can lose
// or split the VIP. It returns how many combinations it walked.
func (r *router) walk() int {
	n := len(r.sides)
	total := 1
	for _, s := range r.sides {
		total *= len(s.outcomes) + 1
		if total > maxCombinations {
			break
		}
	}
	limit := n
	if total > maxCombinations {
		limit = 2
	}
	type example struct {
		combo []int
		cost  int
	}
	better := func(cur *example, combo []int) *example {
		c := r.cost(combo)
		if cur == nil || c < cur.cost {
			return &example{slices.Clone(combo), c}
		}
		return cur
	}
	var noMaster, lost *example
	noMasterCount := 0
	split := map[[2]int]*example{}
	walked := 0
	combo := make([]int, n)
	var rec func(i, away int)
	rec = func(i, away int) {
		if i == n {
			walked++
			nodes := r.nodes(combo)
			eligible := slices.ContainsFunc(nodes, func(x node) bool { return x.eligible })
			if !eligible {
				noMasterCount++
				allFailed := true
				for k, c := range combo {
					if c != down && len(r.sides[k].outcomes[c].failed) == 0 {
						allFailed = false
					}
				}
				if allFailed {
					noMaster = better(noMaster, combo)
				} else {
					lost = better(lost, combo)
				}
				return
			}
			ends, unsettled := r.results(nodes)
			if unsettled {
				lost = better(lost, combo)
			}
			for _, e := range ends {
				ms := r.masterNames(e)
				if len(ms) == 0 {
					lost = better(lost, combo)
				}
				for a := range e {
					for b := a + 1; b < len(e); b++ {
						if e[a] && e[b] {
							split[[2]int{a, b}] = better(split[[2]int{a, b}], combo)
						}
					}
				}
			}
			return
		}
		for c := down; c < len(r.sides[i].outcomes); c++ {
			a := away
			if c != 0 {
				a++
			}
			if a > limit {
				continue
			}
			combo[i] = c
			rec(i+1, a)
		}
	}
	rec(0, 0)
	if limit < n {
		r.add(Info, KindNoMaster, "too many combinations (more than %d): only those with at most %d directors failing were worked through", maxCombinations, limit)
	}

	for i := range n {
		for j := i + 1; j < n; j++ {
			ex := split[[2]int{i, j}]
			dij, dji := r.drop[i][j], r.drop[j][i]
			if len(dij) == 0 && len(dji) == 0 {
				if ex != nil {
					r.add(Error, KindSplit, "%s and %s both claim MASTER %s", r.label(i), r.label(j), r.describe(ex.combo))
				}
				continue
			}
			var why []string
			if len(dij) > 0 {
				why = append(why, fmt.Sprintf("%s drops %s's adverts (%s)", r.sides[i].dir, r.sides[j].dir, strings.Join(dij, "; ")))
			}
			if len(dji) > 0 {
				if slices.Equal(dij, dji) {
					why[0] = fmt.Sprintf("each drops the other's adverts (%s)", strings.Join(dij, "; "))
				} else {
					why = append(why, fmt.Sprintf("%s drops %s's adverts (%s)", r.sides[j].dir, r.sides[i].dir, strings.Join(dji, "; ")))
				}
			}
			if ex != nil {
				r.add(Error, KindSplit, "%s and %s both claim MASTER %s: %s", r.label(i), r.label(j), r.describe(ex.combo), strings.Join(why, ", and "))
			} else {
				r.add(Warning, KindSplit, "%s and %s: %s; no combination makes both MASTER, but this is fragile", r.label(i), r.label(j), strings.Join(why, ", and "))
			}
		}
	}
	if lost != nil {
		r.add(Error, KindLost, "nobody is MASTER %s although a director could be", r.describe(lost.combo))
	}
	if noMaster != nil && !r.onlyOwnInterfaces(noMaster.combo) {
		r.add(Info, KindNoMaster, "no director can be MASTER %s (%d of %d combinations leave every director in FAULT or down)",
			r.describe(noMaster.combo), noMasterCount, walked)
	}
	return walked
}
