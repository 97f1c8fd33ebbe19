// Package vrrpd is the VRRP side of a director, as keepalived's VRRP
// process is: it runs every vrrp_instance of a keepalived.conf with
// pkg/vrrp (the protocol), adds and removes their VIPs, runs the trackers
// (vrrp_script, track_interface, track_file) and the vrrp_sync_group
// coupling, runs notify scripts, sends the smtp_alert mails of instances
// and sync groups (Options.Alert), and keeps instances running across a
// reload that leaves them alone.
//
// It is a VIP owner: it decides which of the VIPs its instances name this
// director serves (those it is MASTER for) and says so through
// Options.OnActive, fast and in order around the address changes. It knows
// nothing of services or data planes; pkg/daemon joins it to the director.
package vrrpd
