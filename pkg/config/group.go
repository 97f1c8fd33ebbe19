package config

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
)

// maxGroupServices bounds the services the virtual_server_group blocks of
// one configuration expand to (keepalived makes one IPVS service per
// address of a range): a /8 is refused instead of allocating millions.
const maxGroupServices = 1 << 16

// vsGroup is a virtual_server_group block as read: its entries, in order.
type vsGroup struct {
	name    string
	pos     Pos
	entries []ServiceEntry
	used    bool
}

// virtualServerGroup reads "virtual_server_group NAME { entries }" as
// keepalived 2.2.7 does (check_data.c alloc_vsg_entry): each line is
// "ADDR [PORT]", "ADDR-LAST [PORT]" (the last byte of an IPv4 address, the
// last 16-bit group of an IPv6 one, in hex), "ADDR-ADDR [PORT]",
// "ADDR/LEN [PORT]", or "fwmark N [inet|inet6]". A bad entry is reported
// and skipped, as keepalived skips it; a group left empty is removed.
func (ps *parser) virtualServerGroup(b *node) {
	name, ok := ps.groupName(b, func(n string) (Pos, bool) {
		prev, dup := ps.groups[n]
		if !dup {
			return Pos{}, false
		}
		return prev.pos, true
	})
	if !ok {
		return
	}
	g := &vsGroup{name: name, pos: b.pos}
	if ps.groups == nil {
		ps.groups = map[string]*vsGroup{}
	}
	skip := func(n *node, word, format string, args ...any) {
		ps.p.warn(Warning{File: n.pos.File, Line: n.pos.Line, Word: word, Msg: "(" + g.name + ") " + fmt.Sprintf(format, args...),
			Then: "skipped, as keepalived skips it"})
	}
	for _, n := range b.children {
		if !ps.valueLine(n) {
			continue
		}
		words := n.words
		if words[0] == "fwmark" {
			if len(words) < 2 {
				skip(n, words[0], "fwmark needs a number:")
				continue
			}
			v, err := strconv.ParseUint(words[1], 10, 32)
			if err != nil || !isDigits(words[1]) {
				skip(n, words[1], "fwmark must be in [0, 4294967295], got")
				continue
			}
			e := ServiceEntry{FWMark: uint32(v)}
			if len(words) > 2 {
				switch words[2] {
				case "inet":
					e.Family = 4
				case "inet6":
					e.Family = 6
				default:
					skip(n, words[2], "fwmark %d family unknown:", v)
					continue
				}
			}
			g.entries = append(g.entries, e)
			continue
		}
		port := uint16(0)
		if len(words) >= 2 {
			p, err := strconv.ParseUint(words[1], 10, 16)
			if err != nil || !isDigits(words[1]) {
				skip(n, words[1], "port must be in [0, 65535], got")
				continue
			}
			port = uint16(p)
		}
		if len(words) > 2 {
			ps.p.warnf(n.pos, words[2], "extra words after a virtual_server_group entry ignored, from")
		}
		first, last, err := parseRange(words[0])
		if err != "" {
			skip(n, words[0], "%s:", err)
			continue
		}
		count := rangeSize(first, last)
		if count > maxGroupServices || ps.groupServices+int(count) > maxGroupServices {
			ps.p.errorf(n.pos, words[0], "virtual_server_group ranges expand to more than %d services (keepalived makes one IPVS service per address):", maxGroupServices)
			continue
		}
		for a := first; ; a = a.Next() {
			g.entries = append(g.entries, ServiceEntry{Addr: a, Port: port})
			ps.groupServices++
			if a == last {
				break
			}
		}
	}
	if len(g.entries) == 0 {
		ps.p.warnf(b.pos, g.name, "virtual server group has no entries; removing")
		return
	}
	ps.groups[g.name] = g
}

// groupName is the name of a named group block (virtual_server_group,
// local_address_group), reported and false when the block has none or
// defined says one of that name came before (where).
func (ps *parser) groupName(b *node, defined func(name string) (Pos, bool)) (string, bool) {
	if !ps.needBlock(b) {
		return "", false
	}
	if len(b.args) == 0 {
		ps.p.errorf(b.pos, b.kw, "missing name after")
		return "", false
	}
	name := b.args[0]
	if at, dup := defined(name); dup {
		ps.p.warnf(b.pos, name, "%s already defined at %s; ignoring this one:", b.kw, at)
		return "", false
	}
	return name, true
}

