package election

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xlbproject/xlb/pkg/config"
)

// drops lists why instance a (of configuration ca) drops the adverts of
// instance b (of cb), or never receives them; nil: it takes them. The
// checks are those of keepalived 2.2.7's vrrp_check_packet that two
// configurations can fail, in its order, and what sending needs:
//
//   - a unicast instance's adverts go only to its unicast_peer addresses;
//     multicast ones to its vrrp_mcast_group4/6;
//   - version; for VRRPv2 the auth type (an AH header or not), the
//     password, and advert_int ("advertisement interval mismatch", dropped
//     "to prevent concurrent VRID running => multiple master in 1 VRID");
//     VRRPv3 has no authentication, and its BACKUP adopts the MASTER's
//     interval;
//   - the number of addresses, multicast versus unicast, then every VIP of
//     a's in the advert (a MASTER always checks them, and a BACKUP checks
//     the first advert of a new MASTER even with skip_check_adv_addr);
//   - with check_unicast_src, the source must be a unicast_peer.
//
// An instance without unicast_src_ip sends from its interface's primary
// address, which the configuration does not tell: the peer-list checks
// pass then.
func drops(a, b *config.VRRPInstance, ca, cb *config.Config) []string {
	var why []string
	ua, ub := len(a.UnicastPeers) > 0, len(b.UnicastPeers) > 0
	switch {
	case ua && !ub:
		why = append(why, "it expects unicast adverts (unicast_peer) but the other multicasts")
	case !ua && ub:
		why = append(why, "it expects multicast adverts but the other sends unicast (unicast_peer)")
	case !ua && !ub:
		ga, gb := ca.Global.VRRPMcastGroup4, cb.Global.VRRPMcastGroup4
		if a.IsIPv6() {
			ga, gb = ca.Global.VRRPMcastGroup6, cb.Global.VRRPMcastGroup6
		}
		if ga != gb {
			why = append(why, fmt.Sprintf("it listens on multicast group %s but the other sends to %s", ga, gb))
		}
	default:
		if a.UnicastSrcIP.IsValid() && !hasPeer(b.UnicastPeers, a.UnicastSrcIP) {
			why = append(why, fmt.Sprintf("the other's unicast_peer does not list its unicast_src_ip %s, so the adverts never reach it", a.UnicastSrcIP))
		}
		if a.CheckUnicastSrc && b.UnicastSrcIP.IsValid() && !hasPeer(a.UnicastPeers, b.UnicastSrcIP) {
			why = append(why, fmt.Sprintf("it has check_unicast_src and its unicast_peer does not list the other's unicast_src_ip %s", b.UnicastSrcIP))
		}
	}
	if a.Version != b.Version {
		why = append(why, fmt.Sprintf("VRRP version %d, the other's %d", a.Version, b.Version))
	} else if a.Version == 2 {
		switch {
		case a.AuthType != b.AuthType:
			why = append(why, fmt.Sprintf("auth_type %s, the other's %s", a.AuthType, b.AuthType))
		case a.AuthType != config.AuthNone && a.AuthPass != b.AuthPass:
			why = append(why, "auth_pass differs")
		}
		if a.AdvertInterval != b.AdvertInterval {
			why = append(why, fmt.Sprintf("advert_int %s, the other's %s (VRRPv2 drops an advert with another interval)", a.AdvertInterval, b.AdvertInterval))
		}
	}
	va, vb := vips(a), vips(b)
	if len(a.VirtualIPs) != len(b.VirtualIPs) || !slices.Equal(va, vb) {
		why = append(why, fmt.Sprintf("VIPs %s, the other's %s", vipString(a), vipString(b)))
	}
	return why
}

func hasPeer(peers []config.UnicastPeer, a netip.Addr) bool {
	return slices.ContainsFunc(peers, func(p config.UnicastPeer) bool { return p.Addr == a })
}
