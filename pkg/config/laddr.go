package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxLocalAddrs bounds what one local_address_group expands to: a range
// is at most one /24's last byte, as DPVS's keepalived reads it.
const maxLocalAddrs = 254

// laddrGroup is a local_address_group block as read.
type laddrGroup struct {
	name  string
	pos   Pos
	addrs []netip.Addr
}

// localAddressGroup reads "local_address_group NAME { entries }", the
// FULLNAT local addresses of the keepalived that ships with DPVS
// (check_data.c alloc_laddr_entry): each line is "ADDR [IFNAME]" or
// "ADDR-LAST [IFNAME]" (laddrRange). IFNAME
// is the DPVS device the address is configured on: xlb takes the
// address as one the director holds, and says so once. A bad entry is
// reported and skipped; a group left empty is reported and not defined.
func (ps *parser) localAddressGroup(b *node) {
	name, ok := ps.groupName(b, func(n string) (Pos, bool) {
		prev, dup := ps.laddrGroups[n]
		if !dup {
			return Pos{}, false
		}
		return prev.pos, true
	})
	if !ok {
		return
	}
	g := &laddrGroup{name: name, pos: b.pos}
	if ps.laddrGroups == nil {
		ps.laddrGroups = map[string]*laddrGroup{}
	}
	ifnameSaid := false
	for _, n := range b.children {
		if !ps.valueLine(n) {
			continue
		}
		words := n.words
		first, last, ok := laddrRange(words[0])
		if !ok {
			ps.p.warnf(n.pos, words[0], "(%s) not an address or ADDR-LAST range; skipped:", g.name)
			continue
		}
		if len(words) > 2 {
			ps.p.warnf(n.pos, words[2], "extra words after a local_address_group entry ignored, from")
		}
		if len(words) > 1 && !ifnameSaid {
			ps.p.warnf(n.pos, words[1], "(%s) a DPVS device name: xlb does not configure local addresses; each must be one the director holds (ip addr add), not used:", g.name)
			ifnameSaid = true
		}
		for a := first; ; a = a.Next() {
			if len(g.addrs) == maxLocalAddrs {
				ps.p.warnf(n.pos, words[0], "(%s) more than %d local addresses; the rest ignored, from", g.name, maxLocalAddrs)
				break
			}
			g.addrs = append(g.addrs, a)
			if a == last {
				break
			}
		}
	}
	if len(g.addrs) == 0 {
		ps.p.warnf(b.pos, g.name, "local_address_group has no addresses; not defined:")
		return
	}
	ps.laddrGroups[g.name] = g
}

// laddrRange reads ADDR or ADDR-LAST as DPVS's keepalived (inet_stor):
// for IPv4, LAST is the last byte, in decimal; for IPv6 the last 16-bit
// group, in hex (as keepalived reads an IPv6 range); above ADDR's.
func laddrRange(s string) (first, last netip.Addr, ok bool) {
	addr, end, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return first, last, false
	}
	if !isRange {
		return a, a, true
	}
	if a.Is4() {
		v, err := strconv.ParseUint(end, 10, 8)
		b := a.As4()
		if err != nil || !isDigits(end) || byte(v) <= b[3] || v > 254 {
			return first, last, false
		}
		b[3] = byte(v)
		return a, netip.AddrFrom4(b), true
	}
	v, err := strconv.ParseUint(end, 16, 16)
	b := a.As16()
	if err != nil || strings.ContainsAny(end, "+-xX") || uint16(v) <= uint16(b[14])<<8|uint16(b[15]) {
		return first, last, false
	}
	b[14], b[15] = byte(v>>8), byte(v)
	return a, netip.AddrFrom16(b), true
}

// resolveLocalAddrs gives vs the addresses of its laddr_group_name's
// group.
func (ps *parser) resolveLocalAddrs(d *vsDraft) {
	vs := &d.vs
	if !d.laddrGroup.set {
		return
	}
	name := d.laddrGroup.v
	g := ps.laddrGroups[name]
	if g == nil {
		ps.p.warnf(d.laddrGroupPos, name, "no local_address_group of this name; the virtual server has no local addresses:")
		return
	}
	vs.LocalAddrGroup, vs.LocalAddrs = name, g.addrs
}
