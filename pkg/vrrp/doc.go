// Package vrrp speaks VRRP the way keepalived does, so that an xlb node can
// replace one member of a keepalived pair without the other noticing.
//
// The package has no I/O and no clock of its own:
//
//   - advert.go: the advertisement wire format, VRRPv2 (RFC 3768, with the
//     RFC 2338 simple password) and VRRPv3 (RFC 5798, RFC 9568) over IPv4 and
//     IPv6, as MarshalBinary/UnmarshalBinary plus the checksum with and
//     without the IP pseudo-header.
//   - validate.go: the checks keepalived's vrrp_check_packet applies to a
//     received advert before the state machine sees it.
//   - timers.go: Skew_Time and Master_Down_Interval, in whole microseconds
//     exactly as keepalived rounds them.
//   - machine.go: the RFC 5798 §6.4 state machine with keepalived's
//     deviations, stepped by events that carry the current time, returning
//     the actions (send an advert, add VIPs, send gratuitous ARPs, notify)
//     for the caller to carry out.
//   - track.go: effective priority from tracked scripts and interfaces.
//
// The I/O around the state machine, IPv4 and IPv6 (one family per instance,
// IPv6 as VRRPv3 only, as keepalived runs them):
//
//   - conn.go, conn6.go: Conn, VRRP over a raw IP socket (protocol 112)
//     bound to one interface, multicast to 224.0.0.18 / ff02::12 or unicast
//     to peers, TTL/hop limit 255, from the primary IPv4 address or the IPv6
//     link-local address, returning each advert with the PacketInfo Validate
//     needs (for IPv6 from IPV6_PKTINFO and IPV6_HOPLIMIT).
//   - garp.go: gratuitous ARP for IPv4 VIPs through an AF_PACKET socket.
//   - ndisc.go: unsolicited neighbour advertisements for IPv6 VIPs, the
//     same way.
//   - runner.go: Runner, the loop that feeds a Machine from a PacketConn and
//     a clock and carries out its actions (adverts, GARPs and NAs, VIPs via
//     netlink, notifications).
//
// Everything but conn.go, conn6.go, garp.go, ndisc.go and NetlinkVIPs is
// pure; those need CAP_NET_RAW and CAP_NET_ADMIN. The root-only interop test
// runs the Runner against a real keepalived across two network namespaces,
// over IPv4 and IPv6.
package vrrp
