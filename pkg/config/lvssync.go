package config

import (
	"net/netip"
	"strings"
)

// ipvsIfnameMaxLen is IP_VS_IFNAME_MAXLEN (linux/ip_vs.h), the size of
// the kernel's sync daemon interface name, NUL included.
const ipvsIfnameMaxLen = 16

// lvsSyncDaemon reads global_defs' "lvs_sync_daemon <INTERFACE>
// [[inst] <VRRP_INSTANCE>] [id <SYNC_ID>] [maxlen <LEN>] [port <PORT>]
// [ttl <TTL>] [group <IP ADDR>]" as keepalived 2.2.7 reads it
// (global_parser.c lvs_syncd_handler): only the first lvs_sync_daemon
// counts; an interface name the kernel cannot hold drops the line; then
// each option is read in turn, a bad or missing value ignored (the
// default stays), a word that is no option ignored, except that the word
// after the interface may be the instance's name and the one after that
// its sync id (the old "lvs_sync_daemon IF VRRP_INSTANCE [SYNC_ID]").
// keepalived ends at "inst" without a name. The instance is looked up,
// and the sync id defaulted, once every instance is read
// (finishLVSSyncDaemon).
func (ps *parser) lvsSyncDaemon(n *node) {
	if !ps.leaf(n) {
		return
	}
	g := &ps.cfg.Global
	if g.LVSSyncDaemon != nil {
		ps.p.warnf(n.pos, n.kw, "lvs_sync_daemon already set at %s; ignoring this one:", g.LVSSyncDaemon.Pos)
		return
	}
	a := n.args
	if len(a) == 0 {
		ps.p.ignoref(n.pos, n.kw, "missing interface after")
		return
	}
	if len(a[0]) >= ipvsIfnameMaxLen {
		ps.p.ignoref(n.pos, a[0], "lvs_sync_daemon interface name longer than %d bytes (the kernel's limit):", ipvsIfnameMaxLen-1)
		return
	}
	sd := &LVSSyncDaemon{Interface: a[0], Pos: n.pos}
	g.LVSSyncDaemon = sd
	// value reads the value after option a[i]: false, with a warning,
	// when there is none.
	value := func(i int) bool {
		if i == len(a)-1 {
			ps.p.ignoref(n.pos, a[i], "lvs_sync_daemon: missing value after")
			return false
		}
		return true
	}
	for i := 1; i < len(a); i++ {
		switch a[i] {
		case "inst":
			switch {
			case sd.Instance != "":
				// keepalived does not look at the next word then.
				w := a[i]
				if i+1 < len(a) {
					w = a[i+1]
				}
				ps.p.ignoref(n.pos, w, "lvs_sync_daemon instance already given as %s; another:", sd.Instance)
			case i+1 == len(a):
				ps.p.errorf(n.pos, a[i], "lvs_sync_daemon: missing instance name after")
				return
			default:
				sd.Instance = a[i+1]
			}
			i++
		case "id":
			if !value(i) {
				continue
			}
			if v, ok := ps.uintArgNamed(n, i+1, 0, 255, "lvs_sync_daemon id"); ok {
				sd.SyncID, sd.SyncIDSet = uint8(v), true
			}
			i++
		case "maxlen":
			if !value(i) {
				continue
			}
			// 65535 less the IPv4 and UDP headers.
			if v, ok := ps.uintArgNamed(n, i+1, 1, 65535-20-8, "lvs_sync_daemon maxlen"); ok {
				sd.MaxLen = uint16(v)
			}
			i++
		case "port":
			if !value(i) {
				continue
			}
			if v, ok := ps.portArg(n, i+1, 1); ok {
				sd.Port = v
			}
			i++
		case "ttl":
			if !value(i) {
				continue
			}
			if v, ok := ps.uintArgNamed(n, i+1, 1, 255, "lvs_sync_daemon ttl"); ok {
				sd.TTL = uint8(v)
			}
			i++
		case "group":
			if !value(i) {
				continue
			}
			// keepalived clears the group before it finds the address
			// bad, so that a bad group undoes a good one before it.
			s := a[i+1]
			grp, ok := parseSyncGroup(s)
			switch {
			case !ok:
				ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: s, Msg: "lvs_sync_daemon group is not an IP address:",
					Then: "ignored (the kernel's default group is used), as keepalived does"})
				sd.Group = netip.Addr{}
			case !isMulticast(grp):
				ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: s, Msg: "lvs_sync_daemon group is not a multicast address:",
					Then: "ignored (the kernel's default group is used), as keepalived does"})
				sd.Group = netip.Addr{}
			default:
				sd.Group = grp
			}
			i++
		default:
			switch i {
			case 1:
				// "lvs_sync_daemon IF VRRP_INSTANCE": keepalived says
				// nothing about it.
				sd.Instance = a[i]
			case 2:
				if v, ok := ps.uintArgNamed(n, i, 0, 255, "lvs_sync_daemon id"); ok {
					ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: a[i], Msg: `lvs_sync_daemon: a sync id without "id" before it (deprecated):`,
						Then: "read as the sync id, as keepalived reads it"})
					sd.SyncID, sd.SyncIDSet = uint8(v), true
				}
			default:
				ps.p.ignoref(n.pos, a[i], "lvs_sync_daemon takes inst, id, maxlen, port, ttl or group, got")
			}
		}
	}
}

