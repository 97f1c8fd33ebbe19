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
// Sockets, gratuitous ARP/NA and the daemon loop live elsewhere. No kernel
// feature is needed by this package.
package vrrp
