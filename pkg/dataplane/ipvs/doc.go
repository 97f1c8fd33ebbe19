// Package ipvs is the IPVS implementation of xlb's data plane: it makes the
// kernel's own IP Virtual Server forward the services the director wants,
// for kernels or NICs where the XDP data plane cannot run, and for sites that
// want exactly what LVS does.
//
// [IPVS] implements [dataplane.Dataplane] over generic netlink. Apply turns
// the desired services into a diff against what IPVS holds: a new service
// or real is added, a changed scheduler, flag, persistence or weight is an
// edit in place (so the kernel keeps the service's and the real's
// connections and counters), and a real or service that is no longer wanted
// is deleted. Input is validated as a whole first, so a bad configuration
// changes nothing.
//
// # Whose services
//
// IPVS has no owner field, and an operator may have added services with
// ipvsadm by hand. xlb manages only the services it has been asked for:
// a service in Apply's input becomes xlb's (if it existed already, it is
// taken over and changed to the input; its dests not in the input are
// deleted), and only xlb's services are removed when they leave the input
// and by Close. Other services are left alone and do not appear in Stats or
// Conns. [Options.StateFile] keeps the list across restarts, so that a
// restarted xlb also removes services that left the configuration while it
// was down.
//
// # Library
//
// github.com/cloudflare/ipvs (v0.12) is the netlink client, rather than
// github.com/moby/ipvs (v1.1), because it covers everything the interface
// reports without workarounds:
//
//   - counters: cloudflare reads IPVS_*_ATTR_STATS64 (64-bit connection and
//     packet counts); moby reads only the 32-bit attribute, whose packet and
//     connection counts wrap at 2^32 on a busy director;
//   - active, inactive and persistent connection counts per dest (moby has
//     no persistent count);
//   - timeouts get and set (both), service flags with the kernel's
//     flags/mask pair (both);
//   - persistence netmask as a typed value for IPv4 masks and IPv6 prefix
//     lengths (moby passes a raw uint32 and leaves IPv6 to the caller);
//   - forwarding methods incl. tunnel type, port and checksum flags (GUE and
//     GRE); moby has no tunnel attributes;
//   - addresses as netip.Addr, IPv4 and IPv6 services and dests, and mixed
//     families (IPv6 dest of an IPv4 tunnel service);
//   - the module is small and pure Go (mdlayher/netlink, already a
//     dependency's dependency here), with a Client interface that tests can
//     fake; moby's pulls in logrus, runs modprobe from a package-level
//     sync.Once and logs through the global logger.
//
// moby/ipvs is the one Docker's libnetwork and kube-proxy's IPVS mode use;
// its v1.1 targets Go 1.17. cloudflare/ipvs v0.12 is recent (it needs Go
// 1.25).
//
// # What IPVS does differently from the XDP data plane
//
// Observed by this package's tests on Linux 5.10, 6.1 and 6.12:
//
//   - The kernel inserts a new dest at the head of its list, so the list is
//     newest first, not the order Apply was given (keepalived, which adds
//     reals in configuration order, gets the same reversal). rr and wrr start at the head, lc/wlc/sed/nq
//     break ties towards it and sh/dh fill their buckets from it: a fresh
//     rr service's first connection goes to the real added last. Stats lists
//     reals in this kernel order.
//   - Counters (connections, packets, bytes) are what the rate estimator
//     last folded in from the per-CPU counters, every 2 s: Stats lags
//     traffic by up to 2 s. ActiveConns and InactConns are live.
//   - The kernel resolves neighbours itself: every real is Resolved, and
//     Stats.Reasons is empty.
//   - A removed real's connections stay in the table, with their real and
//     their timer frozen, until they expire (up to the TCP timeout); their
//     packets are dropped (net.ipv4.vs.expire_nodest_conn=0).
//   - Conns, from /proc/net/ip_vs_conn, lists persistence templates: the
//     service's protocol, the client address masked and port 0, state NONE,
//     or ASSURED once a connection through it is established.
//   - With DR, replies that happen to cross the director (the director as
//     the reals' gateway) are counted as OutPackets (seen on 6.1).
//   - TUN forwarding and IPv6 services and reals are available here.
//
// Kernel: tested on Linux 5.10, 6.1 and 6.12 (make vmtest KERNEL=...);
// kernels that send only 32-bit counters are read through those. IPVS must be built
// (CONFIG_IP_VS) and its scheduler modules loadable; Open fails with
// [ErrNoIPVS] when there is no IPVS.
package ipvs