// parseSyncGroup reads lvs_sync_daemon's group as keepalived's
// inet_stosockaddr reads it: IPv6 if the word holds a ':', what follows a
// '-' (or else a '/') dropped, then inet_pton, which takes no zone.
func parseSyncGroup(s string) (netip.Addr, bool) {
	v6 := strings.Contains(s, ":")
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s = s[:i]
	} else if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is6() != v6 {
		return netip.Addr{}, false
	}
	return a, true
}

// isMulticast is keepalived's IN_MULTICAST or IN6_IS_ADDR_MULTICAST: an
// IPv4-mapped IPv6 address is not one, whatever it maps.
func isMulticast(a netip.Addr) bool {
	if a.Is6() {
		return a.As16()[0] == 0xff
	}
	return a.IsMulticast()
}

// finishLVSSyncDaemon settles lvs_sync_daemon once every instance is
// read, as keepalived 2.2.7 does. Its parent process reads global_defs
// before its vrrp process reads the instances, so lvs_sync_daemon wins
// over any lvs_sync_daemon_interface, wherever it is in the file, and the
// first of those wins over the others (vrrp_parser.c
// vrrp_lvs_syncd_handler: "lvs_sync_daemon_interface has already been
// specified as IF - ignoring"). Then vrrp.c's vrrp_complete_init looks up
// lvs_sync_daemon's instance ("Unable to find vrrp instance NAME for
// lvs_syncd - clearing lvs_syncd config": no sync daemon runs) and, if no
// sync id was given, takes the instance's virtual_router_id. An
// lvs_sync_daemon_interface leaves its sync id at 0: keepalived does not
// look its instance up by name, which is where the VRID is taken.
func (ps *parser) finishLVSSyncDaemon() {
	g := &ps.cfg.Global
	global := g.LVSSyncDaemon != nil
	for _, d := range ps.instances {
		if ps.cfg.Instance(d.v.Name) == nil {
			continue
		}
		for _, t := range d.syncdIfs {
			if g.LVSSyncDaemon != nil {
				ps.p.warnf(t.pos, "lvs_sync_daemon_interface", "(%s) lvs_sync_daemon already set at %s; ignoring this one:", d.v.Name, g.LVSSyncDaemon.Pos)
				continue
			}
			g.LVSSyncDaemon = &LVSSyncDaemon{Interface: t.name, Instance: d.v.Name, SyncIDSet: true, Pos: t.pos}
		}
	}
	sd := g.LVSSyncDaemon
	if !global || sd.Instance == "" {
		return
	}
	v := ps.cfg.Instance(sd.Instance)
	if v == nil {
		ps.p.warn(Warning{File: sd.Pos.File, Line: sd.Pos.Line, Word: sd.Instance, Msg: "lvs_sync_daemon: no vrrp_instance called",
			Then: "lvs_sync_daemon ignored: no sync daemon runs, as keepalived runs none"})
		g.LVSSyncDaemon = nil
		return
	}
	if !sd.SyncIDSet {
		sd.SyncID = v.VirtualRouterID
	}
}
