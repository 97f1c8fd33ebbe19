// Package dataplane is what the rest of xlb knows of a data plane: the
// Dataplane interface (Apply the wanted services, SetStandby the VIPs not
// served now, read Stats and Conns, set Timeouts, Close), the types it
// speaks (Service, Real, ServiceKey, Stats, Conn), Caps (what an
// implementation can forward, with the one set of rules, CheckService and
// CheckReal, that its Apply and the director's file:line validation share)
// and Choose, the one policy for `--dataplane auto`: a pinned XDP data plane
// is taken over, else native XDP, generic XDP, IPVS, from the evidence the
// caller gathers (xlb run on its interfaces, xlb probe on a test veth).
//
// The implementations are sub-packages: xdp (XDP programs and BPF maps) and
// ipvs (the kernel's IPVS over netlink). Only they load BPF or touch the
// kernel's load-balancing state; this package does neither.
package dataplane
