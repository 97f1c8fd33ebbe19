// Package daemon is a running director, composed: Run opens the data plane
// (dataplane.Choose on what the kernel and the configuration say), loads
// the configuration into the director and the VIP owners, serves the
// control socket (xlb status, xlbadm) and Prometheus metrics, reloads on
// SIGHUP (validated first: an invalid file changes nothing) and stops when
// its context ends. cmd/xlb only turns flags into Options.
//
// VIP owners (VIPOwner) decide which VIPs this director serves now: VRRP
// (pkg/vrrpd) for the addresses its instances name; a BGP speaker or a
// connection-sync gate later. The daemon turns what they govern and what
// they hold active into the standby set the director passes to the data
// plane, before a configuration's services are applied (so a BACKUP never
// forwards for a moment) and at once on every role change (flags only).
// It is the one package that joins a VIP owner to the director.
package daemon
