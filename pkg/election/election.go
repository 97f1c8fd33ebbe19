package election

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
)

// Director is one director's configuration.
type Director struct {
	// Name labels the director in findings (its file, as the operator
	// named it).
	Name   string
	Config *config.Config
}

// Severity grades a finding. Only errors fail the check.
type Severity int

const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "invalid"
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Kind says what a finding is about.
type Kind string

const (
	// KindStaysMaster: a MASTER whose own tracker failed keeps the VIP.
	KindStaysMaster Kind = "stays-master"
	// KindSplit: two directors would both be MASTER (an error when some
	// combination makes them so).
	KindSplit Kind = "split"
	// KindNoMaster: every director is in FAULT or down in some combination.
	KindNoMaster Kind = "no-master"
	// KindLost: nobody is MASTER although a director could be (an error).
	KindLost Kind = "lost"
	// KindTie: two directors have the same priority.
	KindTie Kind = "tie"
	// KindHistory: who is MASTER depends on who was MASTER before.
	KindHistory Kind = "history"
	// KindOwner: two address owners (priority 255).
	KindOwner Kind = "owner"
	// KindCollision: the VRID is used by another virtual router on the
	// same interface.
	KindCollision Kind = "collision"
	// KindAdvertInt: VRRPv3 instances with different advert_int.
	KindAdvertInt Kind = "advert-int"
	// KindAlone: a virtual router configured on one director only.
	KindAlone Kind = "alone"
	// KindSyncGroup: a sync group's members elect different directors.
	KindSyncGroup Kind = "sync-group"
)

// Finding is one thing the check found about one virtual router.
type Finding struct {
	Severity Severity `json:"severity"`
	Kind     Kind     `json:"kind"`
	// Router names the virtual router: "VRID 51 IPv4".
	Router  string `json:"router"`
	Message string `json:"message"`
}

// String is the finding's line: "error: VRID 51 IPv4: message".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s", f.Severity, f.Router, f.Message)
}

// Member is one director's instance of a virtual router.
type Member struct {
	Director string     `json:"director"`
	Instance string     `json:"instance"`
	Pos      config.Pos `json:"pos"`
	// Priority is the effective priority with every tracker healthy.
	Priority uint8 `json:"priority"`
}

// Router is a virtual router: the instances of the directors that share a
// VRID and address family (and VIP set).
type Router struct {
	Name    string       `json:"name"`
	VRID    uint8        `json:"vrid"`
	IPv6    bool         `json:"ipv6"`
	VIPs    []netip.Addr `json:"vips"`
	Members []Member     `json:"members"`
	// Combinations is how many combinations of tracker states and
	// directors down were worked through.
	Combinations int `json:"combinations"`
	// Master is who is MASTER with every director healthy (more than one
	// name when that depends on history).
	Master []string `json:"master"`
}

// Report is what Check found.
type Report struct {
	Directors int       `json:"directors"`
	Routers   []Router  `json:"routers"`
	Findings  []Finding `json:"findings"`
}

// Failed reports whether some combination loses the VIP (nobody MASTER
// while a director could be) or splits it (two MASTERs).
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Severity == Error })
}

// Count is how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Summary is the report's last line.
func (r *Report) Summary() string {
	combos := 0
	for _, rt := range r.Routers {
		combos += rt.Combinations
	}
	verdict := "OK: no combination loses or splits a VIP"
	if r.Failed() {
		verdict = "FAIL: some combination loses or splits a VIP, or leaves it on a failed MASTER"
	}
	return fmt.Sprintf("election: %s: %d virtual routers on %d directors, %d combinations; %d errors, %d warnings, %d notes",
		verdict, len(r.Routers), r.Directors, combos, r.Count(Error), r.Count(Warning), r.Count(Info))
}

// Check works out the elections of every virtual router the directors
// share, in every combination of tracker failures and directors down, as
// keepalived 2.2.7 would hold them.
func Check(ds []Director) Report {
	rep := Report{Directors: len(ds)}
	routers := match(ds)
	var analysed []*router
	for _, rt := range routers {
		r := newRouter(ds, rt)
		rep.Routers = append(rep.Routers, r.analyse())
		rep.Findings = append(rep.Findings, r.findings...)
		analysed = append(analysed, r)
	}
	rep.Findings = append(rep.Findings, collisions(ds, routers)...)
	rep.Findings = append(rep.Findings, syncGroups(ds, analysed)...)
	return rep
}

// syncGroups finds sync groups whose members' virtual routers elect
// different directors with every director healthy. keepalived keeps a
// group's members in one state (a member going BACKUP takes the others
// with it, and one goes MASTER only when all want to), so one of those
// elections is overridden, and which depends on history.
func syncGroups(ds []Director, routers []*router) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for d, dir := range ds {
		for _, g := range dir.Config.SyncGroups {
			type elected struct {
				r     *router
				inst  string
				where []string
			}
			var es []elected
			for _, r := range routers {
				for _, s := range r.sides {
					if s.d == d && slices.Contains(g.Instances, s.in.Name) {
						var where []string
						for _, m := range r.nominal {
							where = append(where, ds[m].Name)
						}
						es = append(es, elected{r, s.in.Name, where})
					}
				}
			}
			// Elections decided by history have findings of their own.
			differ := false
			for _, e := range es {
				if len(e.where) != 1 {
					differ = false
					break
				}
				differ = differ || e.where[0] != es[0].where[0]
			}
			if !differ {
				continue
			}
			var parts, key []string
			for _, e := range es {
				parts = append(parts, fmt.Sprintf("%s (%s) elects %s", e.r.name, e.inst, strings.Join(e.where, " or ")))
				key = append(key, e.r.name)
			}
			if seen[strings.Join(key, "|")] {
				continue
			}
			seen[strings.Join(key, "|")] = true
			out = append(out, Finding{
				Severity: Warning, Kind: KindSyncGroup, Router: "vrrp_sync_group " + g.Name,
				Message: fmt.Sprintf("%s: with every director healthy %s; keepalived keeps a group's members in one state, so one of these elections is overridden, and which depends on history: give the members the same order of priorities on every director",
					g.Pos, joinAnd(parts)),
			})
		}
	}
	return out
}

// routerName names a virtual router in findings.
func routerName(vrid uint8, v6 bool) string {
	if v6 {
		return fmt.Sprintf("VRID %d IPv6", vrid)
	}
	return fmt.Sprintf("VRID %d IPv4", vrid)
}

// joinAnd joins names as "a, b and c".
func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}
