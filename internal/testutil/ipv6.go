package testutil

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// IPv6 addresses AddIPv6 gives a DR topology: the LAN fd77::/64 beside
// 10.77.0.0/24, each namespace its IPv4 address's last byte.
var (
	ClientAddr6   = netip.MustParseAddr("fd77::1")
	DirectorAddr6 = netip.MustParseAddr("fd77::2")
)

// RealAddr6 is real i's (0-based) IPv6 address, fd77::11 for the first.
func RealAddr6(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd77::%x", 0x11+i))
}

// EnableIPv6 turns IPv6 on in ns (NewDR turns it off everywhere), for all
// interfaces, new ones and those named.
func EnableIPv6(ns *NS, ifs ...string) error {
	for _, k := range append([]string{"all", "default"}, ifs...) {
		if err := ns.Sysctl("net.ipv6.conf."+k+".disable_ipv6", "0"); err != nil {
			return err
		}
	}
	return nil
}

// AddIPv6 gives the topology IPv6 beside IPv4: the client, the director
// and the reals on fd77::/64 (addresses without duplicate address
// detection, usable at once), vip on each real's lo (as a DR real holds
// it) and routed from the client via the director. It returns the reals'
// addresses (RealAddr6).
func (t *DR) AddIPv6(vip netip.Addr) ([]netip.Addr, error) {
	add := func(ns *NS, a netip.Addr, ifs ...string) error {
		if err := EnableIPv6(ns, ifs...); err != nil {
			return err
		}
		return ns.IP("addr", "add", a.String()+"/64", "dev", "eth0", "nodad")
	}
	if err := EnableIPv6(t.Switch, "br0"); err != nil {
		return nil, err
	}
	if err := add(t.Client, ClientAddr6, "eth0"); err != nil {
		return nil, err
	}
	if err := t.Client.IP("-6", "route", "add", vip.String()+"/128", "via", DirectorAddr6.String()); err != nil {
		return nil, err
	}
	if err := add(t.Director, DirectorAddr6, "eth0"); err != nil {
		return nil, err
	}
	var reals []netip.Addr
	for i, ns := range t.Reals {
		a := RealAddr6(i)
		if err := add(ns, a, "eth0", "lo"); err != nil {
			return nil, err
		}
		if err := ns.IP("addr", "add", vip.String()+"/128", "dev", "lo", "nodad"); err != nil {
			return nil, err
		}
		reals = append(reals, a)
	}
	return reals, nil
}

// ServeHTTP6 serves what ServeHTTP serves over IPv6, on each real's
// [::]:port (StopHTTP and RestartHTTP stop and start it with the IPv4
// one).
func (t *DR) ServeHTTP6(port int) error { return t.serveHTTP(port, 1) }

// WarmNeighbours6 has the director connect to port of each IPv6 real once,
// so that its neighbour table knows their MACs.
func (t *DR) WarmNeighbours6(reals []netip.Addr, port uint16) error {
	for _, a := range reals {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := t.Director.DialContext(ctx, "tcp6", netip.AddrPortFrom(a, port).String())
		cancel()
		if err != nil {
			return fmt.Errorf("director to real %s over IPv6: %w", a, err)
		}
		c.Close()
	}
	return nil
}

// TunnelReal6 makes real i (0-based) an IPVS TUN real for the IPv6 vip,
// as one is set up for ip_vs_tunnel_xmit_v6: for "ipip" (IPv6 in IPv6)
// the VIP on the kernel's fallback ip6tnl0, which takes a tunnelled
// packet from any director; for "gue" the same behind a fou port opened
// for IPv6 (port); for "gre" on ip6gre0. The VIP leaves lo. IPv6 has no
// reverse-path filter to turn off. The kernel needs ip6_tunnel, fou6 and
// ip6_gre (RequireTunnel6Devices).
func (t *DR) TunnelReal6(i int, vip netip.Addr, typ string, port uint16) error {
	return t.tunnelReal(i, vip, true, typ, port)
}

// Tunnel6DevicesMissing says why this kernel cannot decapsulate as an
// IPVS TUN real of an IPv6 service does (no ip6_tunnel, fou6 or ip6_gre),
// or "" when it can.
func Tunnel6DevicesMissing() string { return modulesMissing("ip6_tunnel", "fou6", "ip6_gre") }

