package dataplane

import "fmt"

// XDPMode is how an XDP program attaches: in the driver (native), in the
// generic (skb) path, or native with generic as the fallback (auto).
type XDPMode int

const (
	XDPAuto XDPMode = iota
	XDPNative
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return "auto"
}

// Evidence is what the data plane is chosen from: each error is nil when
// that thing works here, else says why not.
type Evidence struct {
	// Pinned: an earlier xlb left an XDP data plane pinned on these
	// interfaces; it is taken over as it is (an attach probe would take
	// the running program for a refusal).
	Pinned bool
	// Want is the XDP attach mode asked for (--xdp-mode).
	Want XDPMode
	// Native and Generic: attaching XDP in driver and in generic mode (on
	// every interface).
	Native, Generic error
	// Program: the kernel has what xlb's XDP program needs beyond
	// attaching (pkg/probe.XDPDataPlane: BPF atomics,
	// bpf_for_each_map_elem).
	Program error
	// Config: the configuration needs what only IPVS can do (validated
	// against both data planes' Caps: nil when XDP can serve it, or when
	// neither can and the error is the configuration's to report).
	Config error
	// IPVS: the kernel's IPVS is there.
	IPVS error
}

// Decision is the data plane `--dataplane auto` runs, and why it stepped
// down from native XDP, one reason per step.
type Decision struct {
	Dataplane string // "xdp", "ipvs" or "none"
	// Mode is how XDP attaches (XDPAuto for a pinned one taken over).
	Mode XDPMode
	Why  []string
}

// String names the decision as `xlb probe` and the vmtest matrix do:
// xdp-native, xdp-generic, xdp-pinned, ipvs or none.
func (d Decision) String() string {
	if d.Dataplane != "xdp" {
		return d.Dataplane
	}
	if d.Mode == XDPAuto {
		return "xdp-pinned"
	}
	return "xdp-" + d.Mode.String()
}

// Choose is the one policy for `--dataplane auto`, used by xlb run, xlb
// probe and the vmtest matrix: a pinned XDP data plane is taken over; else
// native XDP, then generic XDP (as Want allows), then IPVS, then none.
// XDP is passed over when the kernel lacks what the program needs or the
// configuration needs IPVS. (TC is not a step: generic XDP attaches to
// every interface a TC program could, and a kernel that refuses it lacks
// what xlb's TC programs would need too.)
func Choose(e Evidence) Decision {
	if e.Pinned {
		return Decision{Dataplane: "xdp", Mode: XDPAuto}
	}
	var why []string
	stepDown := func(what string, err error) {
		if what == "" {
			why = append(why, err.Error())
			return
		}
		why = append(why, fmt.Sprintf("%s: %v", what, err))
	}
	xdp := func(m XDPMode) Decision { return Decision{Dataplane: "xdp", Mode: m, Why: why} }
	switch {
	case e.Config != nil:
		stepDown("the configuration needs IPVS", e.Config)
	case e.Want != XDPGeneric && e.Native == nil && e.Program == nil:
		return xdp(XDPNative)
	case e.Want != XDPNative && e.Generic == nil && e.Program == nil:
		if e.Want != XDPGeneric {
			stepDown("xdp-native", e.Native)
		}
		return xdp(XDPGeneric)
	default:
		if e.Want != XDPGeneric && e.Native != nil {
			stepDown("xdp-native", e.Native)
		}
		if e.Want != XDPNative && e.Generic != nil {
			stepDown("xdp-generic", e.Generic)
		}
		if e.Program != nil && (e.Native == nil || e.Generic == nil) {
			stepDown("", e.Program)
		}
	}
	if e.IPVS != nil {
		stepDown("ipvs", e.IPVS)
		return Decision{Dataplane: "none", Why: why}
	}
	return Decision{Dataplane: "ipvs", Why: why}
}
