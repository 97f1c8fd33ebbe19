package vrrpd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/config"
)

// VMACName is the interface use_vmac makes for in: its own name, else
// keepalived's vrrp.VRID.
func VMACName(in *config.VRRPInstance) string {
	if in.VMACInterface != "" {
		return in.VMACInterface
	}
	return fmt.Sprintf("vrrp.%d", in.VirtualRouterID)
}

// VMACAddr is the VRRP virtual router MAC of RFC 5798 (00:00:5e:00:01:VRID
// for IPv4) that a use_vmac interface carries.
func VMACAddr(vrid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// vmacSysctls are what keepalived 2.2.7 sets (vrrp_if_config.c): on the
// VMAC, accept_local so that another instance's adverts are heard,
// arp_ignore 1 so that it answers ARP for its own addresses only, rp_filter
// 0 so that it receives with no address of its own; on its parent,
// arp_ignore 1 and arp_filter 1 so that the parent does not answer for the
// VIPs the VMAC holds.
var vmacSysctls = []struct {
	parent bool
	key    string
	value  string
}{
	{false, "accept_local", "1"},
	{false, "arp_ignore", "1"},
	{false, "rp_filter", "0"},
	{true, "arp_ignore", "1"},
	{true, "arp_filter", "1"},
}

// ensureVMAC makes in's VMAC as keepalived makes it (vrrp_vmac.c): a
// macvlan in private mode on the instance's interface with the virtual
// router MAC, up, with keepalived's sysctls. One of that name that is a
// macvlan of another MAC, mode or parent is replaced; an interface of that
// name that is not a macvlan is an error.
func (v *Supervisor) ensureVMAC(in *config.VRRPInstance) (string, error) {
	h := v.netlink()
	name, mac := VMACName(in), VMACAddr(in.VirtualRouterID)
	parent, err := h.LinkByName(in.Interface)
	if err != nil {
		return "", fmt.Errorf("use_vmac: interface %s: %w", in.Interface, err)
	}
	if l, err := h.LinkByName(name); err == nil {
		mv, ok := l.(*netlink.Macvlan)
		if !ok {
			return "", fmt.Errorf("use_vmac: interface %s exists and is not a macvlan (%s)", name, l.Type())
		}
		if mv.Mode == netlink.MACVLAN_MODE_PRIVATE && bytes.Equal(l.Attrs().HardwareAddr, mac) && l.Attrs().ParentIndex == parent.Attrs().Index {
			return name, v.vmacUp(h, l, in.Interface)
		}
		v.log.Info("use_vmac: replacing a macvlan of another MAC, mode or parent", "instance", in.Name, "interface", name)
		if err := h.LinkDel(l); err != nil {
			return "", fmt.Errorf("use_vmac: remove %s: %w", name, err)
		}
	}
	mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index, HardwareAddr: mac},
		Mode: netlink.MACVLAN_MODE_PRIVATE}
	if err := h.LinkAdd(mv); err != nil {
		return "", fmt.Errorf("use_vmac: create macvlan %s on %s: %w", name, in.Interface, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return "", fmt.Errorf("use_vmac: %s: %w", name, err)
	}
	v.log.Info("use_vmac: interface made", "instance", in.Name, "interface", name, "mac", mac.String(), "parent", in.Interface)
	return name, v.vmacUp(h, l, in.Interface)
}

func (v *Supervisor) vmacUp(h *netlink.Handle, l netlink.Link, parent string) error {
	var errs []error
	for _, s := range vmacSysctls {
		dev := l.Attrs().Name
		if s.parent {
			dev = parent
		}
		p := filepath.Join("/proc/sys/net/ipv4/conf", dev, s.key)
		if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("use_vmac: %s=%s: %w", p, s.value, err))
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		errs = append(errs, fmt.Errorf("use_vmac: set %s up: %w", l.Attrs().Name, err))
	}
	return errors.Join(errs...)
}

// netlink is the supervisor's netlink handle: its own namespace's if it
// was given none (a zero Handle uses the package-level functions).
func (v *Supervisor) netlink() *netlink.Handle {
	if v.handle == nil {
		return &netlink.Handle{}
	}
	return v.handle
}

// removeVMAC deletes the VMAC of in, if it is there, as keepalived does
// when it stops.
func (v *Supervisor) removeVMAC(in *config.VRRPInstance) {
	h := v.netlink()
	if l, err := h.LinkByName(VMACName(in)); err == nil {
		if _, ok := l.(*netlink.Macvlan); ok {
			if err := h.LinkDel(l); err != nil {
				v.log.Warn("use_vmac: removing the interface", "interface", l.Attrs().Name, "error", err)
			}
		}
	}
}