// RequireTunnel6Devices skips a test whose reals decapsulate IPv6 with the
// kernel's own ip6tnl, fou and ip6gre devices on a kernel without them,
// naming it: make test's VM stage runs such tests on Debian's kernel.
func RequireTunnel6Devices(t testing.TB) {
	t.Helper()
	if why := Tunnel6DevicesMissing(); why != "" {
		t.Skip(why + "; make vmtest KERNEL=6.1 runs this (and make test's VM stage)")
	}
}

// TunnelReal46 makes real i (0-based) an IPVS TUN real of the IPv4 VIP
// reached over IPv6 (IPv4 in IPv6, ip_vs_tunnel_xmit_v6 with an IPv4
// packet): the VIP on the kernel's fallback ip6tnl0, whose mode becomes
// "any" (by default it takes IPv6 in IPv6 alone), behind a fou port
// opened for IPv6 for "gue"; on ip6gre0 for "gre". The kernel needs
// ip6_tunnel, fou6 and ip6_gre (RequireTunnel64Devices).
func (t *DR) TunnelReal46(i int, typ string, port uint16) error {
	return t.tunnelReal(i, t.VIP, true, typ, port)
}

// TunnelReal64 makes real i (0-based) an IPVS TUN real of the IPv6 vip
// reached over IPv4 (IPv6 in IPv4, ip_vs_tunnel_xmit with an IPv6
// packet): the VIP on the kernel's fallback sit0, which takes IPv6 in
// IPv4 from any director, behind a fou port for "gue"; on gre0 for "gre".
// The kernel needs sit, fou and ip_gre (RequireTunnel64Devices).
func (t *DR) TunnelReal64(i int, vip netip.Addr, typ string, port uint16) error {
	return t.tunnelReal(i, vip, false, typ, port)
}

// tunnelReal moves vip from real i's lo to the kernel's fallback device
// that takes vip's family in a tunnel of typ over IPv6 (outer6) or IPv4:
// tunl0, ip6tnl0 (in mode any for IPv4 in IPv6) or sit0 for "ipip" and,
// behind a fou port (port) of the outer family, for "gue"; gre0 or
// ip6gre0 for "gre". An IPv4 VIP's device gets the reverse-path filter
// off (the decapsulated packet's source, the client, is not routed
// through it); an IPv6 VIP's, IPv6.
func (t *DR) tunnelReal(i int, vip netip.Addr, outer6 bool, typ string, port uint16) error {
	ns := t.Reals[i]
	plen := "/32"
	if vip.Is6() {
		plen = "/128"
	}
	if err := ns.IP("addr", "del", vip.String()+plen, "dev", "lo"); err != nil {
		return err
	}
	dev := map[[2]bool]string{{false, false}: "tunl0", {true, true}: "ip6tnl0", {false, true}: "ip6tnl0", {true, false}: "sit0"}[[2]bool{vip.Is6(), outer6}]
	switch typ {
	case "gue":
		fou := []string{"fou", "add", "port", fmt.Sprint(port), "gue"}
		if outer6 {
			fou = append(fou, "-6")
		}
		if err := ns.IP(fou...); err != nil {
			return err
		}
	case "gre":
		dev = map[bool]string{false: "gre0", true: "ip6gre0"}[outer6]
	}
	if dev == "ip6tnl0" && !vip.Is6() {
		if err := ns.IP("-6", "tunnel", "change", "ip6tnl0", "mode", "any"); err != nil {
			return err
		}
	}
	// Up first: the fallback gre0 gets its IPv6 side only then.
	if err := ns.IP("link", "set", dev, "up"); err != nil {
		return err
	}
	if vip.Is6() {
		if err := ns.Sysctl("net.ipv6.conf."+dev+".disable_ipv6", "0"); err != nil {
			return err
		}
		return ns.IP("addr", "add", vip.String()+plen, "dev", dev, "nodad")
	}
	if err := ns.IP("addr", "add", vip.String()+plen, "dev", dev); err != nil {
		return err
	}
	for _, k := range []string{"all", "default", "eth0", dev} {
		if err := ns.Sysctl("net.ipv4.conf."+k+".rp_filter", "0"); err != nil {
			return err
		}
	}
	return nil
}

// RequireTunnel64Devices skips a test whose reals decapsulate across
// families with the kernel's own devices (sit, ip6tnl, fou, gre, ip6gre)
// on a kernel without them, naming it.
func RequireTunnel64Devices(t testing.TB) {
	t.Helper()
	if why := modulesMissing("sit", "ipip", "fou", "ip_gre", "ip6_tunnel", "fou6", "ip6_gre"); why != "" {
		t.Skip(why + "; make vmtest KERNEL=6.1 runs this (and make test's VM stage)")
	}
}
