package probe

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// XDPNative attaches an XDP_PASS program to the interface in driver mode and
// detaches it.
func XDPNative(ifindex int) error {
	if err := checkDeny(FeatureXDPNative); err != nil {
		return err
	}
	return xdpNative(ifindex)
}

// XDPGeneric attaches an XDP_PASS program to the interface in generic (skb)
// mode and detaches it.
func XDPGeneric(ifindex int) error {
	if err := checkDeny(FeatureXDPGeneric); err != nil {
		return err
	}
	return xdpGeneric(ifindex)
}

// TCX attaches a pass-through program to the interface's TCX ingress hook
// (kernel >= 6.6) and detaches it.
func TCX(ifindex int) error {
	if err := checkDeny(FeatureTCX); err != nil {
		return err
	}
	return tcx(ifindex)
}

// Clsact adds a clsact qdisc (unless the interface has one) and a
// direct-action cls_bpf ingress filter over netlink, then removes what it
// added.
func Clsact(ifindex int) error {
	if err := checkDeny(FeatureClsact); err != nil {
		return err
	}
	return clsact(ifindex)
}

func xdpNative(ifindex int) error  { return xdp(ifindex, link.XDPDriverMode, "native") }
func xdpGeneric(ifindex int) error { return xdp(ifindex, link.XDPGenericMode, "generic") }

func xdp(ifindex int, mode link.XDPAttachFlags, name string) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return skipped(fmt.Errorf("look up ifindex %d: %w", ifindex, err))
	}
	// The kernel allows one XDP program per interface (and not native and
	// generic at once): probing would only report the existing one.
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return skipped(fmt.Errorf("%s already runs XDP program %d", l.Attrs().Name, x.ProgId))
	}
	prog, err := program(ebpf.XDP, 2) // XDP_PASS
	if err != nil {
		return err
	}
	defer prog.Close()
	xl, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: mode})
	if err != nil {
		return fmt.Errorf("attach %s XDP to %s (%s): %w", name, l.Attrs().Name, l.Type(), err)
	}
	return xl.Close()
}

func tcx(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return skipped(fmt.Errorf("look up ifindex %d: %w", ifindex, err))
	}
	prog, err := program(ebpf.SchedCLS, -1) // TCX_NEXT: the packet goes on untouched
	if err != nil {
		return err
	}
	defer prog.Close()
	tl, err := link.AttachTCX(link.TCXOptions{Program: prog, Interface: ifindex, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("attach TCX ingress to %s (%s): %w", l.Attrs().Name, l.Type(), err)
	}
	return tl.Close()
}

// probeFilterPrio is the cls_bpf priority the probe uses: far from the small
// numbers tc users pick, so it neither collides with nor runs before them.
const probeFilterPrio = 0xcafe

func clsact(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return skipped(fmt.Errorf("look up ifindex %d: %w", ifindex, err))
	}
	name := l.Attrs().Name
	prog, err := program(ebpf.SchedCLS, -1) // TC_ACT_UNSPEC: next filter, as if not there
	if err != nil {
		return err
	}
	defer prog.Close()

	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	ours := true
	if err := netlink.QdiscAdd(qdisc); errors.Is(err, unix.EEXIST) {
		ours = false // someone else's clsact: leave it, remove only our filter
	} else if err != nil {
		return fmt.Errorf("add clsact qdisc to %s: %w", name, err)
	}
	if ours {
		defer netlink.QdiscDel(qdisc)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Handle:    1,
			Protocol:  unix.ETH_P_ALL,
			Priority:  probeFilterPrio,
		},
		Fd:           prog.FD(),
		Name:         "xlb_probe",
		DirectAction: true,
	}
	if err := netlink.FilterAdd(filter); err != nil {
		return fmt.Errorf("add cls_bpf ingress filter to %s: %w", name, err)
	}
	if err := netlink.FilterDel(filter); err != nil && !ours {
		return fmt.Errorf("remove cls_bpf probe filter from %s: %w", name, err)
	}
	return nil
}

var memlock = sync.OnceValue(rlimit.RemoveMemlock)

// program loads a two-instruction program that returns ret.
func program(typ ebpf.ProgramType, ret int32) (*ebpf.Program, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, whose
	// default is too small for even one program there. Best effort: newer
	// kernels need no raise, and a load that fails says why.
	merr := memlock()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "xlb_probe",
		Type:         typ,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()},
		License:      "GPL",
	})
	var verr *ebpf.VerifierError
	switch {
	case err == nil:
		return prog, nil
	case errors.As(err, &verr):
		return nil, fmt.Errorf("load %s program: %+v", typ, verr)
	case merr != nil:
		return nil, fmt.Errorf("load %s program (after raising RLIMIT_MEMLOCK failed: %v): %w", typ, merr, err)
	default:
		return nil, fmt.Errorf("load %s program: %w", typ, err)
	}
}

// onInterface runs fn with the ifindex of the named interface in the
// caller's network namespace or, when name is empty, of one end of a veth
// pair in a new namespace entered on a locked OS thread of its own. The
// thread goes back to its namespace afterwards; should that fail it stays
// locked, so Go discards it with the goroutine instead of reusing it.
func onInterface(name string, fn func(ifindex int)) error {
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("look up interface %s: %w", name, err)
		}
		fn(l.Attrs().Index)
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		err = inTempNetns(fn)
		// Unlocking only after a successful return: a locked goroutine
		// ending on the main thread wedges it instead of ending it, and
		// would keep the namespace alive.
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		} else if err == nil {
			err = fmt.Errorf("return to the original network namespace: %w", serr)
		}
		errc <- err
	}()
	return <-errc
}

// inTempNetns moves the calling (locked) thread into a new namespace with
// the veth pair xlbprobe0-xlbprobe1 and runs fn on xlbprobe0. The pair is
// deleted afterwards; the namespace goes when the thread leaves it.
func inTempNetns(fn func(ifindex int)) error {
	ns, err := netns.New()
	if err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xlbprobe0"}, PeerName: "xlbprobe1"}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth pair in a new network namespace: %w", err)
	}
	defer netlink.LinkDel(veth)
	for _, n := range []string{"xlbprobe0", "xlbprobe1"} {
		if err := netlink.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			return fmt.Errorf("set %s up: %w", n, err)
		}
	}
	l, err := netlink.LinkByName("xlbprobe0")
	if err != nil {
		return fmt.Errorf("look up xlbprobe0: %w", err)
	}
	fn(l.Attrs().Index)
	return nil
}