// parseRange reads one address, or a range of them, as keepalived does.
func parseRange(s string) (first, last netip.Addr, problem string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Bits() == 0 {
			return first, last, "invalid netmask"
		}
		if p.Masked() != p {
			return first, last, "address mask bits not empty"
		}
		return p.Addr(), lastOf(p), ""
	}
	i := strings.IndexByte(s, '-')
	if i < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return first, last, "invalid virtual server group IP address"
		}
		return a, a, ""
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return first, last, "invalid virtual server group IP address"
	}
	end := s[i+1:]
	if (a.Is4() && strings.Contains(end, ".")) || (a.Is6() && strings.Contains(end, ":")) {
		b, err := netip.ParseAddr(end)
		if err != nil {
			return first, last, "invalid range end"
		}
		if b.Is4() != a.Is4() {
			return first, last, "range address families do not match"
		}
		if b.Less(a) {
			return first, last, "address range end is less than address range start"
		}
		return a, b, ""
	}
	// The last byte (IPv4, decimal) or 16-bit group (IPv6, hex).
	base, bits := 10, 8
	if a.Is6() {
		base, bits = 16, 16
	}
	v, err := strconv.ParseUint(end, base, bits)
	if err != nil {
		return first, last, "invalid range end"
	}
	raw := a.AsSlice()
	start := uint64(raw[len(raw)-1])
	if a.Is6() {
		start = uint64(raw[14])<<8 | uint64(raw[15])
		raw[14], raw[15] = byte(v>>8), byte(v)
	} else {
		raw[3] = byte(v)
	}
	if start >= v {
		return first, last, "address range end is not greater than address range start"
	}
	b, _ := netip.AddrFromSlice(raw)
	return a, b, ""
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	raw := p.Addr().AsSlice()
	for i := p.Bits(); i < len(raw)*8; i++ {
		raw[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(raw)
	return a
}

// rangeSize is how many addresses first..last holds, capped past
// maxGroupServices.
func rangeSize(first, last netip.Addr) uint64 {
	d := new(big.Int).Sub(new(big.Int).SetBytes(last.AsSlice()), new(big.Int).SetBytes(first.AsSlice()))
	d.Add(d, big.NewInt(1))
	if !d.IsUint64() || d.Uint64() > maxGroupServices {
		return maxGroupServices + 1
	}
	return d.Uint64()
}

// resolveEntries gives a group's or a fwmark's virtual server its services
// and address family (keepalived's ipwrapper.c link_vsg_to_vs and
// vs_end_handler): a group that is not defined, or mixes families, loses
// its virtual server with a warning, as keepalived drops it. It reports
// whether the virtual server stays.
func (ps *parser) resolveEntries(d *vsDraft) bool {
	vs := &d.vs
	warn := func(format string, args ...any) {
		ps.p.warn(Warning{File: vs.Pos.File, Line: vs.Pos.Line, Word: vs.Name(), Msg: fmt.Sprintf(format, args...),
			Then: "ignoring the virtual server, as keepalived does"})
	}
	// The family the reals say, for a fwmark (keepalived: the reals').
	realFamily := 0
	for _, rs := range d.rs {
		if realFamily == 0 {
			realFamily = familyOf(rs.Addr)
		}
	}
	switch {
	case vs.Group != "":
		g := ps.groups[vs.Group]
		if g == nil {
			warn("virtual server group %s specified but not configured:", vs.Group)
			return false
		}
		fams := map[int]bool{}
		for _, e := range g.entries {
			switch {
			case e.FWMark == 0:
				fams[familyOf(e.Addr)] = true
			case e.Family != 0:
				fams[e.Family] = true
			}
		}
		if len(fams) > 1 {
			warn("virtual server group %s has IPv4 and IPv6 entries; xlb serves a group of one family:", vs.Group)
			return false
		}
		fam := realFamily
		for f := range fams {
			fam = f
		}
		if fam == 0 {
			fam = 4
		}
		vs.Entries = nil
		for _, e := range g.entries {
			if e.FWMark != 0 {
				e.Family = fam
				e.Addr = unspecified(fam)
			} else if !vs.Addr.IsValid() {
				vs.Addr, vs.Port = e.Addr, e.Port
			}
			vs.Entries = append(vs.Entries, e)
		}
		if !vs.Addr.IsValid() {
			vs.Addr = unspecified(fam)
		}
		g.used = true
	case vs.FWMark != 0:
		fam := realFamily
		if fam == 0 {
			fam = 4
		}
		vs.Addr = unspecified(fam)
	}
	return true
}

func unspecified(family int) netip.Addr {
	if family == 6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}
