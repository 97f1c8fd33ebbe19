package lvs

import (
	"net/netip"
	"strconv"
)

// Netmask is IPVS's persistence netmask (ipvsadm -M, keepalived
// persistence_granularity): clients whose addresses agree under it share a
// persistence template. For an IPv4 service it is the netmask itself, as
// the kernel keeps it: it need not be contiguous (ipvsadm and keepalived
// take 255.0.255.0 as given). For an IPv6 service it is a prefix length.
// Zero means the full mask (255.255.255.255, or 128): one client each; so
// the IPv4 mask 0.0.0.0 (every client in one template) cannot be said, and
// xlb refuses it.
type Netmask uint32

// FullNetmask is the mask that keeps every client apart: what a service
// without -M has.
func FullNetmask(a netip.Addr) Netmask {
	if a.Is4() {
		return 0xffffffff
	}
	return 128
}

// Or is m, or the full mask for a service on a when m is zero.
func (m Netmask) Or(a netip.Addr) Netmask {
	if m == 0 {
		return FullNetmask(a)
	}
	return m
}

// Netmask4 is an IPv4 netmask from its dotted form's address.
func Netmask4(a netip.Addr) Netmask {
	b := a.As4()
	return Netmask(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}

// Addr4 is an IPv4 mask as an address (255.255.255.0).
func (m Netmask) Addr4() netip.Addr {
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// Format writes m as ipvsadm and keepalived.conf do for a service on a:
// a dotted netmask for IPv4, a prefix length for IPv6.
func (m Netmask) Format(a netip.Addr) string {
	m = m.Or(a)
	if a.Is4() {
		return m.Addr4().String()
	}
	return strconv.Itoa(int(m))
}
