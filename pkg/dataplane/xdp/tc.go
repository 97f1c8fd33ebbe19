package xdp

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The TC half of the data plane: xlb_tc_neigh at TC ingress of every
// interface xlb_xdp runs on. XDP cannot wait for ARP: a NAT reply whose
// next hop (the client, or the router towards it) has no neighbour entry
// yet goes up with metadata, and xlb_tc_neigh hands it to the kernel's
// neighbour resolution (bpf_redirect_neigh), which queues it until ARP
// answers. The kernel's forwarding would drop it: its source, the VIP, is
// a local address. That is the first reply to a client the director never
// heard from at the Ethernet layer, and every reply a new VRRP master or a
// sync backup sends before it has met the client's router.
//
// TCX (kernel 6.6) gives a link, pinned beside the XDP link so that the
// next xlb takes it over; before 6.6, a cls_bpf filter on a clsact qdisc
// (netlink), which the kernel keeps until it is removed.

// tcFilterPrio is the cls_bpf priority of xlb's filter: far from the small
// numbers tc users pick; a restarted xlb replaces its own.
const tcFilterPrio = 0x786c // "xl"

// tcHook is one of xlb's TC programs attached to one interface.
type tcHook struct {
	how    string             // "tcx" or "clsact"
	link   link.Link          // TCX
	filter *netlink.BpfFilter // clsact
	// nl is a netlink socket in the namespace the filter was made in:
	// detach may run on a thread of another (a test's cleanup).
	nl *netlink.Handle
}

// tcSide is where a TC program runs: xlb_tc_neigh at ingress, xlb_tc_check
// (health checks through the data path) at egress.
type tcSide struct {
	name   string // "ingress", "egress"
	pin    string // the TCX link's pin name's prefix
	tcx    ebpf.AttachType
	parent uint32 // the clsact filter's parent
}

var (
	tcIngress = tcSide{"ingress", "tc_", ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS}
	tcEgress  = tcSide{"egress", "tc_egress_", ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS}
)

func tcPin(side tcSide, ifname string) string { return side.pin + ifname }

// attachTC attaches prog to one side of ifname: a pinned TCX link taken
// over or made, else a cls_bpf filter replacing any of ours.
func (x *Dataplane) attachTC(prog *ebpf.Program, side tcSide, ifname string, ifindex int) (*tcHook, error) {
	pin := filepath.Join(x.cfg.PinDir, tcPin(side, ifname))
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if err := l.Update(prog); err != nil {
			l.Close()
			return nil, fmt.Errorf("replace program on pinned tc link %s: %w", pin, err)
		}
		return &tcHook{how: "tcx", link: l}, nil
	}
	l, tcxErr := link.AttachTCX(link.TCXOptions{Program: prog, Interface: ifindex, Attach: side.tcx})
	if tcxErr == nil {
		if err := l.Pin(pin); err != nil {
			l.Close()
			return nil, fmt.Errorf("pin tc link %s: %w", pin, err)
		}
		return &tcHook{how: "tcx", link: l}, nil
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("tcx: %v; clsact qdisc: %w", tcxErr, err)
	}
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    side.parent,
			Handle:    1,
			Protocol:  unix.ETH_P_ALL,
			Priority:  tcFilterPrio,
		},
		Fd:           prog.FD(),
		Name:         info.Name,
		DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return nil, fmt.Errorf("tcx: %v; cls_bpf %s filter: %w", tcxErr, side.name, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket for the cls_bpf filter: %w", err)
	}
	return &tcHook{how: "clsact", filter: f, nl: nl}, nil
}

// detach removes the hook (remove) or lets go of it and leaves it running
// for the next xlb.
func (h *tcHook) detach(remove bool) error {
	switch {
	case h.link != nil:
		var err error
		if remove {
			err = h.link.Unpin()
		}
		return errors.Join(err, h.link.Close())
	case h.filter != nil:
		defer h.nl.Close()
		if !remove {
			return nil
		}
		if err := h.nl.FilterDel(h.filter); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}
