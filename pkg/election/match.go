package election

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
)

// inst is one vrrp_instance of one director.
type inst struct {
	d  int // index of the director
	in *config.VRRPInstance
}

type routerKey struct {
	vrid uint8
	v6   bool
}

// matched is one virtual router: at most one instance per director.
type matched struct {
	key   routerKey
	insts []inst
}

// vips is an instance's advertised addresses (virtual_ipaddress), sorted.
func vips(in *config.VRRPInstance) []netip.Addr {
	out := make([]netip.Addr, 0, len(in.VirtualIPs))
	for _, v := range in.VirtualIPs {
		out = append(out, v.Prefix.Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func vipString(in *config.VRRPInstance) string {
	v := vips(in)
	if len(v) == 0 {
		return "none"
	}
	s := make([]string, len(v))
	for i, a := range v {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// match groups the instances of all directors into virtual routers. The
// interface is the director's own business (eth0 here, bond0 there): an
// instance joins the router of the same VRID and family that has no
// instance of its director yet, preferring one with the same VIPs, then
// one sharing a VIP, then one on an interface of the same name. A director
// with one instance of that VRID and family joins the first router even
// when its VIPs differ (that mismatch is a finding); with several, an
// instance that matches nothing starts a router of its own.
func match(ds []Director) []matched {
	byKey := map[routerKey][]inst{}
	var keys []routerKey
	for d, dir := range ds {
		for i := range dir.Config.Instances {
			in := &dir.Config.Instances[i]
			k := routerKey{in.VirtualRouterID, in.IsIPv6()}
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], inst{d, in})
		}
	}
	slices.SortFunc(keys, func(a, b routerKey) int {
		if c := cmp.Compare(a.vrid, b.vrid); c != 0 {
			return c
		}
		if a.v6 == b.v6 {
			return 0
		}
		if a.v6 {
			return 1
		}
		return -1
	})
	var out []matched
	for _, k := range keys {
		insts := byKey[k]
		perDir := map[int]int{}
		for _, x := range insts {
			perDir[x.d]++
		}
		var groups []*matched
		for _, x := range insts {
			best, bestScore := -1, -1
			for gi, g := range groups {
				if slices.ContainsFunc(g.insts, func(y inst) bool { return y.d == x.d }) {
					continue
				}
				if s := matchScore(g.insts, x); s > bestScore {
					best, bestScore = gi, s
				}
			}
			if best < 0 || bestScore == 0 && perDir[x.d] > 1 {
				groups = append(groups, &matched{key: k, insts: []inst{x}})
				continue
			}
			groups[best].insts = append(groups[best].insts, x)
		}
		for _, g := range groups {
			out = append(out, *g)
		}
	}
	return out
}

// matchScore: 3 same VIPs, 2 a VIP in common, 1 an interface of the same
// name, 0 nothing.
func matchScore(g []inst, x inst) int {
	xv := vips(x.in)
	best := 0
	for _, y := range g {
		yv := vips(y.in)
		switch {
		case slices.Equal(xv, yv):
			best = max(best, 3)
		case slices.ContainsFunc(xv, func(a netip.Addr) bool { return slices.Contains(yv, a) }):
			best = max(best, 2)
		case x.in.Interface != "" && x.in.Interface == y.in.Interface:
			best = max(best, 1)
		}
	}
	return best
}

// collisions are virtual routers of the same VRID and family with
// instances on interfaces of the same name (in any files): on one link
// their adverts meet, each drops the other's (another VIP set), and each
// router's MASTER stays MASTER beside the other's. Unicast instances are
// kept apart by their peers.
func collisions(ds []Director, routers []matched) []Finding {
	var out []Finding
	for i := range routers {
		for j := i + 1; j < len(routers); j++ {
			a, b := routers[i], routers[j]
			if a.key != b.key {
				continue
			}
			found := false
			for _, x := range a.insts {
				for _, y := range b.insts {
					if found || x.in.Interface == "" || x.in.Interface != y.in.Interface ||
						len(x.in.UnicastPeers) > 0 || len(y.in.UnicastPeers) > 0 {
						continue
					}
					found = true
					out = append(out, Finding{
						Severity: Warning, Kind: KindCollision, Router: routerName(a.key.vrid, a.key.v6),
						Message: fmt.Sprintf("%s %s (VIPs %s) and %s %s (VIPs %s) are different virtual routers with the same VRID on interface %s: "+
							"on one link each drops the other's adverts (\"ip address associated with VRID not present\") and both routers' MASTERs claim the VRID; give one another virtual_router_id",
							x.in.Pos, x.in.Name, vipString(x.in), y.in.Pos, y.in.Name, vipString(y.in), x.in.Interface),
					})
				}
			}
		}
	}
	return out
}
